"""Regions and the operator change on a running log (issue 7 §5), on both backends:
湖南 (43) joins a running four-region log, enrols a member, endorses a cross-region
return and cosigns with its witness; the operator rotates its key and the writer hands
over; the log's readers, the trust root and the audit follow the log, not leaf 0."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ledger import merkle, store
from ledger.app import Ledger
from ledger.audit import audit_directory
from ledger.export import CHECKPOINT_FILE, ENTRIES_FILE, TRUST_FILE
from ledger.publish import publish
from ledger.state import OPERATOR, region_principal
from ops.service import run_endorse, run_witness, trust_from_ledger
from ops.world import entry_time, member_body, witness_name
from schemas.canonical import canonical
from schemas.entry import format_utc
from schemas.errors import OperatorKeyError, TamperedError
from signing.entry import submitted
from signing.keys import PrivateKey
from tests.conftest import Alliance
from tests.ledger.builders import one_item_return

HUNAN = "43"


def every_region(alliance: Alliance) -> list[str]:
    state = alliance.ledger.state()
    return [region_principal(code) for code in state.region_codes()]


def signed_by(
    alliance: Alliance, kind: str, signer: str, body: dict[str, Any], keys: list[PrivateKey]
) -> Any:
    entry = alliance.factory.entry(kind, signer, body, alliance.clock())
    return submitted(entry, *keys)


def join_hunan(alliance: Alliance) -> int:
    ring = alliance.ring
    key, witness = ring.ensure("region:43"), ring.ensure_witness(HUNAN)
    body = {
        "region": {
            "code": HUNAN,
            "name": "湖南省市场监督管理局",
            "keys": [key.public.wire()],
            "witness": {
                "name": witness_name(alliance.config.origin, HUNAN),
                "pub": witness.public.b64,
            },
        }
    }
    signers = [OPERATOR, *every_region(alliance), "region:43"]
    sub = signed_by(alliance, "region.joined", OPERATOR, body, [ring.keys[p] for p in signers])
    return alliance.sequencer.submit(sub).seq


def cosign_all(alliance: Alliance, ledger: Ledger) -> None:
    trust = trust_from_ledger(ledger)
    for code in sorted(trust.witnesses):
        run_witness(ledger, code, alliance.ring.witnesses[code], trust, alliance.clock())


def test_hunan_joins_a_running_log(alliance: Alliance, tmp_path: Path) -> None:
    ring, factory, now = alliance.ring, alliance.factory, alliance.clock.advance(minutes=5)
    joined = join_hunan(alliance)
    writer = alliance.sequencer
    seller, buyer = "91430100MA4L00001J", "91310000MA1FL1234Q"
    for member, region, division, network in (
        (seller, "43", "430102", []),
        (buyer, "31", "310101", [seller]),
    ):
        key = ring.ensure(member).public.wire()
        body = member_body(member, region, key, stores=[("S1", division)], network=network)
        writer.submit(factory.signed(ring, "member.enrolled", f"region:{region}", body, now))
    refund = one_item_return(
        seller, entry_time(now), number="HN-1", amount_fen=12_800, refund_fen=12_800
    )
    target = writer.submit(factory.signed(ring, "return.recorded", buyer, refund, now)).seq
    trust = trust_from_ledger(alliance.ledger)
    assert HUNAN in trust.witnesses  # the trust root follows the log, not leaf 0
    decided = {
        code: run_endorse(alliance.ledger, code, ring.keys[f"region:{code}"], trust, now)[
            "approved"
        ]
        for code in ("31", "32", "43")
    }
    assert decided == {"31": 1, "32": 0, "43": 1}
    cosign_all(alliance, alliance.ledger)
    assert alliance.ledger.signed_checkpoint().cosigned_by == ("31", "32", "33", "34", "43")
    report = audit_directory(alliance.ledger.export(tmp_path / "export").directory)
    assert report.ok, report.findings
    assert report.cosigned_by == ["31", "32", "33", "34", "43"]
    hunan = report.state.regions.get(HUNAN)
    assert hunan is not None and hunan.joined_seq == joined
    obligation = report.state.obligations.get(target)
    assert obligation is not None and obligation.status == "effective"


def test_the_audit_requires_the_joined_witness(alliance: Alliance, tmp_path: Path) -> None:
    join_hunan(alliance)
    trust = trust_from_ledger(alliance.ledger)
    for code in ("31", "32", "33", "34"):  # 43 does not cosign
        run_witness(alliance.ledger, code, alliance.ring.witnesses[code], trust, alliance.clock())
    report = audit_directory(alliance.ledger.export(tmp_path / "export").directory)
    assert [(f.code, HUNAN in f.message) for f in report.findings] == [("witness", True)]


def rotate_operator(
    alliance: Alliance, documents: list[Any] | None = None
) -> tuple[int, PrivateKey]:
    """operator.keys_changed to a new key, signed by the old one and every region, then
    ``documents`` in the same batch; returns its seq and the new key."""
    ring = alliance.ring
    new = PrivateKey.from_seed(b"operator, second key")
    body = {"keys": [new.public.wire()]}
    keys = [ring.keys[p] for p in [OPERATOR, *every_region(alliance)]]
    sub = signed_by(alliance, "operator.keys_changed", OPERATOR, body, keys)
    results = alliance.sequencer.submit_many([sub, *(documents or [])])
    first = results[0]
    assert not isinstance(first, Exception), first
    for later in results[1:]:  # the hand-over ends the batch
        assert isinstance(later, OperatorKeyError) and "was replaced" in later.detail
    return first.seq, new


def test_the_operator_key_rotates_and_the_writer_hands_over(
    alliance: Alliance, tmp_path: Path
) -> None:
    genesis_trust = trust_from_ledger(alliance.ledger)
    seq, new = rotate_operator(alliance, [alliance.enroll_doc("32")])
    # The checkpoint that includes the rotation is the old key's last.
    assert alliance.ledger.signed_checkpoint().size == seq + 1
    with pytest.raises(OperatorKeyError, match="start the writer with the new key"):
        alliance.sequencer.submit(alliance.enroll_doc("31"))
    # A new writer with the new key; the projection seals derive from the operator key,
    # so it rebuilds them first (docs/PROTOCOL.md §2a).
    ledger = Ledger(alliance.engine, new, alliance.clock)
    ledger.rebuild()
    after = ledger.submit(alliance.enroll_doc("31")).seq
    assert after == seq + 1
    checkpoint = ledger.signed_checkpoint()
    assert checkpoint.size == seq + 2
    trust = trust_from_ledger(ledger)
    assert trust.log.public == new.public and trust.log != genesis_trust.log
    cosign_all(alliance, ledger)
    exported = ledger.export(tmp_path / "export").directory
    assert json.loads((exported / TRUST_FILE).read_text())["log_key"] == trust.log.vkey
    report = audit_directory(exported)
    assert report.ok, report.findings
    # An auditor still holding the genesis trust root follows the rotation too.
    trust_file = json.loads((exported / TRUST_FILE).read_text())
    trust_file["log_key"] = genesis_trust.log.vkey
    (exported / TRUST_FILE).write_text(json.dumps(trust_file))
    assert audit_directory(exported).ok
    ledger.close()


def test_a_rotated_operator_key_signs_no_later_checkpoint(
    alliance: Alliance, tmp_path: Path
) -> None:
    old = alliance.ring.keys[OPERATOR]
    _, new = rotate_operator(alliance)
    ledger = Ledger(alliance.engine, new, alliance.clock)
    ledger.rebuild()
    ledger.submit(alliance.enroll_doc("31"))
    cosign_all(alliance, ledger)
    exported = ledger.export(tmp_path / "export").directory
    good = ledger.signed_checkpoint()
    # The old key signs the same tree of size seq + 2: not a key of the log at that size.
    forged = publish(alliance.config.origin, good.size, good.root, old, alliance.clock())
    (exported / CHECKPOINT_FILE).write_text(forged.note)
    report = audit_directory(exported)
    assert (None, "checkpoint") in {(f.seq, f.code) for f in report.findings}
    assert any("did not declare for that size" in f.message for f in report.findings)
    # A reader passes over such a row: the stored one of that size is the genuine one.
    with alliance.engine.connect() as connection:
        assert store.checkpoint_at(connection, good.size) is not None
    reader = Ledger(alliance.engine, None, alliance.clock)
    assert reader.signed_checkpoint().note.startswith(good.note.split("\n\n")[0])
    with pytest.raises(OperatorKeyError):  # the old writer is refused for good
        Ledger(alliance.engine, old, alliance.clock).submit(alliance.enroll_doc("31"))
    ledger.close()


def test_region_keys_rotate_on_the_log_and_the_audit_replays_them(
    alliance: Alliance, tmp_path: Path
) -> None:
    ring = alliance.ring
    join_hunan(alliance)
    old = ring.keys["region:43"]
    new = PrivateKey.from_seed(b"region 43, second key")
    body = {"region": HUNAN, "keys": [new.public.wire()]}
    others = [p for p in every_region(alliance) if p != "region:43"]
    keys = [old, *(ring.keys[p] for p in others)]
    rotated = alliance.sequencer.submit(
        signed_by(alliance, "region.keys_changed", "region:43", body, keys)
    ).seq
    ring.keys["region:43"] = new
    member = alliance.enroll_doc("43")
    assert alliance.sequencer.submit(member).seq == rotated + 1
    cosign_all(alliance, alliance.ledger)
    report = audit_directory(alliance.ledger.export(tmp_path / "export").directory)
    assert report.ok, report.findings
    row = report.state.key(old.key_id)
    assert row is not None and row.until_seq == rotated


def test_a_planted_declaration_is_not_a_key_of_the_log(alliance: Alliance) -> None:
    """A reader takes keys only from declarations whose signatures verify: a leaf that
    declares a forger's operator key (someone with INSERT on the log) is refused."""
    forger = PrivateKey.from_seed(b"forger")
    body = {"keys": [forger.public.wire()]}
    keys = [forger, *(alliance.ring.keys[p] for p in every_region(alliance))]
    sub = signed_by(alliance, "operator.keys_changed", OPERATOR, body, keys)
    with alliance.engine.begin() as connection:
        size = store.head_size(connection)
        logged = format_utc(alliance.clock())
        record = {"seq": size, "logged": logged, **sub}
        leaf = canonical(record)
        entry_id = sub["entry"]["id"]
        planted = store.StoredEntry(
            size, entry_id, bytes(32), "operator.keys_changed", OPERATOR, logged, leaf,
            merkle.leaf_hash(leaf),
        )  # fmt: skip
        store.insert_entries(connection, [planted])
    reader = Ledger(alliance.engine, None, alliance.clock)
    with pytest.raises(TamperedError, match=f"seq {size} declares keys"):
        reader.log_keys()


@pytest.mark.parametrize("kind", ["region.joined", "region.keys_changed", "operator.keys_changed"])
def test_the_audit_finds_a_declaration_without_a_required_signature(
    alliance: Alliance, tmp_path: Path, kind: str
) -> None:
    """Each new kind is judged in the replay: the export's copy of it with one region's
    signature dropped is a finding at its seq."""
    join_hunan(alliance)
    if kind == "region.joined":
        seq = 1
    elif kind == "region.keys_changed":
        body = {"region": "32", "keys": [PrivateKey.from_seed(b"32 again").public.wire()]}
        keys = [alliance.ring.keys[p] for p in every_region(alliance) if p != "region:32"]
        sub = signed_by(alliance, kind, "region:32", body, [alliance.ring.keys["region:32"], *keys])
        seq = alliance.sequencer.submit(sub).seq
    else:
        seq, _ = rotate_operator(alliance)
    cosign_all(alliance, alliance.ledger)
    exported = alliance.ledger.export(tmp_path / "export").directory
    entries = exported / ENTRIES_FILE
    lines = entries.read_bytes().splitlines()
    record = json.loads(lines[seq])
    assert record["entry"]["kind"] == kind
    record["signatures"] = record["signatures"][:-1]
    lines[seq] = canonical(record)
    entries.write_bytes(b"\n".join(lines) + b"\n")
    report = audit_directory(exported)
    assert (seq, "bad-signature") in {(f.seq, f.code) for f in report.findings}
