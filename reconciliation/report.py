"""The report of one business day, its canonical bytes, and what the log commits to.

A night may include a million obligations, far beyond the 60 KB an entry may hold, so
the log's ``reconciliation.closed`` entry carries only the day, the cutoff, the totals
and three RFC 6962 roots; the report holding the details is stored beside the log
(issue 8 rule 4, docs/PROTOCOL.md "Reconciliation report and roots"):

* ``report_bytes()``: JCS (RFC 8785) of ``{"day", "cutoff": {"tree_size", "root"},
  "included": [seq], "positions": [item], "instructions": [item], "overdue": [item]}``.
* ``closed_body()``: the entry's body. Each of ``included``, ``positions`` and
  ``instructions`` is ``{"count", "amount_fen", "root"}``, the root over the leaves
  JCS(item), in the report's order, hashed as the log's own leaves are
  (``ledger.merkle``: SHA-256(0x00‖leaf), SHA-256(0x01‖l‖r), SHA-256("") when empty).
  The report lists an included obligation by its seq alone (the log holds the rest),
  but its leaf is the whole obligation ``{"seq", "kind", "debtor", "creditor",
  "amount_fen"}``: the root then commits to what was netted, not only to which entries,
  so an auditor who disagrees on an amount disagrees on the root.
* ``instruction_proof()`` / ``verify_instruction()``: a member proves its instruction
  against the instructions root; the verifier raises ``VerificationError``, never
  returns a bool.

``build_report()`` reads the obligations once (``reconciliation.streaming``): each is
checked, netted into its members' positions, its leaf hashed into a stack-based RFC 6962
root (O(log n) hashes; past PARALLEL_ROOT_LEAVES_MIN leaves by a second process) and its
seq kept in an ``array('q')``, and then dropped. A night's memory is its positions,
instructions and 8 bytes per obligation when the caller streams them (a store's cursor
of rows, in seq order); a list or tuple of ``Obligation`` is sorted first if it needs to
be. ``write_report()`` writes the JCS bytes a part at a time from the fixed-shape items'
``leaf()`` bytes, which tests prove identical to the rfc8785 package's.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from itertools import chain, pairwise
from operator import attrgetter
from typing import Any

from ledger import merkle
from reconciliation.netting import (
    Instruction,
    Obligation,
    Position,
    check_reference,
    greedy,
    is_member_id,
)
from reconciliation.streaming import RootBuilder, Row, leaves_root, net_rows, positions_of
from schemas.bodies import CalendarModel
from schemas.canonical import canonical, canonical_validated
from schemas.errors import (
    AllianceError,
    LimitError,
    MalformedError,
    NotFoundError,
    VerificationError,
    invariant,
)
from schemas.limits import (
    AMOUNT_FEN_MAX,
    HASH_SIZE,
    INSTRUCTIONS_PER_NIGHT_MAX,
    OVERDUE_PER_REPORT_MAX,
    PARALLEL_ROOT_LEAVES_MIN,
    PROOF_TREE_SIZE_MAX,
    REPORT_SEQS_PER_PART,
)
from signing.keys import b64decode, b64encode

PERMILLE = 1000


@dataclass(frozen=True, slots=True)
class Overdue:
    """An instruction of an earlier night (``day``, ``index``) not discharged by ``due``:
    ``amount_fen`` still unconfirmed, ``days`` calendar days past due at the report's day.
    Computed by the caller from the settlement entries; the report only lists them."""

    day: date
    index: int
    payer: str
    payee: str
    amount_fen: int
    due: date
    days: int

    def __post_init__(self) -> None:
        # Exact date: a datetime is a date to Python but writes another isoformat().
        if not (
            type(self.day) is date
            and type(self.due) is date
            and type(self.index) is int
            and 0 <= self.index < INSTRUCTIONS_PER_NIGHT_MAX
            and all(type(m) is str and is_member_id(m) for m in (self.payer, self.payee))
            and type(self.amount_fen) is int
            and 0 < self.amount_fen <= AMOUNT_FEN_MAX
            and type(self.days) is int
        ):
            raise MalformedError(
                f"overdue instruction {self.day}/{self.index!r}: dates, an index, member ids"
                " and a positive amount_fen",
                field="overdue",
            )

    def item(self) -> dict[str, Any]:
        return {
            "day": self.day.isoformat(),
            "index": self.index,
            "payer": self.payer,
            "payee": self.payee,
            "amount_fen": self.amount_fen,
            "due": self.due.isoformat(),
            "days": self.days,
        }

    def leaf(self) -> bytes:
        """JCS(``item()``), written directly (keys in RFC 8785 order, checked values)."""
        return _OVERDUE_LEAF % (
            self.amount_fen,
            self.day.isoformat().encode("ascii"),
            self.days,
            self.due.isoformat().encode("ascii"),
            self.index,
            self.payee.encode("ascii"),
            self.payer.encode("ascii"),
        )


_OVERDUE_LEAF = (
    b'{"amount_fen":%d,"day":"%s","days":%d,"due":"%s","index":%d,"payee":"%s","payer":"%s"}'
)


@dataclass(frozen=True)
class Report:
    """One night, as ``build_report()`` makes it: every list in its report order."""

    day: date
    cutoff_size: int
    cutoff_root: bytes
    included: array[int]  # the included obligations' seqs, ascending (8 bytes each)
    included_root: bytes  # RFC 6962 root over their leaves (Obligation.leaf())
    positions: tuple[Position, ...]  # member ascending
    instructions: tuple[Instruction, ...]  # index ascending (0, 1, ...)
    overdue: tuple[Overdue, ...]  # (day, index) ascending


@dataclass(frozen=True)
class InstructionProof:
    """RFC 9162 inclusion proof of instruction ``index`` among ``tree_size``."""

    index: int
    tree_size: int
    hashes: tuple[bytes, ...]

    def wire(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "tree_size": self.tree_size,
            "hashes": [b64encode(h) for h in self.hashes],
        }

    @classmethod
    def from_wire(cls, data: Mapping[str, Any]) -> InstructionProof:
        """Parse ``wire()``'s form (a statement's JSON); ``VerificationError`` if it is not
        that form, so a verifier given a foreign proof only ever raises one error type."""
        hashes = _field(data, "hashes", list)
        try:
            decoded = tuple(b64decode(h, size=HASH_SIZE, what="proof hash") for h in hashes)
        except (AllianceError, AttributeError) as exc:  # AttributeError: not a str
            raise VerificationError(f"instruction proof: {exc}") from exc
        return cls(_field(data, "index", int), _field(data, "tree_size", int), decoded)


def _rows(obligations: Iterable[Obligation] | Iterable[Row]) -> Iterable[Row]:
    """The obligations as rows for ``net_rows``: ``Obligation`` values as their fields
    (a list or tuple of them sorted by seq first when it is not already), a store's rows
    (tuples, read by seq) as they come."""
    iterator = iter(obligations)
    first = next(iterator, None)
    if first is None:
        return ()
    if not isinstance(first, Obligation):
        return chain((first,), iterator)  # type: ignore[arg-type]
    values: Iterable[Any] = chain((first,), iterator)
    if isinstance(obligations, list | tuple) and any(
        a.seq > b.seq for a, b in pairwise(obligations)
    ):
        values = sorted(obligations, key=_SEQ)
    return map(_FIELDS, values)


_SEQ = attrgetter("seq")
_FIELDS = attrgetter("seq", "kind", "debtor", "creditor", "amount_fen")


def _check_overdue(day: date, overdue: Iterable[Overdue]) -> tuple[Overdue, ...]:
    items = tuple(sorted(overdue, key=lambda o: (o.day, o.index)))
    if len(items) > OVERDUE_PER_REPORT_MAX:
        raise LimitError(f"{len(items)} overdue items exceed OVERDUE_PER_REPORT_MAX")
    for a, b in pairwise(items):
        if (a.day, a.index) == (b.day, b.index):
            raise MalformedError(f"overdue instruction {a.day}/{a.index} is listed twice")
    for item in items:
        if not (item.day < day and item.due < day and item.days == (day - item.due).days):
            raise MalformedError(
                f"overdue instruction {item.day}/{item.index} is not {item.days} days overdue"
                f" at {day}",
                field="overdue",
            )
    return items


def build_report(
    day: date,
    cutoff_size: int,
    cutoff_root: bytes,
    obligations: Iterable[Obligation] | Iterable[Row],
    *,
    calendar: CalendarModel | None,
    settlement_days: int,
    overdue: Iterable[Overdue] = (),
) -> Report:
    """The report of ``day`` over the eligible ``obligations`` at the cutoff (the tree of
    ``cutoff_size`` leaves with root ``cutoff_root``). ``calendar`` and
    ``settlement_days`` are the policy's, for the instructions' due dates."""
    if type(cutoff_size) is not int or not 0 <= cutoff_size <= PROOF_TREE_SIZE_MAX:
        raise MalformedError(f"cutoff size {cutoff_size!r} is not a tree size", field="cutoff")
    if type(cutoff_root) is not bytes or len(cutoff_root) != HASH_SIZE:
        raise MalformedError(f"cutoff root must be {HASH_SIZE} bytes", field="cutoff")
    seqs: array[int] = array("q")
    root = RootBuilder(parallel_from=PARALLEL_ROOT_LEAVES_MIN)
    try:
        netted = positions_of(net_rows(_rows(obligations), seqs, root))
        included_root = root.root()
    finally:
        root.close()
    if seqs and seqs[-1] >= cutoff_size:
        seq = seqs[-1]
        raise MalformedError(f"obligation {seq} lies beyond the cutoff {cutoff_size}", seq=seq)
    return Report(
        day=day,
        cutoff_size=cutoff_size,
        cutoff_root=cutoff_root,
        included=seqs,
        included_root=included_root,
        positions=tuple(netted),
        instructions=tuple(greedy(netted, day, calendar, settlement_days)),
        overdue=_check_overdue(day, overdue),
    )


def _cutoff(report: Report) -> dict[str, Any]:
    return {"tree_size": report.cutoff_size, "root": b64encode(report.cutoff_root)}


def document(report: Report) -> dict[str, Any]:
    """The report as JSON (what ``report_bytes()`` canonicalises)."""
    return {
        "day": report.day.isoformat(),
        "cutoff": _cutoff(report),
        "included": list(report.included),
        "positions": [position.item() for position in report.positions],
        "instructions": [instruction.item() for instruction in report.instructions],
        "overdue": [item.item() for item in report.overdue],
    }


def write_report(report: Report, write: Callable[[bytes], object]) -> None:
    """Write JCS of ``document(report)`` through ``write`` a part at a time (an export
    writes it to its file): JCS of a list is its items' JCS joined by commas, and each
    item's JCS is its ``leaf()``, so the parts are the canonical bytes (tests compare
    them with rfc8785's). Never more than a chunk of seqs as text at once."""
    write(
        b'{"cutoff":{"root":"%s","tree_size":%d},"day":"%s","included":['
        % (b64encode(report.cutoff_root).encode("ascii"), report.cutoff_size, _day(report))
    )
    seqs = report.included
    for start in range(0, len(seqs), REPORT_SEQS_PER_PART):
        text = ",".join(map(str, seqs[start : start + REPORT_SEQS_PER_PART]))
        write(("," if start else "").encode("ascii") + text.encode("ascii"))
    write(b'],"instructions":[')
    write(b",".join(instruction.leaf() for instruction in report.instructions))
    write(b'],"overdue":[')
    write(b",".join(item.leaf() for item in report.overdue))
    write(b'],"positions":[')
    write(b",".join(position.leaf() for position in report.positions))
    write(b"]}")


def _day(report: Report) -> bytes:
    return report.day.isoformat().encode("ascii")


def report_bytes(report: Report) -> bytes:
    """JCS of the report (``write_report``'s parts joined)."""
    parts: list[bytes] = []
    write_report(report, parts.append)
    return b"".join(parts)


def items_root(items: Iterable[Mapping[str, Any]]) -> bytes:
    """The root over JCS(item) of report items as built here (already checked values)."""
    return leaves_root(canonical_validated(item) for item in items)


def _commitment(count: int, amount_fen: int, root: bytes) -> dict[str, Any]:
    invariant(0 <= amount_fen <= AMOUNT_FEN_MAX, "a committed amount beyond AMOUNT_FEN_MAX")
    return {"count": count, "amount_fen": amount_fen, "root": b64encode(root)}


def closed_body(report: Report) -> dict[str, Any]:
    """The body of the night's ``reconciliation.closed`` entry.

    ``totals.gross_fen``: what the included obligations add up to; ``totals.net_fen``:
    what changes hands (the positive nets, equal to the instructions' sum);
    ``reduction_permille`` = floor(1000 · (gross − net) / gross), 0 for an empty night.
    ``amount_fen`` of ``included`` is the gross, of ``positions`` and ``instructions``
    the net."""
    gross_fen = sum(position.receivable_fen for position in report.positions)
    net_fen = sum(position.net_fen for position in report.positions if position.net_fen > 0)
    paid_fen = sum(instruction.amount_fen for instruction in report.instructions)
    invariant(paid_fen == net_fen, "instructions do not move exactly the net positions")
    reduction = (gross_fen - net_fen) * PERMILLE // gross_fen if gross_fen else 0
    return {
        "day": report.day.isoformat(),
        "cutoff": _cutoff(report),
        "totals": {
            "gross_fen": gross_fen,
            "net_fen": net_fen,
            "reduction_permille": reduction,
            "obligations": len(report.included),
            "members": len(report.positions),
            "instructions": len(report.instructions),
            "overdue": len(report.overdue),
        },
        "included": _commitment(len(report.included), gross_fen, report.included_root),
        "positions": _commitment(
            len(report.positions), net_fen, leaves_root(p.leaf() for p in report.positions)
        ),
        "instructions": _commitment(
            len(report.instructions),
            net_fen,
            leaves_root(i.leaf() for i in report.instructions),
        ),
    }


def instruction_proof(report: Report, index: int) -> InstructionProof:
    """The inclusion proof of instruction ``index`` against the instructions root."""
    return instruction_proofs(report, [index])[0]


def instruction_proofs(report: Report, indexes: Iterable[int]) -> list[InstructionProof]:
    """Proofs of several instructions (a member's statement) from one tree of the night's
    instructions, built once (a hundred thousand leaves take a fraction of a second)."""
    size = len(report.instructions)
    wanted = list(indexes)
    for index in wanted:
        if type(index) is not int or not 0 <= index < size:
            raise NotFoundError(f"{report.day.isoformat()} has no instruction {index!r}")
    if not wanted:
        return []
    return item_proofs([i.leaf() for i in report.instructions], wanted)


def item_proofs(leaves: list[bytes], wanted: list[int]) -> list[InstructionProof]:
    """RFC 9162 inclusion proofs of the leaves ``wanted`` among ``leaves`` (JCS items, a
    stored report's instructions), from one tree built once."""
    size = len(leaves)
    hashes = [merkle.leaf_hash(leaf) for leaf in leaves]
    tree = merkle.integrate(0, {}, hashes)
    tiles = merkle.MemoryTiles(tree.tiles, tree.nodes)
    return [
        InstructionProof(index, size, tuple(merkle.inclusion_proof(index, size, tiles)))
        for index in wanted
    ]


def _field(mapping: Mapping[str, Any], key: str, kind: type) -> Any:
    value = mapping.get(key) if isinstance(mapping, Mapping) else None
    if type(value) is not kind:
        raise VerificationError(f"{key} is missing or not of type {kind.__name__}")
    return value


def verify_instruction(
    body: Mapping[str, Any], item: Mapping[str, Any], proof: InstructionProof
) -> None:
    """Raise ``VerificationError`` unless ``item`` is instruction ``proof.index`` of the
    night whose ``reconciliation.closed`` body is ``body``: its reference is that day's
    and index's, and JCS(item) is that leaf of the instructions root."""
    commitment = _field(body, "instructions", dict)
    size = _field(commitment, "count", int)
    index = _field(item, "index", int)
    if index != proof.index or size != proof.tree_size:
        raise VerificationError(
            f"proof is for instruction {proof.index} of {proof.tree_size}, not {index} of {size}"
        )
    try:
        root = b64decode(_field(commitment, "root", str), size=HASH_SIZE, what="root")
        day_text = _field(body, "day", str)
        day = date.fromisoformat(day_text)
        if day.isoformat() != day_text:
            raise ValueError(f"day {day_text!r} is not YYYY-MM-DD")
        leaf = canonical(dict(item))
    except (AllianceError, ValueError) as exc:
        raise VerificationError(f"instruction {index}: {exc}") from exc
    check_reference(_field(item, "reference", str), day, index)
    merkle.verify_inclusion(merkle.leaf_hash(leaf), index, size, proof.hashes, root)
