"""Netting of one business day: obligations -> net positions -> payment instructions.

Pure functions over frozen values, no I/O, integer 分 throughout (issue 8 rules 2-3,
DESIGN §5). Everything here is deterministic, because every region and every auditor
recomputes a night and must get the same bytes:

* ``positions()``: per member, receivable (owed to it), payable (owed by it) and
  net = receivable - payable, members ascending by code point (for USCCs, ASCII order).
  A member whose obligations cancel out keeps its zero position: it took part in the
  night and its statement must show it. Positions sum to zero (``invariant()``).
* ``instructions()``: the largest debtor pays the largest creditor, ties broken by the
  member id ascending, the smaller side is settled in full and the other goes back with
  its remainder, until every position is zero. Each transfer settles at least one member,
  so there are at most N-1 (``invariant()``).
* ``payment_reference()``: the bank memo ``AL<YYYYMMDD>-<index:06d>-<CC>``, CC the ISO 7064
  MOD 97-10 check digits over the digits ``YYYYMMDD`` ‖ ``index:06d`` (as IBANs use
  them), so a mistyped memo is caught by the bank clerk's tools before it reaches us.

Input that cannot be netted is refused with the project's typed errors, never clipped:
``MalformedError`` for a value that is not an obligation (zero or negative amount,
debtor == creditor, a seq twice), ``LimitError`` past a named limit of schemas.limits.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from stdnum.exceptions import ValidationError
from stdnum.iso7064 import mod_97_10

from ledger.calendar import add_working_days
from schemas.bodies import CalendarModel
from schemas.errors import LimitError, MalformedError, VerificationError, invariant
from schemas.limits import (
    AMOUNT_FEN_MAX,
    ID_LENGTH_MAX,
    INSTRUCTIONS_PER_NIGHT_MAX,
    OBLIGATIONS_PER_NIGHT_MAX,
    POSITIONS_PER_NIGHT_MAX,
    REFERENCE_INDEX_DIGITS,
    SETTLEMENT_DAYS_MAX,
)

REFERENCE_PREFIX = "AL"  # Alliance Ledger: tells a bank clerk whose memo this is


@dataclass(frozen=True, slots=True)
class Obligation:
    """One effective obligation of the night: ``debtor`` owes ``creditor`` ``amount_fen``,
    created by the log entry ``seq`` (its ``kind``: ``return``, ``advance``, ``reversal``).

    Checked on construction, so every Obligation that exists can be netted. Member ids
    are ASCII letters and digits (a USCC's alphabet) and ``kind`` a lowercase slug, which
    is also what lets ``leaf()`` write JCS without escaping anything."""

    seq: int
    kind: str
    debtor: str
    creditor: str
    amount_fen: int

    def __post_init__(self) -> None:
        # One expression for the common, valid case (a night has a million of them);
        # _refuse() finds what is wrong only when something is.
        seq, kind, debtor, creditor, amount = (
            self.seq,
            self.kind,
            self.debtor,
            self.creditor,
            self.amount_fen,
        )
        if not (
            type(seq) is int
            and seq >= 0
            and type(amount) is int
            and 0 < amount <= AMOUNT_FEN_MAX
            and type(kind) is str
            and is_slug(kind)
            and type(debtor) is str
            and is_member_id(debtor)
            and type(creditor) is str
            and is_member_id(creditor)
            and debtor != creditor
        ):
            _refuse(self)

    def item(self) -> dict[str, Any]:
        """The report's (and the included root's) JSON item for this obligation."""
        return {
            "seq": self.seq,
            "kind": self.kind,
            "debtor": self.debtor,
            "creditor": self.creditor,
            "amount_fen": self.amount_fen,
        }

    def leaf(self) -> bytes:
        """JCS(``item()``), written directly: keys in RFC 8785 order, integers in the safe
        range and strings that need no escape (checked on construction), so these are
        the bytes ``schemas.canonical`` writes (tests prove it against rfc8785) at a third
        of the cost, for the million leaves of the included root."""
        return (
            _OBLIGATION_LEAF % (self.amount_fen, self.creditor, self.debtor, self.kind, self.seq)
        ).encode("ascii")


_OBLIGATION_LEAF = '{"amount_fen":%d,"creditor":"%s","debtor":"%s","kind":"%s","seq":%d}'


# Callers check the exact type first: a str subclass could compare or hash differently
# from its JSON text. Plain calls: cheaper per obligation than any memo of the answer.
def is_member_id(value: str) -> bool:
    """Whether ``value`` (an exact str) has the form of a member id here: 1..64 ASCII
    letters and digits (a USCC's alphabet)."""
    return 0 < len(value) <= ID_LENGTH_MAX and value.isascii() and value.isalnum()


def is_slug(value: str) -> bool:
    """Whether ``value`` (an exact str) is a kind: 1..64 lowercase ASCII letters and ``_``."""
    return (
        0 < len(value) <= ID_LENGTH_MAX
        and value.isascii()
        and value.replace("_", "").isalpha()
        and value.islower()
    )


@dataclass(frozen=True, slots=True)
class Position:
    """A member's position over the night's obligations: ``net_fen`` > 0 is owed to it."""

    member: str
    net_fen: int
    receivable_fen: int
    payable_fen: int

    def item(self) -> dict[str, Any]:
        return {
            "member": self.member,
            "net_fen": self.net_fen,
            "receivable_fen": self.receivable_fen,
            "payable_fen": self.payable_fen,
        }

    def leaf(self) -> bytes:
        """JCS(``item()``), written directly (keys in RFC 8785 order; a checked member id
        needs no escape; the amounts are safe integers): the positions root's leaf."""
        return _POSITION_LEAF % (
            self.member.encode("ascii"),
            self.net_fen,
            self.payable_fen,
            self.receivable_fen,
        )


_POSITION_LEAF = b'{"member":"%s","net_fen":%d,"payable_fen":%d,"receivable_fen":%d}'


@dataclass(frozen=True, slots=True)
class Instruction:
    """Transfer ``index`` of the night: ``payer`` pays ``payee`` ``amount_fen`` by ``due``."""

    index: int
    payer: str
    payee: str
    amount_fen: int
    due: date
    reference: str

    def item(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "payer": self.payer,
            "payee": self.payee,
            "amount_fen": self.amount_fen,
            "due": self.due.isoformat(),
            "reference": self.reference,
        }

    def leaf(self) -> bytes:
        """JCS(``item()``), written directly like ``Position.leaf()``: the instructions
        root's leaf (a reference is ``AL`` and digits, a date ISO digits)."""
        return (
            _INSTRUCTION_LEAF
            % (
                self.amount_fen,
                self.due.isoformat(),
                self.index,
                self.payee,
                self.payer,
                self.reference,
            )
        ).encode("ascii")


_INSTRUCTION_LEAF = (
    '{"amount_fen":%d,"due":"%s","index":%d,"payee":"%s","payer":"%s","reference":"%s"}'
)


def _refuse(obligation: Obligation) -> None:
    """Raise the error that says what is wrong with ``obligation``. Exact ``int``: ``True``
    is an int to Python but ``true`` in JSON, and an auditor's recomputation would differ."""
    seq = obligation.seq
    if type(seq) is not int or seq < 0:
        raise MalformedError(f"obligation seq {seq!r} must be a non-negative integer", field="seq")
    if type(obligation.kind) is not str or not is_slug(obligation.kind):
        raise MalformedError(
            f"obligation {seq}: kind must be a lowercase slug of 1..{ID_LENGTH_MAX} characters",
            seq=seq,
            field="kind",
        )
    for name, member in (("debtor", obligation.debtor), ("creditor", obligation.creditor)):
        if type(member) is not str or not is_member_id(member):
            raise MalformedError(
                f"obligation {seq}: {name} must be a member id of 1..{ID_LENGTH_MAX}"
                " ASCII letters and digits",
                seq=seq,
                field=name,
            )
    if obligation.debtor == obligation.creditor:
        raise MalformedError(
            f"obligation {seq}: debtor and creditor are both {obligation.debtor}",
            seq=seq,
            field="creditor",
        )
    amount = obligation.amount_fen
    if type(amount) is not int or amount <= 0:
        raise MalformedError(
            f"obligation {seq}: amount_fen must be a positive integer, not {amount!r}",
            seq=seq,
            field="amount_fen",
        )
    raise LimitError(
        f"obligation {seq}: amount_fen {amount} exceeds AMOUNT_FEN_MAX {AMOUNT_FEN_MAX}",
        seq=seq,
        field="amount_fen",
    )


def positions(obligations: Iterable[Obligation]) -> list[Position]:
    """Every member's position over ``obligations``, member ascending.

    Refuses more than OBLIGATIONS_PER_NIGHT_MAX obligations, more than
    POSITIONS_PER_NIGHT_MAX members, and gross amounts beyond AMOUNT_FEN_MAX (every total
    of the night must stay a safe JSON integer) with ``LimitError``."""
    receivable: dict[str, int] = {}
    payable: dict[str, int] = {}
    payable_of, receivable_of = payable.get, receivable.get  # bound once: a million rows
    for count, obligation in enumerate(obligations, 1):
        if count > OBLIGATIONS_PER_NIGHT_MAX:
            raise LimitError(
                f"more than OBLIGATIONS_PER_NIGHT_MAX {OBLIGATIONS_PER_NIGHT_MAX} obligations"
            )
        amount, debtor, creditor = obligation.amount_fen, obligation.debtor, obligation.creditor
        payable[debtor] = payable_of(debtor, 0) + amount
        receivable[creditor] = receivable_of(creditor, 0) + amount
    gross_fen = sum(receivable.values())
    if gross_fen > AMOUNT_FEN_MAX:
        raise LimitError(f"the night's gross {gross_fen} fen exceeds AMOUNT_FEN_MAX")
    members = sorted(receivable.keys() | payable.keys())
    if len(members) > POSITIONS_PER_NIGHT_MAX:
        raise LimitError(
            f"{len(members)} members exceed POSITIONS_PER_NIGHT_MAX {POSITIONS_PER_NIGHT_MAX}"
        )
    result = []
    for member in members:
        owed_to, owed_by = receivable.get(member, 0), payable.get(member, 0)
        result.append(Position(member, owed_to - owed_by, owed_to, owed_by))
    invariant(sum(p.net_fen for p in result) == 0, "net positions do not sum to zero")
    invariant(sum(payable.values()) == gross_fen, "payables and receivables differ")
    return result


def _check_positions(items: Sequence[Position]) -> None:
    """Positions given by a caller must be what ``positions()`` returns: members strictly
    ascending, net = receivable - payable, balanced."""
    if len(items) > POSITIONS_PER_NIGHT_MAX:
        raise LimitError(
            f"{len(items)} positions exceed POSITIONS_PER_NIGHT_MAX {POSITIONS_PER_NIGHT_MAX}"
        )
    previous = ""
    for item in items:
        numbers = (item.net_fen, item.receivable_fen, item.payable_fen)
        if (
            type(item.member) is not str
            or not is_member_id(item.member)
            or any(type(number) is not int for number in numbers)
            or min(item.receivable_fen, item.payable_fen) < 0
        ):
            raise MalformedError(
                f"position {item.member!r}: a member id and integer amounts, never negative"
                " receivable or payable",
                field="positions",
            )
        if item.member <= previous:
            raise MalformedError(
                f"position {item.member!r} is not after {previous!r}: members must be"
                " unique and ascending",
                field="positions",
            )
        if item.net_fen != item.receivable_fen - item.payable_fen:
            raise MalformedError(
                f"position {item.member}: net_fen is not receivable_fen - payable_fen",
                field="positions",
            )
        previous = item.member
    if sum(item.net_fen for item in items) != 0:
        raise MalformedError("positions do not sum to zero", field="positions")


def instructions(
    items: Sequence[Position], day: date, calendar: CalendarModel | None, settlement_days: int
) -> list[Instruction]:
    """The night's transfers by deterministic greedy matching (module docstring), index
    from 0, each due ``settlement_days`` working days after ``day`` in ``calendar``."""
    _check_positions(items)
    return greedy(items, day, calendar, settlement_days)


def greedy(
    items: Sequence[Position], day: date, calendar: CalendarModel | None, settlement_days: int
) -> list[Instruction]:
    """``instructions()`` for positions as ``positions()`` made them (not checked again)."""
    if type(settlement_days) is not int or not 1 <= settlement_days <= SETTLEMENT_DAYS_MAX:
        raise MalformedError(
            f"settlement_days must be within 1..{SETTLEMENT_DAYS_MAX}, not {settlement_days!r}",
            field="settlement_days",
        )
    due = add_working_days(calendar, day, settlement_days)
    # Min-heaps of (-amount, member): the largest amount first, then the smaller id.
    debtors = [(p.net_fen, p.member) for p in items if p.net_fen < 0]
    creditors = [(-p.net_fen, p.member) for p in items if p.net_fen > 0]
    heapq.heapify(debtors)
    heapq.heapify(creditors)
    stem = _reference_stem(day)
    result: list[Instruction] = []
    while debtors:
        invariant(bool(creditors), "debts remain with no creditor left")
        owed, payer = heapq.heappop(debtors)
        due_to, payee = heapq.heappop(creditors)
        amount = min(-owed, -due_to)
        index = len(result)
        result.append(Instruction(index, payer, payee, amount, due, _reference(stem, index)))
        if owed + amount:
            heapq.heappush(debtors, (owed + amount, payer))
        if due_to + amount:
            heapq.heappush(creditors, (due_to + amount, payee))
    invariant(not creditors, "credits remain with no debtor left")
    active = sum(1 for p in items if p.net_fen)
    invariant(len(result) <= max(active - 1, 0), "greedy netting made more than N-1 transfers")
    invariant(len(result) <= INSTRUCTIONS_PER_NIGHT_MAX, "more instructions than the limit")
    return result


def _reference_stem(day: date) -> str:
    return day.strftime("%Y%m%d")


def _reference(stem: str, index: int) -> str:
    """ISO 7064 MOD 97-10 check digits of a string of digits d, as python-stdnum's
    ``calc_check_digits`` computes them: 98 - (d · 100 mod 97), two digits (02..98). A
    hypothesis test checks they are stdnum's; here at a tenth of the cost per instruction.
    ``check_reference`` validates with python-stdnum."""
    digits = f"{stem}{index:0{REFERENCE_INDEX_DIGITS}d}"
    check = _MOD97_BASE - int(digits) * 100 % _MOD97
    return f"{REFERENCE_PREFIX}{stem}-{digits[len(stem) :]}-{check:02d}"


_MOD97, _MOD97_BASE = 97, 98  # ISO 7064 MOD 97-10


def payment_reference(day: date, index: int) -> str:
    """The bank memo of instruction ``index`` of ``day``: ``AL20261201-000003-67``."""
    if type(index) is not int or not 0 <= index < 10**REFERENCE_INDEX_DIGITS:
        raise MalformedError(
            f"instruction index {index!r} does not fit {REFERENCE_INDEX_DIGITS} digits",
            field="index",
        )
    return _reference(_reference_stem(day), index)


def check_reference(reference: str, day: date, index: int) -> None:
    """Raise ``VerificationError`` unless ``reference`` is the memo of (``day``, ``index``)
    with valid MOD 97-10 check digits (checked by python-stdnum, not by our own code)."""
    digits = reference[len(REFERENCE_PREFIX) :].replace("-", "")
    try:
        mod_97_10.validate(digits)
    except ValidationError as exc:
        raise VerificationError(f"reference {reference!r}: bad check digits") from exc
    if reference != payment_reference(day, index):
        raise VerificationError(
            f"reference {reference!r} is not that of instruction {index} of {day.isoformat()}"
        )
