"""Nightly reconciliation and settlement (issue 8, DESIGN §5): ``reconciliation.closed``,
``settlement.paid`` and ``settlement.confirmed``.

**The night of business day D** (Asia/Shanghai). Its cutoff is the tree size after the
last entry logged before D+1 00:00 local (``DayEndRow``, written by ``admit`` when the
first later entry is logged; ``logged`` never decreases along seq). The operator closes
D with one ``reconciliation.closed`` whose body the writer, every region node and the
auditor recompute from the log alone (``night_report``) and refuse unless equal:

* **Included**: every obligation that became effective before the cutoff (all its
  required approvals logged before D+1 00:00), that is still effective when the night is
  closed (not void, not held by an open dispute) and that no earlier night included.
  "Still effective when closed", not "at the cutoff": a claim voided between the cutoff
  and the closing must not move money, because only a claim a night included gets a
  reversal when a dispute against it is upheld later.
* **Overdue**: every instruction of an approved earlier night not discharged by its due
  date, with the amount still unconfirmed and the days past due at D.

Days are closed once each, in order: D needs D−1 closed (or D−1 before the log began),
and never before D+1 00:00. The night is pending until every region approved it (an
``endorsement`` of its seq): only then are its instructions payable. One rejection voids
it: its obligations become eligible again the next night.

**Paying.** The payer logs ``settlement.paid`` (partial payments allowed, never beyond
the instruction); the payee logs ``settlement.confirmed`` (never beyond what was paid).
An instruction is discharged when its confirmed amount reaches its amount.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from ledger.calendar import day_bounds, local_date
from ledger.kinds.credit import compute_credit
from ledger.rows import (
    EndorsableRow,
    EndorsementDueRow,
    InstructionRow,
    NightRow,
    ObligationRow,
    OverdueRow,
    Row,
    SettlementRow,
)
from ledger.state import OPERATOR, Context, State, register
from reconciliation.netting import Obligation
from reconciliation.report import (
    Overdue,
    Report,
    build_report,
    closed_body,
    items_root,
    report_bytes,
)
from reconciliation.streaming import leaves_root
from schemas.bodies import ReconciliationClosedBody, SettlementConfirmedBody, SettlementPaidBody
from schemas.canonical import canonical, parse_json
from schemas.entry import parse_time
from schemas.errors import MalformedError, PolicyError, TamperedError, invariant
from signing.keys import b64decode, b64encode

RECONCILIATION = "reconciliation"  # the endorsable kind of a night
PENDING, APPROVED, VOID = "pending", "approved", "void"
EFFECTIVE = "effective"
PAID, CONFIRMED = "paid", "confirmed"
# A payer or payee may be suspended: a suspension does not cancel a debt or a payment.
SETTLING_SIGNERS = frozenset({"active", "suspended"})


# --- the night -------------------------------------------------------------------------


def cutoff_size(state: State, day: date, seq: int, logged: datetime) -> int:
    """The tree size at the end of business ``day``, for an entry at ``seq`` logged at
    ``logged``: refused before D+1 00:00 local, or for a day before the log began."""
    if local_date(logged) <= day:
        raise PolicyError(
            f"business day {day.isoformat()} cannot be closed before 00:00 on the next day",
            field="body.day",
        )
    ended = state.day_ends.get(day.isoformat())
    if ended is not None:
        return ended.tree_size
    last = None if state.last_logged is None else local_date(parse_time(state.last_logged))
    if last is not None and last <= day:
        return seq  # nothing was logged since the day ended: it ends at this entry
    raise PolicyError(f"business day {day.isoformat()} is before the log began", field="body.day")


def _check_order(state: State, day: date) -> None:
    """Each day once, in order: the day before must be closed unless the log began after it."""
    text = day.isoformat()
    if text in state.night_of_day:
        seq = state.night_of_day[text]
        raise PolicyError(f"business day {text} was closed at seq {seq}", field="body.day")
    before = day - timedelta(days=1)
    if _in_log(state, before) and before.isoformat() not in state.night_of_day:
        raise PolicyError(
            f"business day {before} is not closed yet: nights close in order", field="body.day"
        )


def _in_log(state: State, day: date) -> bool:
    """Whether the log existed on ``day`` (it has a day end, or is still in it or before)."""
    if state.day_ends.get(day.isoformat()) is not None:
        return True
    return state.last_logged is not None and local_date(parse_time(state.last_logged)) <= day


def eligible(state: State, day: date) -> Iterator[Obligation]:
    """The obligations the night of ``day`` includes, by seq (module docstring)."""
    _, cutoff_time = day_bounds(day)
    open_seqs = sorted(state.unreconciled)
    state.page_in("obligations", [(seq,) for seq in open_seqs])  # one read, not one each
    for seq in open_seqs:
        row = state.obligations.get(seq)
        invariant(row is not None, f"unreconciled index names a missing obligation {seq}")
        assert row is not None
        if row.status != EFFECTIVE or row.effective is None:
            continue
        if parse_time(row.effective) >= cutoff_time:
            continue
        yield Obligation(row.seq, row.kind, row.debtor, row.creditor, row.amount_fen)


def overdue(state: State, day: date) -> list[Overdue]:
    """Instructions of approved earlier nights not discharged by their due date."""
    items: list[Overdue] = []
    for night_seq, index in sorted(state.undischarged):
        night = state.nights.get(night_seq)
        instruction = state.instructions.get(night_seq, index)
        invariant(night is not None and instruction is not None, "a dangling instruction")
        assert night is not None and instruction is not None
        due = date.fromisoformat(instruction.due)
        if night.status != APPROVED or due >= day:
            continue
        unconfirmed = instruction.amount_fen - instruction.confirmed_fen
        items.append(
            Overdue(
                date.fromisoformat(night.day),
                index,
                instruction.payer,
                instruction.payee,
                unconfirmed,
                due,
                (day - due).days,
            )
        )
    return items


def night_report(state: State, day: date, cutoff: int, cutoff_root: bytes) -> Report:
    """The report of ``day`` as the log stands: what a closing entry must commit to."""
    policy = state.policy
    return build_report(
        day,
        cutoff,
        cutoff_root,
        eligible(state, day),
        calendar=policy.calendar,
        settlement_days=policy.settlement_days,
        overdue=overdue(state, day),
    )


def _cutoff_root(state: State, cutoff: int, claimed: str) -> bytes:
    """The root at ``cutoff`` from the tree the caller verified, checked against the
    body's; without a tree (a replay of bodies alone) the body's root is taken as given."""
    if state.tree_root is None:
        return b64decode(claimed)
    root = state.tree_root(cutoff)
    if b64encode(root) != claimed:
        raise PolicyError(
            f"the cutoff root is not the log's root at tree size {cutoff}",
            field="body.cutoff.root",
        )
    return root


def _first_difference(expected: dict[str, object], body: dict[str, object]) -> str:
    for name in ("day", "cutoff", "totals", "included", "positions", "instructions"):
        mine, theirs = expected.get(name), body.get(name)
        if isinstance(mine, dict) and isinstance(theirs, dict):
            for key in sorted(mine):
                if mine[key] != theirs.get(key):
                    return f"body.{name}.{key}"
        elif mine != theirs:
            return f"body.{name}"
    return "body"


@register("reconciliation.closed", ReconciliationClosedBody)
def reconciliation_closed(state: State, ctx: Context, body: ReconciliationClosedBody) -> list[Row]:
    """Close business day ``body.day``: refused unless the body is exactly the night the
    log gives (module docstring)."""
    if ctx.signer != OPERATOR:
        raise PolicyError("a night is closed by the operator", field="signer")
    day = date.fromisoformat(body.day)
    cutoff = cutoff_size(state, day, ctx.seq, ctx.logged)
    _check_order(state, day)
    if body.cutoff.tree_size != cutoff:
        raise PolicyError(
            f"business day {body.day} ends at tree size {cutoff}, not {body.cutoff.tree_size}",
            field="body.cutoff.tree_size",
        )
    report = night_report(state, day, cutoff, _cutoff_root(state, cutoff, body.cutoff.root))
    expected = closed_body(report)
    given = body.model_dump()
    if expected != given:
        field = _first_difference(expected, given)
        raise PolicyError(f"the night of {body.day} is not what the log gives", field=field)
    rows = _night_rows(state, ctx, report)
    state.reports.append((body.day, ctx.seq, report_bytes(report)))  # after every check
    return rows


def _night_rows(state: State, ctx: Context, report: Report) -> list[Row]:
    seq = ctx.seq
    rows: list[Row] = [
        NightRow(
            seq, report.day.isoformat(), report.cutoff_size, len(report.instructions), PENDING
        ),
        EndorsableRow(seq, RECONCILIATION, PENDING),
    ]
    rows += [EndorsementDueRow(seq, code) for code in state.region_codes()]
    for included in report.included:
        obligation = state.obligations.get(included)
        invariant(obligation is not None, f"included obligation {included} is missing")
        assert obligation is not None
        rows.append(obligation._replace(reconciled=seq))
    rows += [
        InstructionRow(seq, i.index, i.payer, i.payee, i.amount_fen, i.due.isoformat(), 0, 0)
        for i in report.instructions
    ]
    first_time: Counter[str] = Counter()
    for item in report.overdue:
        night = state.night_of_day.get(item.day.isoformat())
        invariant(night is not None, f"overdue instruction of an unknown night {item.day}")
        assert night is not None
        rows.append(OverdueRow(seq, night, item.index, item.payer, item.amount_fen, item.days))
        if item.days == 1:  # the night after its due date: the first that lists it
            first_time[item.payer] += 1
    # Each instruction not discharged by its due date counts once in its payer's credit
    # record (overdue_settlements), when the first night lists it.
    rows += [
        compute_credit(state, payer, ctx.logged, ctx.logged_text, overdue_delta=count)
        for payer, count in sorted(first_time.items())
    ]
    return rows


def night_decided(state: State, endorsable: EndorsableRow) -> list[Row]:
    """A night's rows once its regions decided: approved (payable), or void (its
    obligations go back to the pool for the next night)."""
    night = state.nights.get(endorsable.target)
    invariant(night is not None, f"endorsable night {endorsable.target} has no night row")
    assert night is not None
    if endorsable.status == APPROVED:
        return [night._replace(status=APPROVED)]
    if endorsable.status != "rejected":
        return []
    rows: list[Row] = [night._replace(status=VOID)]
    for obligation in state.obligations.rows():  # rare: a full scan once per void night
        if obligation.reconciled == night.seq:
            rows.append(obligation._replace(reconciled=None))
    return rows


def is_settled(state: State, obligation: ObligationRow) -> bool:
    """Whether a night that was not voided included ``obligation`` (money may have moved:
    an upheld dispute then reverses it instead of voiding it)."""
    if obligation.reconciled is None:
        return False
    night = state.nights.get(obligation.reconciled)
    return night is not None and night.status != VOID


# --- a stored report ---------------------------------------------------------------------


def check_report(
    report: bytes,
    body: Mapping[str, Any],
    obligation: Callable[[int], Obligation | None] | None = None,
) -> None:
    """Raise TamperedError unless ``report`` is the JCS report the closing ``body``
    commits to: its day and cutoff, each list's count, the positions and instructions
    roots, and, given the log's ``obligation`` look-up, the included root (without one,
    the auditor's replay, which recomputes the report byte for byte, checks that)."""
    try:
        document = parse_json(report)
    except MalformedError as exc:
        raise TamperedError(f"the stored report of {body['day']} is not JSON") from exc
    if not isinstance(document, dict) or canonical(document) != report:
        raise TamperedError(f"the stored report of {body['day']} is not canonical JSON")
    if document.get("day") != body["day"] or document.get("cutoff") != body["cutoff"]:
        raise TamperedError(f"the stored report of {body['day']} is of another night")
    for name in ("included", "positions", "instructions"):
        if not isinstance(document.get(name), list) or len(document[name]) != body[name]["count"]:
            raise TamperedError(f"the stored report of {body['day']} has another {name} count")
    roots = {
        "positions": items_root(document["positions"]),
        "instructions": items_root(document["instructions"]),
    }
    if obligation is not None:
        included = [obligation(seq) for seq in document["included"]]
        if any(item is None for item in included):
            raise TamperedError(f"the report of {body['day']} includes a seq with no obligation")
        roots["included"] = leaves_root(item.leaf() for item in included if item is not None)
    for name, root in roots.items():
        if b64encode(root) != body[name]["root"]:
            raise TamperedError(f"the stored report of {body['day']} does not match its {name}")


# --- paying ------------------------------------------------------------------------------


def _payable(state: State, night_seq: int, index: int) -> InstructionRow:
    night = state.nights.get(night_seq)
    if night is None:
        raise PolicyError(f"seq {night_seq} is not a closed night", field="body.reconciliation")
    if night.status == VOID:
        raise PolicyError(
            f"the night of {night.day} is void: its instructions are not payable",
            field="body.reconciliation",
        )
    if night.status != APPROVED:
        raise PolicyError(
            f"the night of {night.day} is not yet approved by every region",
            field="body.reconciliation",
        )
    instruction = state.instructions.get(night_seq, index)
    if instruction is None:
        raise PolicyError(
            f"the night of {night.day} has {night.instructions} instructions, not index {index}",
            field="body.instruction",
        )
    return instruction


@register("settlement.paid", SettlementPaidBody, signer_statuses=SETTLING_SIGNERS)
def settlement_paid(state: State, ctx: Context, body: SettlementPaidBody) -> list[Row]:
    instruction = _payable(state, body.reconciliation, body.instruction)
    if ctx.signer != instruction.payer:
        raise PolicyError(
            f"instruction {body.instruction} is paid by {instruction.payer}, not {ctx.signer}",
            field="signer",
        )
    left = instruction.amount_fen - instruction.paid_fen
    if body.amount_fen > left:
        raise PolicyError(
            f"{body.amount_fen} fen pays beyond the instruction: {left} fen is left to pay",
            field="body.amount_fen",
        )
    return [
        instruction._replace(paid_fen=instruction.paid_fen + body.amount_fen),
        SettlementRow(
            ctx.seq, PAID, body.reconciliation, body.instruction, body.amount_fen, ctx.logged_text
        ),
    ]


@register("settlement.confirmed", SettlementConfirmedBody, signer_statuses=SETTLING_SIGNERS)
def settlement_confirmed(state: State, ctx: Context, body: SettlementConfirmedBody) -> list[Row]:
    instruction = _payable(state, body.reconciliation, body.instruction)
    if ctx.signer != instruction.payee:
        raise PolicyError(
            f"instruction {body.instruction} is confirmed by its payee {instruction.payee}, "
            f"not {ctx.signer}",
            field="signer",
        )
    if instruction.confirmed_fen == instruction.amount_fen:
        raise PolicyError(
            f"instruction {body.instruction} is already discharged", field="body.instruction"
        )
    unconfirmed = instruction.paid_fen - instruction.confirmed_fen
    if body.amount_fen > unconfirmed:
        raise PolicyError(
            f"{body.amount_fen} fen confirms more than was paid: {unconfirmed} fen paid is "
            "unconfirmed",
            field="body.amount_fen",
        )
    return [
        instruction._replace(confirmed_fen=instruction.confirmed_fen + body.amount_fen),
        SettlementRow(
            ctx.seq,
            CONFIRMED,
            body.reconciliation,
            body.instruction,
            body.amount_fen,
            ctx.logged_text,
        ),
    ]


# --- escalation ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Escalation:
    """A payment the payee has not confirmed within ``policy.confirm_days``: the payee's
    region looks into it; the payer is not penalised for the payee's silence."""

    night: int
    index: int
    payer: str
    payee: str
    region: str  # the payee's
    unconfirmed_fen: int
    paid_seq: int  # the oldest payment not covered by confirmations
    days: int  # whole days since that payment


def escalations(state: State, now: datetime) -> list[Escalation]:
    """Every instruction with a recorded payment its payee left unconfirmed for longer
    than the policy's confirm_days (confirmations cover the oldest payments first)."""
    limit_days = state.policy.confirm_days
    payments: dict[tuple[int, int], list[SettlementRow]] = {}
    for row in state.settlements.rows():
        if row.kind == PAID and (row.night, row.index) in state.undischarged:
            payments.setdefault((row.night, row.index), []).append(row)
    found = []
    for key, paid in sorted(payments.items()):
        instruction = state.instructions.get(*key)
        invariant(instruction is not None, f"a payment of a missing instruction {key}")
        assert instruction is not None
        covered = instruction.confirmed_fen
        for payment in sorted(paid, key=lambda row: row.seq):
            if covered >= payment.amount_fen:
                covered -= payment.amount_fen
                continue
            days = (now - parse_time(payment.logged)).days
            if days > limit_days:
                payee = state.member(instruction.payee)
                region = payee.region if payee is not None else ""
                unconfirmed = instruction.paid_fen - instruction.confirmed_fen
                found.append(
                    Escalation(
                        *key,
                        instruction.payer,
                        instruction.payee,
                        region,
                        unconfirmed,
                        payment.seq,
                        days,
                    )
                )
            break
    return found
