"""The one-pass netting: the streaming root, the hash worker, the fixed-shape JCS leaves
and the reference check digits, each against an independent reference."""

from __future__ import annotations

import hashlib
import io
from array import array
from datetime import date
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from stdnum.iso7064 import mod_97_10

from ledger import merkle
from reconciliation import hashworker, streaming
from reconciliation import report as report_module
from reconciliation.netting import Instruction, Obligation, Position, payment_reference, positions
from reconciliation.report import (
    Overdue,
    build_report,
    closed_body,
    document,
    report_bytes,
    write_report,
)
from reconciliation.streaming import RootBuilder, leaves_root, net_rows, positions_of
from schemas.canonical import canonical_reference
from schemas.errors import InvariantError, LimitError, MalformedError
from schemas.limits import READ_CHUNK_ENTRIES
from tests.reconciliation.support import CUTOFF_ROOT, DAY, nights

SETTINGS = settings(max_examples=100, deadline=None)
IDS = st.text("ABCDEFGHJKLMNPQRTUWXY0123456789", min_size=1, max_size=64)
AMOUNTS = st.integers(-(2**53) + 1, 2**53 - 1)
DAYS = st.dates(date(2000, 1, 1), date(2099, 12, 31))


def integrated_root(leaves: list[bytes]) -> bytes:
    """The log's own tree over the same leaves (ledger.merkle.integrate)."""
    return merkle.integrate(0, {}, [merkle.leaf_hash(leaf) for leaf in leaves]).root


def inputs(leaves: list[bytes]) -> list[bytes]:
    return [merkle.LEAF_PREFIX + leaf for leaf in leaves]


@SETTINGS
@given(st.integers(0, 3 * READ_CHUNK_ENTRIES + 5), st.integers(1, 5000))
def test_root_equals_the_logs_tree(size: int, step: int) -> None:
    """Every size across chunk boundaries, leaves given in uneven parts."""
    leaves = [b"leaf %d" % n for n in range(size)]
    builder = RootBuilder()
    for start in range(0, size, step):
        builder.add_inputs(inputs(leaves[start : start + step]))
    assert builder.size == size
    assert builder.root() == integrated_root(leaves)
    assert leaves_root(leaves) == builder.root()


def test_root_of_nothing_and_of_one() -> None:
    assert leaves_root([]) == hashlib.sha256(b"").digest()
    assert leaves_root([b"x"]) == hashlib.sha256(b"\x00x").digest()


@pytest.mark.parametrize(
    "size", [0, READ_CHUNK_ENTRIES, 2 * READ_CHUNK_ENTRIES + 1, 5 * READ_CHUNK_ENTRIES - 3]
)
def test_the_worker_gives_the_same_root(size: int) -> None:
    """Past ``parallel_from`` the chunks go to hashworker in its own process."""
    leaves = [b'{"n":%d}' % n for n in range(size)]
    builder = RootBuilder(parallel_from=READ_CHUNK_ENTRIES)
    for start in range(0, size, 1000):
        builder.add_inputs(inputs(leaves[start : start + 1000]))
    assert builder.root() == integrated_root(leaves)
    builder.close()


def test_a_failed_worker_is_an_invariant_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(streaming, "_CHUNK_LEAVES", 2)  # frames the worker refuses
    builder = RootBuilder(parallel_from=0)
    builder.add_inputs(inputs([b"a", b"b", b"c"]))
    with pytest.raises(InvariantError, match="the hash worker failed"):
        builder.root()


def test_the_worker_refuses_a_short_frame() -> None:
    frame = b"\n".join(inputs([b"a"] * (hashworker.CHUNK_LEAVES - 1)))
    sink = io.BytesIO()
    assert hashworker.serve(io.BytesIO(hashworker.HEADER.pack(len(frame)) + frame), sink) == 2
    assert sink.getvalue() == b""


def test_close_ends_the_worker() -> None:
    builder = RootBuilder(parallel_from=0)
    builder.add_inputs(inputs([b"a"] * READ_CHUNK_ENTRIES))
    worker = builder._worker
    assert worker is not None
    builder.close()
    assert worker.poll() is not None


@SETTINGS
@given(nights(max_size=60))
def test_net_rows_equals_positions(night: list[Obligation]) -> None:
    night.sort(key=lambda o: o.seq)
    seqs: array[int] = array("q")
    root = RootBuilder()
    members = net_rows(
        ((o.seq, o.kind, o.debtor, o.creditor, o.amount_fen) for o in night), seqs, root
    )
    assert positions_of(members) == positions(night)
    assert list(seqs) == [o.seq for o in night]
    assert root.root() == integrated_root([canonical_reference(o.item()) for o in night])


@pytest.mark.parametrize(
    ("row", "error", "message"),
    [
        ((2, "return", "A", "B", 1, 9), MalformedError, "is not an obligation row"),
        ("ab", MalformedError, "is not an obligation row"),
        ((2, "return", "A", "B", 0), MalformedError, "amount_fen must be a positive integer"),
        ((2, "return", "A", "B", True), MalformedError, "amount_fen must be a positive"),
        ((2, "return", "A", "B", 2**53), LimitError, "exceeds AMOUNT_FEN_MAX"),
        ((2, "return", "A", "A", 5), MalformedError, "debtor and creditor are both A"),
        ((2, "return", "a-b", "B", 5), MalformedError, "2: debtor must be a member id"),
        ((2, "return", "A", "B\u00e9", 5), MalformedError, "2: creditor must be a member id"),
        ((2, "Return", "A", "B", 5), MalformedError, "2: kind must be a lowercase slug"),
        ((1, "return", "B", "C", 5), MalformedError, "obligation 1 is included twice"),
        ((0, "return", "B", "C", 5), MalformedError, "obligation 0 comes after 1"),
        ((-3, "return", "B", "C", 5), MalformedError, "seq -3 must be a non-negative"),
    ],
)
def test_net_rows_refuses_what_obligation_refuses(
    row: object, error: type[Exception], message: str
) -> None:
    rows = [(1, "return", "A", "B", 5), row]
    with pytest.raises(error, match=message):
        net_rows(iter(rows), array("q"), RootBuilder())  # type: ignore[arg-type]


def test_net_rows_refuses_too_many_members(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(streaming, "POSITIONS_PER_NIGHT_MAX", 2)
    with pytest.raises(LimitError, match="more than POSITIONS_PER_NIGHT_MAX 2 members"):
        net_rows(
            iter([(1, "return", "A", "B", 1), (2, "return", "C", "B", 1)]),
            array("q"),
            RootBuilder(),
        )


# --- byte-identical JCS of the fixed-shape items ------------------------------------------


@SETTINGS
@given(IDS, AMOUNTS, st.integers(0, 2**53 - 1), st.integers(0, 2**53 - 1))
def test_position_leaf_is_rfc8785(member: str, net: int, receivable: int, payable: int) -> None:
    position = Position(member, net, receivable, payable)
    assert position.leaf() == canonical_reference(position.item())


@SETTINGS
@given(st.integers(0, 10**6 - 1), IDS, IDS, st.integers(1, 2**53 - 1), DAYS, DAYS)
def test_instruction_leaf_is_rfc8785(
    index: int, payer: str, payee: str, amount: int, day: date, due: date
) -> None:
    item = Instruction(index, payer, payee, amount, due, payment_reference(day, index))
    assert item.leaf() == canonical_reference(item.item())


@SETTINGS
@given(
    DAYS, st.integers(0, 99_999), IDS, IDS, st.integers(1, 2**53 - 1), DAYS, st.integers(1, 9999)
)
def test_overdue_leaf_is_rfc8785(
    day: date, index: int, payer: str, payee: str, amount: int, due: date, days: int
) -> None:
    item = Overdue(day, index, payer, payee, amount, due, days)
    assert item.leaf() == canonical_reference(item.item())


@SETTINGS
@given(DAYS, st.integers(0, 10**6 - 1))
def test_reference_check_digits_are_stdnums(day: date, index: int) -> None:
    reference = payment_reference(day, index)
    digits = reference[2:].replace("-", "")
    assert reference[-2:] == mod_97_10.calc_check_digits(digits[:-2])


# --- the report through the worker and in parts --------------------------------------------


def _night(count: int) -> list[tuple[int, str, str, str, int]]:
    members = [f"M{n}" for n in range(40)]
    return [
        (2 * n + 1, "return", members[n % 40], members[(n * 7 + 3) % 40], 100 + n % 997)
        for n in range(count)
    ]


def test_a_large_night_closes_the_same_with_the_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    """Past PARALLEL_ROOT_LEAVES_MIN the included root comes from the worker: the same
    bytes and roots as in one process, and the root the log's tree gives."""
    night = _night(3 * READ_CHUNK_ENTRIES + 5)
    kwargs: dict[str, Any] = {"calendar": None, "settlement_days": 3}
    monkeypatch.setattr(report_module, "PARALLEL_ROOT_LEAVES_MIN", READ_CHUNK_ENTRIES)
    parallel = build_report(DAY, 2 * len(night) + 1, CUTOFF_ROOT, iter(night), **kwargs)
    monkeypatch.setattr(report_module, "PARALLEL_ROOT_LEAVES_MIN", None)
    single = build_report(DAY, 2 * len(night) + 1, CUTOFF_ROOT, iter(night), **kwargs)
    assert closed_body(parallel) == closed_body(single)
    assert report_bytes(parallel) == report_bytes(single)
    leaves = [Obligation(*row).leaf() for row in night]
    assert parallel.included_root == integrated_root(leaves)


def test_report_parts_join_to_rfc8785(monkeypatch: pytest.MonkeyPatch) -> None:
    """The included seqs written a few at a time: the same canonical bytes."""
    monkeypatch.setattr(report_module, "REPORT_SEQS_PER_PART", 2)
    night = _night(7)
    built = build_report(DAY, 100, CUTOFF_ROOT, iter(night), calendar=None, settlement_days=3)
    parts: list[bytes] = []
    write_report(built, parts.append)
    assert len(parts) > 4
    assert b"".join(parts) == canonical_reference(document(built)) == report_bytes(built)
