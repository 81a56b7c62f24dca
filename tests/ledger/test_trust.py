"""Trust only what was verified: an attacker who can INSERT into the database (but holds
no private key) cannot make the writer, a node or a witness accept what a replay of the
log would refuse, and cannot wedge the log with rows the triggers let through."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from ledger import merkle, projections, store
from ledger.app import Ledger
from ledger.doctor import examine, repair
from ledger.maintenance import unguarded
from ledger.projections import FIELD_NAMES
from ledger.seal import Sealer
from ledger.sequencer import record_leaf
from ops.world import entry_time
from schemas.canonical import canonical
from schemas.errors import (
    OperatorKeyError,
    PolicyError,
    SignatureError,
    TamperedError,
)
from signing.entry import submitted
from signing.keys import PrivateKey
from tests.conftest import Alliance
from tests.dbtools import (
    INSERT_ENTRY,
    RAW_LOGGED,
    check_log,
    entry_row,
    insert_sql,
    plant_cosignature,
    snapshot,
)
from tests.ledger.builders import one_item_return


def _merchants(alliance: Alliance) -> tuple[str, str]:
    seller = alliance.enroll_doc("31")
    buyer = alliance.enroll_doc("32")
    alliance.sequencer.submit_many([seller, buyer])
    ids = [doc["entry"]["body"]["member"]["id"] for doc in (seller, buyer)]
    return ids[0], ids[1]


def _return(alliance: Alliance, seller: str, refund_fen: int) -> dict[str, Any]:
    purchased = entry_time(alliance.clock())
    return one_item_return(seller, purchased, refund_fen=refund_fen)


def _plant(alliance: Alliance, table: str, values: dict[str, object], version: int) -> None:
    """INSERT a projection row version as an attacker would: no key, so no valid seal."""
    insert = insert_sql(table, [*FIELD_NAMES[table], "version", "seal"])
    with alliance.engine.begin() as connection:
        connection.execute(text(insert), {**values, "version": version, "seal": bytes(32)})


def _fresh(alliance: Alliance, key: PrivateKey | None = None) -> Ledger:
    """The ledger as a newly started process opens it."""
    return Ledger(alliance.engine, key or alliance.ring.keys["operator"], alliance.clock)


def test_planted_key_and_reset_receipt_are_not_trusted(alliance: Alliance) -> None:
    seller, buyer = _merchants(alliance)
    signed = alliance.factory.signed(
        alliance.ring, "return.recorded", buyer, _return(alliance, seller, 10_000), alliance.clock()
    )
    alliance.sequencer.submit(signed)
    head = snapshot(alliance.engine).head
    attacker = PrivateKey.generate()
    _plant(
        alliance,
        "principal_keys",
        {
            "key_id": attacker.key_id,
            "principal": buyer,
            "pub": attacker.public.b64,
            "from_seq": 0,
            "until_seq": None,
        },
        head,
    )
    receipt = {
        "merchant": seller,
        "store": "S1",
        "ref": signed["entry"]["body"]["receipt"]["ref"],
        "amount_fen": 10_000,
        "purchased": signed["entry"]["body"]["receipt"]["purchased"],
        "refunded_fen": 0,
        "returns": 0,
    }
    _plant(alliance, "receipts", receipt, head)
    body = _return(alliance, seller, 10_000)
    forged = submitted(
        alliance.factory.entry("return.recorded", buyer, body, alliance.clock()), attacker
    )
    genuine = alliance.factory.signed(
        alliance.ring, "return.recorded", buyer, body, alliance.clock()
    )
    for ledger in (alliance.ledger, _fresh(alliance)):
        with pytest.raises(SignatureError, match="not a key of this log"):
            ledger.submit(forged)
        with pytest.raises(PolicyError, match="already refunded"):
            ledger.submit(genuine)
    assert snapshot(alliance.engine).head == head
    report = examine(_fresh(alliance))
    assert {f.code for f in report.findings} == {"projection"}
    assert any("principal_keys" in f.message for f in report.findings)
    assert any("receipts" in f.message for f in report.findings)


def _leaf_of(alliance: Alliance, seq: int, document: dict[str, Any]) -> dict[str, object]:
    entry = document["entry"]
    leaf = record_leaf(seq, RAW_LOGGED, canonical(entry), canonical(document["signatures"]))
    return entry_row(
        seq,
        leaf,
        entry_id=entry["id"],
        kind=entry["kind"],
        signer=entry["signer"],
        entry_hash=bytes(32),
    )


def _insert_leaf(alliance: Alliance, row: dict[str, object], *, with_tile: bool) -> None:
    with alliance.engine.begin() as connection:
        connection.execute(text(INSERT_ENTRY), row)
        if with_tile:
            tile = store.DbTiles(connection).read_tiles([(0, 0)])[(0, 0)]
            connection.execute(
                text("UPDATE merkle_tiles SET hashes = :h WHERE level = 0 AND idx = 0"),
                {"h": tile + bytes(row["leaf_hash"])},  # type: ignore[arg-type]
            )


def test_a_planted_leaf_with_a_zero_signature_is_never_checkpointed(alliance: Alliance) -> None:
    head = snapshot(alliance.engine).head
    document = alliance.enroll_doc()
    document["signatures"][0]["sig"] = base64.b64encode(bytes(64)).decode()
    _insert_leaf(alliance, _leaf_of(alliance, head, document), with_tile=True)
    before = snapshot(alliance.engine)
    for ledger in (alliance.ledger, _fresh(alliance)):
        with pytest.raises(TamperedError, match=f"seq {head}"):
            ledger.submit(alliance.enroll_doc())
    after = snapshot(alliance.engine)
    assert after.checkpoints == before.checkpoints  # nothing covers the planted leaf
    assert after.head == head + 1
    codes = {(f.code, f.seq) for f in examine(_fresh(alliance)).findings}
    assert ("rules", head) in codes


def test_an_admissible_leaf_inserted_without_tiles_does_not_wedge_the_log(
    alliance: Alliance,
) -> None:
    head = snapshot(alliance.engine).head
    _insert_leaf(alliance, _leaf_of(alliance, head, alliance.enroll_doc()), with_tile=False)
    appended = _fresh(alliance).submit(alliance.enroll_doc())
    assert appended.seq == head + 1
    check_log(alliance.engine)  # tiles match the leaves; a checkpoint covers both


def test_a_garbage_cosignature_row_neither_shows_nor_stops_the_witness(alliance: Alliance) -> None:
    alliance.sequencer.submit(alliance.enroll_doc())
    latest = alliance.ledger.signed_checkpoint()
    witness = alliance.ledger.log_keys().witnesses["31"].name
    plant_cosignature(alliance.engine, latest.size, witness)
    alliance.cosign()  # every witness, 31 included, cosigns the same size for real
    assert alliance.ledger.signed_checkpoint().cosigned_by == ("31", "32", "33", "34")
    alliance.sequencer.submit(alliance.enroll_doc())
    alliance.cosign()  # and again at the next size, from its verified last cosignature
    assert alliance.ledger.signed_checkpoint().cosigned_by == ("31", "32", "33", "34")
    report = examine(_fresh(alliance))
    assert [f.code for f in report.findings] == ["cosignature"]
    repair(_fresh(alliance), alliance.clock())
    assert examine(_fresh(alliance)).ok


def test_an_operator_key_not_of_the_log_writes_nothing(alliance: Alliance) -> None:
    before = snapshot(alliance.engine)
    with pytest.raises(OperatorKeyError):
        _fresh(alliance, PrivateKey.generate()).submit(alliance.enroll_doc())
    assert snapshot(alliance.engine) == before


def test_a_duplicate_is_answered_only_when_its_signatures_verify(alliance: Alliance) -> None:
    document = alliance.enroll_doc()
    first = alliance.sequencer.submit(document)
    copy = {
        "entry": document["entry"],
        "signatures": [
            {"key": document["signatures"][0]["key"], "sig": base64.b64encode(bytes(64)).decode()}
        ],
    }
    for ledger in (alliance.ledger, _fresh(alliance)):
        with pytest.raises(SignatureError):
            ledger.submit(copy)
        assert ledger.submit(document).seq == first.seq


def test_doctor_finds_nothing_on_a_clean_log(alliance: Alliance) -> None:
    seller, buyer = _merchants(alliance)
    alliance.sequencer.submit(
        alliance.factory.signed(
            alliance.ring,
            "return.recorded",
            buyer,
            _return(alliance, seller, 500),
            alliance.clock(),
        )
    )
    report = examine(Ledger(alliance.engine, None, alliance.clock))
    assert report.ok, report.findings
    assert examine(_fresh(alliance)).ok


def test_doctor_names_damaged_tiles_and_repairs_them(alliance: Alliance) -> None:
    _merchants(alliance)
    before = snapshot(alliance.engine)
    with alliance.engine.begin() as connection, unguarded(connection, ["merkle_tiles"]):
        connection.execute(
            text("UPDATE merkle_tiles SET hashes = :h WHERE level = 0"),
            {"h": bytes(32 * before.head)},
        )
    report = examine(_fresh(alliance))
    assert ("tile", None) in {(f.code, f.seq) for f in report.findings}
    assert {f.code for f in report.findings} == {"tile"}  # checkpoints match the leaves
    with pytest.raises(TamperedError):
        _fresh(alliance).submit(alliance.enroll_doc())
    repair(_fresh(alliance), alliance.clock())
    assert examine(_fresh(alliance)).ok
    after = snapshot(alliance.engine)
    assert after.entries == before.entries and after.tiles == before.tiles
    assert _fresh(alliance).submit(alliance.enroll_doc()).seq == before.head


# --- found by an attacker's review -------------------------------------------------------


def test_inner_nodes_cannot_be_planted_for_a_tile_still_filling(alliance: Alliance) -> None:
    message = ""
    try:
        with alliance.engine.begin() as connection:
            connection.execute(
                text("INSERT INTO merkle_tile_nodes (level, idx, nodes) VALUES (0, 0, :n)"),
                {"n": bytes(254 * 32)},
            )
    except DBAPIError as exc:
        message = str(exc.orig)
    assert "not full" in message
    # Planted by the schema owner anyway: the writer says what is wrong, doctor repairs.
    with alliance.engine.begin() as connection, unguarded(connection, ["merkle_tile_nodes"]):
        connection.execute(
            text("INSERT INTO merkle_tile_nodes (level, idx, nodes) VALUES (0, 0, :n)"),
            {"n": bytes(254 * 32)},
        )
    head = snapshot(alliance.engine).head
    documents = [alliance.enroll_doc() for _ in range(256 - head)]
    results = alliance.sequencer.submit_many(documents)
    assert isinstance(results[-1], TamperedError) and "before it filled" in results[-1].detail
    repair(_fresh(alliance), alliance.clock())
    ledger = _fresh(alliance)
    assert [r.seq for r in ledger.submit_many(documents)] == list(range(head, 256))  # type: ignore[union-attr]
    check_log(alliance.engine)


def test_repair_drops_only_the_garbage_line_beside_a_genuine_cosignature(
    alliance: Alliance,
) -> None:
    latest = alliance.ledger.signed_checkpoint()
    witness = alliance.ledger.log_keys().witnesses["31"].name
    plant_cosignature(alliance.engine, latest.size, witness)
    repair(_fresh(alliance), alliance.clock())
    assert alliance.ledger.signed_checkpoint().cosigned_by == ("31", "32", "33", "34")
    assert examine(_fresh(alliance)).ok


def _foreign(alliance: Alliance, change: Any) -> None:
    """Plant a properly signed entry as a leaf, with ``change`` applied to its record."""
    head = snapshot(alliance.engine).head
    row = _leaf_of(alliance, head, alliance.enroll_doc())
    record = json.loads(row["leaf"])  # type: ignore[arg-type]
    leaf = change(record)
    row.update(leaf=leaf, leaf_hash=merkle.leaf_hash(leaf))
    _insert_leaf(alliance, row, with_tile=True)


@pytest.mark.parametrize(
    "change",
    [
        lambda record: json.dumps(record, indent=1).encode(),  # not RFC 8785
        lambda record: canonical({**record, "logged": "2026-10-01T00:00:00.000000Z"}),
        lambda record: canonical({**record, "logged": "2027-01-01T00:00:00.000000Z"}),
    ],
    ids=["not-canonical", "logged-goes-back", "logged-in-the-future"],
)
def test_a_planted_leaf_must_be_what_the_writer_would_have_written(
    alliance: Alliance, change: Any
) -> None:
    alliance.sequencer.submit(alliance.enroll_doc())
    _foreign(alliance, change)
    before = snapshot(alliance.engine).checkpoints
    with pytest.raises(TamperedError):
        _fresh(alliance).submit(alliance.enroll_doc())
    assert snapshot(alliance.engine).checkpoints == before


def test_a_checkpoint_row_pairing_a_genuine_note_with_another_size_is_passed_over(
    alliance: Alliance,
) -> None:
    genuine = alliance.ledger.signed_checkpoint()
    head = snapshot(alliance.engine).head
    _insert_leaf(alliance, _leaf_of(alliance, head, alliance.enroll_doc()), with_tile=True)
    with alliance.engine.begin() as connection:
        connection.execute(
            text("INSERT INTO checkpoints (size, root, note, signed) VALUES (:s, :r, :n, 'x')"),
            {
                "s": head + 1,
                "r": bytes(32),
                "n": genuine.note.split("\n\n")[0]
                + "\n\n"
                + genuine.note.split("\n\n")[1].split("\n")[0]
                + "\n",
            },
        )
    served = _fresh(alliance).signed_checkpoint()
    assert (served.size, served.root) == (genuine.size, genuine.root)


def test_planted_head_markers_cannot_hide_the_sealed_head(alliance: Alliance) -> None:
    alliance.sequencer.submit_many([alliance.enroll_doc() for _ in range(3)])
    head = snapshot(alliance.engine).head
    with alliance.engine.begin() as connection:
        connection.execute(
            text("INSERT INTO projection_heads (size, seal) VALUES (:s, :z)"),
            [{"s": head, "z": bytes(32)} for _ in range(100)],
        )
    ledger = _fresh(alliance)
    with alliance.engine.connect() as connection:
        rows_before = projections.stored_row_count(connection)
        sealer = ledger.writer.sealer_in(connection)
        assert projections.sealed_head(connection, sealer, head) == head
    ledger.submit(alliance.enroll_doc())
    with alliance.engine.connect() as connection:
        assert projections.stored_row_count(connection) - rows_before < 10  # no rewrite


def test_planted_cosignature_rows_cannot_hide_a_witnesss_last_cosignature(
    alliance: Alliance,
) -> None:
    witness = alliance.ledger.log_keys().witnesses["31"].name
    cosigned = alliance.ledger.last_cosigned("31")
    assert cosigned is not None
    for _ in range(20):
        alliance.sequencer.submit(alliance.enroll_doc())
        size = alliance.ledger.signed_checkpoint().size
        plant_cosignature(alliance.engine, size, witness)
    found = alliance.ledger.last_cosigned("31")
    assert found is not None and found.size == cosigned.size


def test_rows_sealed_for_another_log_under_the_same_operator_key_are_not_trusted(
    alliance: Alliance,
) -> None:
    """A staging log run with the production operator key: its sealed rows, copied into
    production by someone with INSERT, do not verify there (the seal is bound to the
    log's genesis leaf as well as to the operator key)."""
    seller, buyer = _merchants(alliance)
    alliance.sequencer.submit(
        alliance.factory.signed(
            alliance.ring,
            "return.recorded",
            buyer,
            _return(alliance, seller, 10_000),
            alliance.clock(),
        )
    )
    head = snapshot(alliance.engine).head
    staging = Sealer.for_log(alliance.ring.keys["operator"], merkle.leaf_hash(b"staging"))
    row = alliance.ledger.state().receipts.rows()
    receipt = next(iter(row))
    reset = {**{n: getattr(receipt, n) for n in FIELD_NAMES["receipts"]}, "refunded_fen": 0}
    values = tuple(reset[n] for n in FIELD_NAMES["receipts"])
    columns = [*FIELD_NAMES["receipts"], "version", "seal"]
    with alliance.engine.begin() as connection:
        connection.execute(
            text(insert_sql("receipts", columns)),
            {**reset, "version": head, "seal": staging.row("receipts", values, head)},
        )
    genuine = alliance.factory.signed(
        alliance.ring,
        "return.recorded",
        buyer,
        _return(alliance, seller, 10_000),
        alliance.clock(),
    )
    with pytest.raises(PolicyError, match="already refunded"):
        _fresh(alliance).submit(genuine)
