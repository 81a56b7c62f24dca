"""Projection rows: immutable values derived from the log.

Every projection is a table of these rows keyed by the fields named in ``TABLES``. The
in-memory ``State`` holds them while it replays or appends; ``ledger.projections``
writes them to the database tables of the same name and columns. Rebuilding the rows
from the log must give the same rows, byte for byte.

Each row is a ``typing.NamedTuple``: immutable like the frozen dataclasses they were,
its fields in column order (``ledger.projections.FIELD_NAMES``), changed by
``row._replace(...)``. A tuple because the writer makes several rows per entry: one is
built about three times faster than a frozen slots dataclass, and it is already the
values tuple the projections store. (The collector still tracks rows: CPython stops
tracking only exact tuples of atoms, never a subclass.) What a tuple adds, the code
must not lean on: two rows of
different types with equal values are equal (and equal to a plain tuple of those
values), so never mix row types in one comparison, set or dict key; and a row is no
JSON object (orjson refuses it, FastAPI and pydantic render it as an array, asdict()
of a dataclass holding one keeps it a tuple), so an API renders one with ``_asdict()``.

The field ``index`` of InstructionRow, OverdueRow and SettlementRow is a column name
(and an instruction's position in its night), so it stays, shadowing ``tuple.index``
on those rows: never call ``.index()`` on a row.
"""

from __future__ import annotations

from typing import NamedTuple


class MetaRow(NamedTuple):
    """Log-wide facts: name in {"origin", "policy", "genesis"}; value is canonical JSON."""

    name: str
    value: str
    seq: int


class RegionRow(NamedTuple):
    code: str
    name: str
    witness_name: str
    witness_pub: str
    joined_seq: int


class KeyRow(NamedTuple):
    """A key a principal held from ``from_seq`` (inclusive) until ``until_seq`` (exclusive)."""

    key_id: str
    principal: str
    pub: str
    from_seq: int
    until_seq: int | None


class MemberRow(NamedTuple):
    id: str
    name: str
    kind: str  # merchant | fund | platform
    region: str
    status: str  # active | suspended | withdrawn
    enrolled_seq: int
    changed_seq: int


class StatusRow(NamedTuple):
    """One status a member took (``logged`` is the entry's logged time): the history says
    whether the member was committed on a purchase date (an enrolment starts it)."""

    member: str
    seq: int
    status: str  # active | suspended | withdrawn
    logged: str


class CommitmentRow(NamedTuple):
    """One commitment of a member (written by its enrolment or a commitment change, never
    changed): it binds purchases from its local date ``effective`` until the next one's."""

    member: str
    seq: int
    effective: str  # YYYY-MM-DD, Asia/Shanghai
    return_days: int


class ExclusionRow(NamedTuple):
    """A category the commitment of ``commitment_seq`` excludes from no-reason returns
    (one row per category; a commitment excluding nothing has none)."""

    member: str
    commitment_seq: int
    category: str


class NetworkRow(NamedTuple):
    """``member`` honours and bills ``peer``'s receipts from ``since_seq`` until
    ``until_seq`` (exclusive; None while it does)."""

    member: str
    peer: str
    since_seq: int
    until_seq: int | None


class StoreRow(NamedTuple):
    """A store, open from its opening entry until ``closed`` (logged times). Store ids are
    never reused, so a receipt always names one store."""

    member: str
    store_id: str
    division: str
    name: str
    opened: str
    closed: str | None


class ReceiptRow(NamedTuple):
    """Refunds that count against one receipt: those of its *live* returns (see
    ReturnRow). ``ref`` is the receipt's hashed identifier (schemas.identifiers.receipt_ref).

    The first live return fixes ``amount_fen`` and ``purchased`` (a local date); later
    returns must agree while any live return remains. When none remains (every return on
    it was rejected or voided) the receipt is free again: ``returns`` and
    ``refunded_fen`` are 0 and ``amount_fen`` / ``purchased`` are None, so a squatter's
    refused claim cannot fix the receipt for the genuine one."""

    merchant: str
    store: str
    ref: str
    amount_fen: int | None
    purchased: str | None
    refunded_fen: int  # the sum of the live returns' refunds
    returns: int  # the number of live returns


class ReceiptLineRow(NamedTuple):
    """One line of a receipt: the units its live returns took back. As for the receipt,
    the first live return fixes ``line_qty`` (the units the line sold); a line with no
    live return is free again (``line_qty`` None, ``returned_qty`` 0)."""

    merchant: str
    store: str
    ref: str
    line: int
    line_qty: int | None
    returned_qty: int


class ReturnRow(NamedTuple):
    """One `return.recorded` (its seq) and the receipt it refunded. It is ``live`` while
    pending or approved, and ``void`` once a region rejects it or an upheld dispute voids
    its obligation (final): only live returns count on the receipt."""

    seq: int
    merchant: str
    store: str
    ref: str
    refund_fen: int
    status: str  # live | void


class ReturnLineRow(NamedTuple):
    """The units a return took back from one receipt line (written with the return, never
    changed): voiding the return gives them back to the line."""

    seq: int
    line: int
    qty: int


class EndorsableRow(NamedTuple):
    """An entry that needs a decision from each region it touches (EndorsementDueRow);
    the decisions are EndorsementRows."""

    target: int
    kind: str
    status: str  # pending | approved | rejected


class EndorsementDueRow(NamedTuple):
    """A region that must decide the endorsable ``target`` (written with it, never changed)."""

    target: int
    region: str


class EndorsementRow(NamedTuple):
    target: int
    region: str
    decision: str
    seq: int


class ObligationRow(NamedTuple):
    """A debt created by a financial entry (source seq)."""

    seq: int
    kind: str  # return | advance | reversal
    debtor: str
    creditor: str
    amount_fen: int
    status: str  # pending | effective | held | void
    dispute_seq: int | None
    logged: str
    effective: str | None  # logged time at which it first became effective (disputes count from it)
    # The seq of the `reconciliation.closed` that included it (None: not yet, or its night
    # was void). Once set, an upheld dispute reverses the claim instead of voiding it.
    reconciled: int | None = None


class PostingRow(NamedTuple):
    """Double entry: one side of an obligation (per source seq the two sum to zero).

    Not a stored projection: postings are a pure function of their obligation
    (ledger.kinds.money.postings_of), and the database derives the same rows in the
    ``postings`` view (ledger.reads.POSTINGS)."""

    seq: int
    account: str  # "<member>:payable" | "<member>:receivable"
    amount_fen: int


class CaseRow(NamedTuple):
    """An advance case, unique per liable merchant across the alliance: one loss is
    recovered once, whichever fund or platform paid it."""

    liable: str
    case: str
    seq: int
    payer: str


class DisputeRow(NamedTuple):
    seq: int
    target: int
    debtor: str
    status: str  # open | upheld | dismissed
    resolved_seq: int | None


class PenaltyRow(NamedTuple):
    """A `credit.penalty` (its seq): the decision on a notice, by the region that gave it."""

    seq: int
    member: str
    region: str  # the deciding region; with decision_no, the key of its DecisionRow
    notice: int
    decision_no: str  # 文号
    rule: str
    points: int
    measure: str  # warning | suspension | delisting
    issued: str  # logged time of the penalty
    until: str
    restored_seq: int | None


class CreditRow(NamedTuple):
    """A member's credit as of its last credit-relevant entry (``as_of``)."""

    member: str
    as_of: str
    points: int
    measure: str  # none | warning | suspension | delisting
    stars: int  # 5 (best) .. 1
    returns_honoured: int
    overdue_settlements: int


class NoticeRow(NamedTuple):
    """A `credit.notice` (告知, its seq): what the region proposes and until when the
    member may object. ``objection_until`` is fixed at notice time (24:00 local on the
    deadline, moved past days off by the policy calendar then in force); the objection
    and the decision are recorded as they come (new versions of the row)."""

    seq: int
    member: str
    region: str
    rule: str
    points: int  # proposed
    measure: str  # proposed
    issued: str  # logged time of the notice
    deadline: str  # local date YYYY-MM-DD
    objection_until: str  # logged times before this may object, from it on decide
    objection_seq: int | None
    decision_seq: int | None


class NoticeEvidenceRow(NamedTuple):
    """One evidence seq a notice cites (written with the notice, never changed)."""

    notice: int
    evidence: int


class DecisionRow(NamedTuple):
    """A decision number (文号) a region used, unique per region, with the restoration
    terms of the policy in force when it decided: restoration follows these, not a
    later policy."""

    region: str
    decision_no: str
    penalty: int
    restore_after_days: int
    cure: str | None  # the entry kind that cures the fault, if the log can show one


class DayEndRow(NamedTuple):
    """The tree size after the last entry logged before 00:00 local that ends ``day``:
    the cutoff of business day ``day`` (written when the first later entry is logged)."""

    day: str  # YYYY-MM-DD, Asia/Shanghai
    tree_size: int


class NightRow(NamedTuple):
    """A `reconciliation.closed` (its seq) of business day ``day``: pending until every
    region approved it, then approved (its instructions payable), or void if one rejected
    it (its obligations are eligible again the next night)."""

    seq: int
    day: str
    cutoff_size: int
    instructions: int
    status: str  # pending | approved | void


class InstructionRow(NamedTuple):
    """One settlement instruction of the night ``night`` (a seq), with what was paid and
    confirmed against it so far. Discharged when confirmed_fen reaches amount_fen."""

    night: int
    index: int  # type: ignore[assignment]  # a column: shadows tuple.index (module doc)
    payer: str
    payee: str
    amount_fen: int
    due: str  # YYYY-MM-DD
    paid_fen: int
    confirmed_fen: int


class OverdueRow(NamedTuple):
    """Instruction (``night``, ``index``) listed overdue, with its payer, by the report of
    the night ``listed`` (a seq): the credit process cites that night as evidence."""

    listed: int
    night: int
    index: int  # type: ignore[assignment]  # a column: shadows tuple.index (module doc)
    payer: str
    amount_fen: int
    days: int


class SettlementRow(NamedTuple):
    """A `settlement.paid` or `settlement.confirmed` (its seq) against an instruction."""

    seq: int
    kind: str  # paid | confirmed
    night: int
    index: int  # type: ignore[assignment]  # a column: shadows tuple.index (module doc)
    amount_fen: int
    logged: str  # when it was logged: a payment unconfirmed for confirm_days is escalated


Row = (
    MetaRow
    | RegionRow
    | KeyRow
    | MemberRow
    | StatusRow
    | CommitmentRow
    | ExclusionRow
    | NetworkRow
    | StoreRow
    | ReceiptRow
    | ReceiptLineRow
    | ReturnRow
    | ReturnLineRow
    | EndorsableRow
    | EndorsementDueRow
    | EndorsementRow
    | ObligationRow
    | CaseRow
    | DisputeRow
    | PenaltyRow
    | CreditRow
    | NoticeRow
    | NoticeEvidenceRow
    | DecisionRow
    | DayEndRow
    | NightRow
    | InstructionRow
    | OverdueRow
    | SettlementRow
)

# table name -> (row type, key fields). Order is the rebuild and comparison order.
TABLES: dict[str, tuple[type, tuple[str, ...]]] = {
    "meta": (MetaRow, ("name",)),
    "regions": (RegionRow, ("code",)),
    "principal_keys": (KeyRow, ("key_id",)),
    "members": (MemberRow, ("id",)),
    "member_statuses": (StatusRow, ("member", "seq")),
    "commitments": (CommitmentRow, ("member", "seq")),
    "exclusions": (ExclusionRow, ("member", "commitment_seq", "category")),
    "networks": (NetworkRow, ("member", "peer")),
    "stores": (StoreRow, ("member", "store_id")),
    "receipts": (ReceiptRow, ("merchant", "store", "ref")),
    "receipt_lines": (ReceiptLineRow, ("merchant", "store", "ref", "line")),
    "receipt_returns": (ReturnRow, ("seq",)),
    "return_lines": (ReturnLineRow, ("seq", "line")),
    "endorsables": (EndorsableRow, ("target",)),
    "endorsement_dues": (EndorsementDueRow, ("target", "region")),
    "endorsements": (EndorsementRow, ("target", "region")),
    "obligations": (ObligationRow, ("seq",)),
    "cases": (CaseRow, ("liable", "case")),
    "disputes": (DisputeRow, ("seq",)),
    "penalties": (PenaltyRow, ("seq",)),
    "credit": (CreditRow, ("member",)),
    "credit_notices": (NoticeRow, ("seq",)),
    "notice_evidence": (NoticeEvidenceRow, ("notice", "evidence")),
    "credit_decisions": (DecisionRow, ("region", "decision_no")),
    "day_ends": (DayEndRow, ("day",)),
    "nights": (NightRow, ("seq",)),
    "instructions": (InstructionRow, ("night", "index")),
    "overdue_listings": (OverdueRow, ("listed", "night", "index")),
    "settlements": (SettlementRow, ("seq",)),
}

ROW_TABLE: dict[type, str] = {row_type: name for name, (row_type, _) in TABLES.items()}


def row_key(row: Row) -> tuple[object, ...]:
    table = ROW_TABLE[type(row)]
    return tuple(getattr(row, field) for field in TABLES[table][1])
