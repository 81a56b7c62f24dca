"""Projection rows: frozen values derived from the log.

Every projection is a table of these rows keyed by the fields named in ``KEYS``. The
in-memory ``State`` holds them while it replays or appends; ``ledger.projections``
writes them to the database tables of the same name and columns. Rebuilding the rows
from the log must give the same rows, byte for byte.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class MetaRow:
    """Log-wide facts: name in {"origin", "policy", "genesis"}; value is canonical JSON."""

    name: str
    value: str
    seq: int


@dataclass(frozen=True, slots=True)
class RegionRow:
    code: str
    name: str
    witness_name: str
    witness_pub: str
    joined_seq: int


@dataclass(frozen=True, slots=True)
class KeyRow:
    """A key a principal held from ``from_seq`` (inclusive) until ``until_seq`` (exclusive)."""

    key_id: str
    principal: str
    pub: str
    from_seq: int
    until_seq: int | None


@dataclass(frozen=True, slots=True)
class MemberRow:
    id: str
    name: str
    kind: str  # merchant | fund | platform
    region: str
    status: str  # active | suspended | withdrawn
    return_days: int
    excluded: str  # canonical JSON list of categories
    enrolled_seq: int
    changed_seq: int


@dataclass(frozen=True, slots=True)
class StoreRow:
    member: str
    store_id: str
    division: str
    name: str


@dataclass(frozen=True, slots=True)
class ReceiptRow:
    """Refunds recorded against one receipt, across all entries."""

    merchant: str
    store: str
    number: str
    amount_fen: int
    purchased: str  # as the first return stated it; later returns must agree
    refunded_fen: int
    returns: int


@dataclass(frozen=True, slots=True)
class EndorsableRow:
    """An entry that needs a decision from each region it touches."""

    target: int
    kind: str
    regions: str  # canonical JSON list of region codes, sorted
    approved: str  # canonical JSON list of region codes, sorted
    rejected: str  # canonical JSON list of region codes, sorted
    status: str  # pending | approved | rejected


@dataclass(frozen=True, slots=True)
class EndorsementRow:
    target: int
    region: str
    decision: str
    seq: int


@dataclass(frozen=True, slots=True)
class ObligationRow:
    """A debt created by a financial entry (source seq)."""

    seq: int
    kind: str  # return | advance
    debtor: str
    creditor: str
    amount_fen: int
    status: str  # pending | effective | held | void
    dispute_seq: int | None
    logged: str


@dataclass(frozen=True, slots=True)
class PostingRow:
    """Double entry: per source seq the postings sum to zero."""

    seq: int
    account: str  # "<member>:payable" | "<member>:receivable"
    amount_fen: int


@dataclass(frozen=True, slots=True)
class CaseRow:
    """An advance-fund case, so the same case is never claimed twice."""

    fund: str
    case: str
    seq: int


@dataclass(frozen=True, slots=True)
class DisputeRow:
    seq: int
    target: int
    debtor: str
    status: str  # open | upheld | dismissed
    resolved_seq: int | None


@dataclass(frozen=True, slots=True)
class PenaltyRow:
    seq: int
    member: str
    rule: str
    points: int
    listing: str  # watch | abnormal | serious
    issued: str  # logged time of the penalty
    until: str
    restored_seq: int | None


@dataclass(frozen=True, slots=True)
class CreditRow:
    """A member's credit as of its last credit-relevant entry (``as_of``)."""

    member: str
    as_of: str
    points: int
    listing: str  # none | watch | abnormal | serious
    grade: str  # A | B | C | D
    returns_honoured: int
    overdue_settlements: int


Row = (
    MetaRow
    | RegionRow
    | KeyRow
    | MemberRow
    | StoreRow
    | ReceiptRow
    | EndorsableRow
    | EndorsementRow
    | ObligationRow
    | PostingRow
    | CaseRow
    | DisputeRow
    | PenaltyRow
    | CreditRow
)

# table name -> (row type, key fields). Order is the rebuild and comparison order.
TABLES: dict[str, tuple[type, tuple[str, ...]]] = {
    "meta": (MetaRow, ("name",)),
    "regions": (RegionRow, ("code",)),
    "principal_keys": (KeyRow, ("key_id",)),
    "members": (MemberRow, ("id",)),
    "stores": (StoreRow, ("member", "store_id")),
    "receipts": (ReceiptRow, ("merchant", "store", "number")),
    "endorsables": (EndorsableRow, ("target",)),
    "endorsements": (EndorsementRow, ("target", "region")),
    "obligations": (ObligationRow, ("seq",)),
    "postings": (PostingRow, ("seq", "account")),
    "cases": (CaseRow, ("fund", "case")),
    "disputes": (DisputeRow, ("seq",)),
    "penalties": (PenaltyRow, ("seq",)),
    "credit": (CreditRow, ("member",)),
}

ROW_TABLE: dict[type, str] = {row_type: name for name, (row_type, _) in TABLES.items()}


def row_key(row: Row) -> tuple[object, ...]:
    table = ROW_TABLE[type(row)]
    return tuple(getattr(row, field) for field in TABLES[table][1])
