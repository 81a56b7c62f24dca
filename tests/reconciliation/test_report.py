"""The report's bytes, the closed body's roots, and instruction proofs."""

from __future__ import annotations

import base64
import hashlib
import json
import random
from datetime import date, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger import merkle
from reconciliation import report as report_module
from reconciliation.netting import Obligation, payment_reference
from reconciliation.report import (
    InstructionProof,
    Overdue,
    Report,
    build_report,
    closed_body,
    document,
    instruction_proof,
    instruction_proofs,
    report_bytes,
    verify_instruction,
)
from reconciliation.streaming import RootBuilder, leaves_root
from schemas.canonical import canonical_reference, parse_json
from schemas.errors import LimitError, MalformedError, NotFoundError, VerificationError
from schemas.limits import READ_CHUNK_ENTRIES
from tests.ledger.test_merkle import Reference
from tests.reconciliation.support import (
    CUTOFF_ROOT,
    DAY,
    SETTLEMENT_DAYS,
    nights,
    ob,
    shipped_calendar,
)

SETTINGS = settings(max_examples=150, deadline=None)
CUTOFF_SIZE = 10_001  # above every seq nights() draws
CALENDAR = shipped_calendar()
EMPTY_B64 = base64.b64encode(hashlib.sha256(b"").digest()).decode()


POLICY: dict[str, Any] = {"calendar": CALENDAR, "settlement_days": SETTLEMENT_DAYS}


def build(night: list[Obligation], overdue: tuple[Overdue, ...] = ()) -> Report:
    return build_report(
        DAY,
        CUTOFF_SIZE,
        CUTOFF_ROOT,
        night,
        calendar=CALENDAR,
        settlement_days=SETTLEMENT_DAYS,
        overdue=overdue,
    )


def reference_root(items: list[dict[str, object]]) -> str:
    """RFC 9162 MTH straight from the RFC over JCS(item) by the rfc8785 package."""
    leaves = [merkle.leaf_hash(canonical_reference(item)) for item in items]
    return base64.b64encode(Reference(leaves).mth(0, len(leaves))).decode()


NIGHT = [ob(1, "A", "B", 500), ob(2, "B", "C", 300), ob(5, "C", "A", 100, "advance")]


def test_hand_computed_report_bytes() -> None:
    lines = build(NIGHT)
    root_b64 = base64.b64encode(CUTOFF_ROOT).decode()
    due = "2026-12-04"  # Tue 1 Dec + 3 working days
    assert (
        report_bytes(lines)
        == (
            '{"cutoff":{"root":"' + root_b64 + '","tree_size":10001},"day":"2026-12-01",'
            '"included":[1,2,5],'
            '"instructions":['
            '{"amount_fen":200,"due":"' + due + '","index":0,"payee":"B","payer":"A",'
            '"reference":"AL20261201-000000-76"},'
            '{"amount_fen":200,"due":"' + due + '","index":1,"payee":"C","payer":"A",'
            '"reference":"AL20261201-000001-73"}],'
            '"overdue":[],'
            '"positions":['
            '{"member":"A","net_fen":-400,"payable_fen":500,"receivable_fen":100},'
            '{"member":"B","net_fen":200,"payable_fen":300,"receivable_fen":500},'
            '{"member":"C","net_fen":200,"payable_fen":100,"receivable_fen":300}]}'
        ).encode()
    )


def test_hand_computed_closed_body() -> None:
    lines = build(NIGHT)
    body = closed_body(lines)
    document_json = parse_json(report_bytes(lines))
    included_items = [o.item() for o in sorted(NIGHT, key=lambda o: o.seq)]
    assert included_items[2] == {
        "seq": 5,
        "kind": "advance",
        "debtor": "C",
        "creditor": "A",
        "amount_fen": 100,
    }
    assert body == {
        "day": "2026-12-01",
        "cutoff": document_json["cutoff"],
        "totals": {
            "gross_fen": 900,
            "net_fen": 400,
            "reduction_permille": 555,  # floor(1000 * 500 / 900)
            "obligations": 3,
            "members": 3,
            "instructions": 2,
            "overdue": 0,
        },
        "included": {"count": 3, "amount_fen": 900, "root": reference_root(included_items)},
        "positions": {
            "count": 3,
            "amount_fen": 400,
            "root": reference_root(document_json["positions"]),
        },
        "instructions": {
            "count": 2,
            "amount_fen": 400,
            "root": reference_root(document_json["instructions"]),
        },
    }


def test_empty_night_has_empty_roots() -> None:
    body = closed_body(build([]))
    for name in ("included", "positions", "instructions"):
        assert body[name] == {"count": 0, "amount_fen": 0, "root": EMPTY_B64}
    assert body["totals"]["reduction_permille"] == 0
    with pytest.raises(NotFoundError, match="2026-12-01 has no instruction 0"):
        instruction_proof(build([]), 0)
    assert instruction_proofs(build([]), []) == []
    with pytest.raises(NotFoundError, match="2026-12-01 has no instruction -1"):
        instruction_proofs(build(NIGHT), [0, -1])


def test_leaves_root_streams_across_chunks() -> None:
    """More leaves than one chunk: the bounded-memory root equals the one-shot root."""
    leaves = [b"leaf %d" % n for n in range(2 * READ_CHUNK_ENTRIES + 300)]
    hashes = [merkle.leaf_hash(leaf) for leaf in leaves]
    assert leaves_root(leaves) == merkle.integrate(0, {}, hashes).root
    mixed = RootBuilder()
    for leaf in leaves[:300]:
        mixed.add(leaf)
    mixed.extend(leaves[300:5000])
    mixed.extend(iter(leaves[5000:]))
    assert mixed.root() == merkle.integrate(0, {}, hashes).root
    assert leaves_root(leaves[:1]) == hashes[0]
    assert leaves_root([]) == hashlib.sha256(b"").digest()


def test_overdue_items_are_listed_in_order() -> None:
    first = Overdue(date(2026, 11, 20), 4, "A", "B", 150, date(2026, 11, 25), 6)
    second = Overdue(date(2026, 11, 20), 1, "C", "B", 90, date(2026, 11, 25), 6)
    lines = build(NIGHT, (first, second))
    assert document(lines)["overdue"] == [second.item(), first.item()]
    assert second.item() == {
        "day": "2026-11-20",
        "index": 1,
        "payer": "C",
        "payee": "B",
        "amount_fen": 90,
        "due": "2026-11-25",
        "days": 6,
    }
    assert closed_body(lines)["totals"]["overdue"] == 2


# --- properties ----------------------------------------------------------------------------


@SETTINGS
@given(nights(), st.randoms(use_true_random=False))
def test_recomputation_is_byte_identical(night: list[Obligation], rng: random.Random) -> None:
    """An auditor rebuilding from the report's own JSON (in any order) gets the same
    bytes, and they are the rfc8785 package's bytes of the document."""
    lines = build(night)
    data = report_bytes(lines)
    assert data == canonical_reference(json.loads(data))
    again = [Obligation(**o.item()) for o in night]
    rng.shuffle(again)
    rebuilt = build(again)
    assert report_bytes(rebuilt) == data
    assert closed_body(rebuilt) == closed_body(lines)


@SETTINGS
@given(nights())
def test_roots_are_the_rfc_roots_of_the_report_items(night: list[Obligation]) -> None:
    lines = build(night)
    body = closed_body(lines)
    wire = parse_json(report_bytes(lines))
    assert body["positions"]["root"] == reference_root(wire["positions"])
    assert body["instructions"]["root"] == reference_root(wire["instructions"])
    by_seq = {o.seq: o.item() for o in night}
    assert body["included"]["root"] == reference_root([by_seq[s] for s in wire["included"]])
    assert body["included"]["count"] == len(night) == body["totals"]["obligations"]
    gross, net = body["totals"]["gross_fen"], body["totals"]["net_fen"]
    assert body["totals"]["reduction_permille"] == ((gross - net) * 1000 // gross if gross else 0)


@SETTINGS
@given(nights(), st.data())
def test_every_instruction_proves_and_a_tampered_one_raises(
    night: list[Obligation], data: st.DataObject
) -> None:
    lines = build(night)
    body = closed_body(lines)
    proofs = instruction_proofs(lines, range(len(lines.instructions)))
    for instruction, proof in zip(lines.instructions, proofs, strict=True):
        assert proof == instruction_proof(lines, instruction.index)
        verify_instruction(body, instruction.item(), proof)
        assert proof.wire()["tree_size"] == len(lines.instructions)
    if not lines.instructions:
        return
    index = data.draw(st.integers(0, len(lines.instructions) - 1))
    item = lines.instructions[index].item()
    proof = instruction_proof(lines, index)
    for field, value in [("amount_fen", item["amount_fen"] + 1), ("payee", "M9"), ("due", "x")]:
        with pytest.raises(VerificationError, match=f"inclusion proof of leaf {index}"):
            verify_instruction(body, {**item, field: value}, proof)
    if proof.hashes:
        flipped = (bytes([proof.hashes[0][0] ^ 1]) + proof.hashes[0][1:], *proof.hashes[1:])
        with pytest.raises(VerificationError):
            verify_instruction(body, item, InstructionProof(index, proof.tree_size, flipped))


def test_proof_round_trips_through_json_and_refuses_other_forms() -> None:
    lines = build([*NIGHT, ob(9, "D", "B", 50)])
    proof = instruction_proof(lines, 2)
    assert InstructionProof.from_wire(json.loads(json.dumps(proof.wire()))) == proof
    wire = proof.wire()
    for broken, message in [
        ({**wire, "hashes": "x"}, "hashes is missing or not of type list"),
        ({**wire, "hashes": ["AA=="]}, "proof hash must be 32 bytes"),
        ({**wire, "hashes": [7]}, "instruction proof"),
        ({**wire, "index": "2"}, "index is missing or not of type int"),
        ({"index": 2, "hashes": []}, "tree_size is missing"),
    ]:
        with pytest.raises(VerificationError, match=message):
            InstructionProof.from_wire(broken)


def test_tampered_instruction_fields_raise() -> None:
    lines = build([*NIGHT, ob(9, "D", "B", 50)])
    body = closed_body(lines)
    item = lines.instructions[1].item()
    proof = instruction_proof(lines, 1)
    verify_instruction(body, item, proof)
    other = instruction_proof(lines, 0)
    with pytest.raises(VerificationError, match="proof is for instruction 0 of 3, not 1 of 3"):
        verify_instruction(body, item, other)
    wrong_ref = {**item, "reference": payment_reference(DAY, 2)}
    with pytest.raises(VerificationError, match="not that of instruction 1"):
        verify_instruction(body, wrong_ref, proof)
    moved = {**body, "day": "2026-12-02"}
    with pytest.raises(VerificationError, match="not that of instruction 1 of 2026-12-02"):
        verify_instruction(moved, item, proof)
    bad_root = {**body, "instructions": {**body["instructions"], "root": EMPTY_B64}}
    with pytest.raises(VerificationError, match="does not lead to the root"):
        verify_instruction(bad_root, item, proof)
    with pytest.raises(VerificationError, match="root is not standard base64"):
        verify_instruction({**body, "instructions": {"count": 3, "root": "!"}}, item, proof)
    with pytest.raises(VerificationError, match="instructions is missing"):
        verify_instruction({"day": "2026-12-01"}, item, proof)
    with pytest.raises(VerificationError, match="is not YYYY-MM-DD"):
        verify_instruction({**body, "day": "20261201"}, item, proof)
    with pytest.raises(VerificationError, match="float"):
        verify_instruction(body, {**item, "amount_fen": 1.5}, proof)


# --- refusals ------------------------------------------------------------------------------


def test_refuses_a_seq_included_twice() -> None:
    with pytest.raises(MalformedError, match="obligation 1 is included twice") as e:
        build([ob(2, "A", "B", 1), ob(1, "A", "B", 1), ob(1, "C", "B", 1)])
    assert e.value.seq == 1


def test_a_stream_is_read_once_in_seq_order() -> None:
    """A store's cursor is not sorted for it: it must come by seq, and gives the same
    report as the list."""
    assert report_bytes(build_report(DAY, CUTOFF_SIZE, CUTOFF_ROOT, iter(NIGHT), **POLICY)) == (
        report_bytes(build(NIGHT))
    )
    backwards = iter([ob(5, "A", "B", 1), ob(2, "B", "C", 1)])
    with pytest.raises(MalformedError, match="obligation 2 comes after 5: obligations are"):
        build_report(DAY, CUTOFF_SIZE, CUTOFF_ROOT, backwards, **POLICY)


def test_refuses_an_obligation_beyond_the_cutoff() -> None:
    with pytest.raises(MalformedError, match="obligation 10001 lies beyond the cutoff 10001"):
        build([ob(CUTOFF_SIZE, "A", "B", 1)])


@pytest.mark.parametrize(
    ("size", "root", "message"),
    [(-1, CUTOFF_ROOT, "cutoff size -1"), (1, b"short", "cutoff root must be 32 bytes")],
)
def test_refuses_a_bad_cutoff(size: int, root: bytes, message: str) -> None:
    with pytest.raises(MalformedError, match=message):
        build_report(DAY, size, root, [], calendar=None, settlement_days=1)


def test_refuses_bad_overdue_items(monkeypatch: pytest.MonkeyPatch) -> None:
    late = Overdue(date(2026, 11, 20), 4, "A", "B", 150, date(2026, 11, 25), 6)
    with pytest.raises(MalformedError, match="listed twice"):
        build(NIGHT, (late, late))
    not_yet = Overdue(date(2026, 11, 30), 0, "A", "B", 150, date(2026, 12, 3), 1)
    with pytest.raises(MalformedError, match="is not 1 days overdue at 2026-12-01"):
        build(NIGHT, (not_yet,))
    miscounted = Overdue(date(2026, 11, 20), 4, "A", "B", 150, date(2026, 11, 25), 5)
    with pytest.raises(MalformedError, match="is not 5 days overdue at 2026-12-01"):
        build(NIGHT, (miscounted,))
    with pytest.raises(MalformedError, match="positive amount_fen") as e:
        Overdue(date(2026, 11, 20), 4, "A", "B", 0, date(2026, 11, 25), 6)
    assert e.value.field == "overdue"
    with pytest.raises(MalformedError, match="dates, an index"):
        Overdue(datetime(2026, 11, 20), 4, "A", "B", 1, date(2026, 11, 25), 6)
    monkeypatch.setattr(report_module, "OVERDUE_PER_REPORT_MAX", 0)
    with pytest.raises(LimitError, match="1 overdue items exceed OVERDUE_PER_REPORT_MAX"):
        build(NIGHT, (late,))
