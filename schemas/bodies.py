"""Strict wire models of every entry body (DESIGN §3, contract field names)."""

from __future__ import annotations

import itertools
from datetime import date
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, StringConstraints, ValidationError

from schemas.entry import PRINTABLE_TEXT_PATTERN, KeyModel, Rfc3339, WireModel, first_error
from schemas.errors import MalformedError
from schemas.limits import (
    AMOUNT_FEN_MAX,
    AUDITORS_MAX,
    CALENDAR_DATES_MAX,
    ENDORSEMENT_TARGETS_MAX,
    EVIDENCE_SEQS_MAX,
    ID_LENGTH_MAX,
    INSTRUCTIONS_PER_NIGHT_MAX,
    ITEMS_PER_RETURN_MAX,
    KEYS_PER_PRINCIPAL_MAX,
    LINE_QTY_MAX,
    NETWORK_MEMBERS_MAX,
    RECEIPT_LINES_MAX,
    REGIONS_MAX,
    STORES_PER_MEMBER_MAX,
    TEXT_LENGTH_MAX,
)

# The two free-text types; every other string below has a printable-ASCII pattern.
Text = Annotated[
    str,
    StringConstraints(min_length=1, max_length=TEXT_LENGTH_MAX, pattern=PRINTABLE_TEXT_PATTERN),
]
TextOrEmpty = Annotated[
    str, StringConstraints(max_length=TEXT_LENGTH_MAX, pattern=PRINTABLE_TEXT_PATTERN)
]
Ident = Annotated[
    str, StringConstraints(min_length=1, max_length=ID_LENGTH_MAX, pattern=r"^[\x21-\x7e]+$")
]
Uscc = Annotated[str, StringConstraints(pattern=r"^[0-9A-HJ-NP-RTUW-Y]{18}$")]
RegionCode = Annotated[str, StringConstraints(pattern=r"^[1-9][0-9]$")]
Division = Annotated[str, StringConstraints(pattern=r"^[1-9][0-9]{5}$")]
Category = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,47}$")]
Fen = Annotated[int, Field(ge=1, le=AMOUNT_FEN_MAX)]
Seq = Annotated[int, Field(ge=0, le=AMOUNT_FEN_MAX)]  # bounded: RFC 8785 safe integers
KeyList = Annotated[list[KeyModel], Field(min_length=1, max_length=KEYS_PER_PRINCIPAL_MAX)]
# A code from one of the policy's lists (a slug: never free text, DESIGN §3a).
Code = Annotated[str, StringConstraints(pattern=r"^[a-z0-9_]{1,48}$")]
# SHA-256 of something kept off the log (a case file, a note), as lowercase hex.
Sha256Hex = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
# base64url, unpadded, of SHA-256 (schemas.identifiers.receipt_ref): 43 characters.
ReceiptRef = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{43}$")]


def _calendar_date(text: str) -> str:
    """A YYYY-MM-DD that names a real day (the pattern alone admits 2026-02-31)."""
    date.fromisoformat(text)  # ValueError becomes the model's validation error
    return text


# A local calendar date (Asia/Shanghai), YYYY-MM-DD.
LocalDate = Annotated[
    str, StringConstraints(pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"), AfterValidator(_calendar_date)
]


# --- genesis and policy -----------------------------------------------------------------


class WitnessModel(WireModel):
    name: Annotated[str, StringConstraints(pattern=r"^[\x21-\x2a\x2c-\x7e]{1,128}$")]
    pub: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9+/]{43}=$")]


class RegionModel(WireModel):
    code: RegionCode
    name: Text
    keys: KeyList
    witness: WitnessModel


# The alliance's own credit measures, mildest first (DESIGN §3a): 联盟警示, 暂停承诺资格,
# 摘牌. Never the registration authority's 经营异常名录 / 严重违法失信名单, which only it
# may issue.
Measure = Literal["warning", "suspension", "delisting"]
MEASURES: tuple[str, ...] = ("warning", "suspension", "delisting")
# The entry kinds that can evidence a credit rule, and those that can cure one: each has
# its proof in ledger.kinds.credit (EVIDENCE_PROOFS, CURE_PROOFS), which covers both lists.
EvidenceKind = Literal["endorsement", "dispute.resolved", "advance.paid", "reconciliation.closed"]
CureKind = Literal["return.recorded", "settlement.confirmed"]


class PenaltyRuleModel(WireModel):
    points: Annotated[int, Field(ge=0, le=1000)]
    measure: Measure
    days: Annotated[int, Field(ge=1, le=3650)]  # how long a measure lasts at most
    restore_after_days: Annotated[int, Field(ge=0, le=3650)]  # 信用修复 waiting time
    # The kinds of entry a notice under this rule may cite (the policy maps rule -> kinds).
    evidence_kinds: Annotated[list[EvidenceKind], Field(min_length=1, max_length=4)]
    # The entry that cures the fault, when the log can show it; restoration must cite it.
    cure: CureKind | None = None


class ZoneModel(WireModel):
    """A cross-region zone (the demonstration zone): members of any of its regions may
    enrol stores in any of its divisions."""

    name: Text
    divisions: Annotated[list[Division], Field(min_length=1, max_length=64)]


# Star ratings below the best (5), best first: the policy's ``stars`` maps each to the
# points in the trailing window from which a member has at most that many stars.
STAR_STEPS: tuple[str, ...] = ("4", "3", "2", "1")


def _rising_stars(thresholds: dict[str, int]) -> dict[str, int]:
    """Every star count below 5 has a threshold (and nothing else has), and fewer stars
    need more points."""
    if sorted(thresholds) != sorted(STAR_STEPS):
        raise ValueError(f"stars has one threshold for each of {', '.join(STAR_STEPS)} stars")
    points = [thresholds[star] for star in STAR_STEPS]
    if any(lower >= higher for lower, higher in itertools.pairwise(points)):
        raise ValueError("star thresholds must rise: points for 4 < 3 < 2 < 1 stars")
    return thresholds


StarThresholds = Annotated[
    dict[
        Annotated[str, StringConstraints(pattern=r"^[1-4]$")],
        Annotated[int, Field(ge=1, le=100_000)],
    ],
    AfterValidator(_rising_stars),
]


class CalendarModel(WireModel):
    """Days off (民法典 art. 203: a period whose last day is a statutory day off ends on
    the next working day; reconciliation's due dates count working days). A day is off
    when it is listed in ``holidays``, or falls on one of ``rest_weekdays`` (ISO: 1 =
    Monday … 7 = Sunday) and is not a listed make-up ``workdays`` day (调休)."""

    rest_weekdays: Annotated[list[Annotated[int, Field(ge=1, le=7)]], Field(max_length=7)]
    holidays: Annotated[list[LocalDate], Field(max_length=CALENDAR_DATES_MAX)]
    workdays: Annotated[list[LocalDate], Field(max_length=CALENDAR_DATES_MAX)]


# Who may advance payment first on which legal basis (消法 arts. 43/44, 民法典 art. 524,
# a fund's own agreement): a basis code -> the member kinds that may cite it.
PayerKind = Literal["fund", "platform"]
DEFAULT_ADVANCE_BASES: dict[str, list[PayerKind]] = {
    "consumer_law_43": ["platform"],  # 展销会举办者、柜台出租者
    "consumer_law_44": ["platform"],  # 网络交易平台
    "civil_code_524": ["fund"],  # a pooled fund paying for the debtor
    "fund_agreement": ["fund"],
}


# The codes a free-text reason became (DESIGN §3a: no consumer data in the log): what
# each purpose may say, in the policy so that the regions can extend the lists.
DEFAULT_REASONS: dict[str, list[str]] = {
    "dispute": [
        "not_our_sale",
        "goods_not_returned",
        "goods_used",
        "amount_wrong",
        "outside_window",
        "excluded_goods",
        "already_refunded",
        "settled_with_consumer",
        "no_consumer_complaint",
        "not_liable",
    ],
    "rejection": [
        "receipt_not_genuine",
        "outside_window",
        "excluded_goods",
        "not_in_network",
        "no_consumer_complaint",
        "duplicate_claim",
        "evidence_insufficient",
        "rejected_by_region",
        # A night (reconciliation.closed) the region's recomputation does not match.
        "report_mismatch",
    ],
    # Why a region suspends, reinstates or withdraws a member: codes, never free text
    # (a note with names or details is kept off the log under note_hash).
    "suspension": [
        "inspection",
        "complaints_under_review",
        "credit_measure",
        "unpaid_settlement",
        "licence_suspended",
    ],
    "reinstatement": ["inspection_passed", "cured", "measure_ended", "appeal_upheld"],
    "withdrawal": ["member_request", "business_closed", "licence_revoked", "delisted"],
}
# Credit (issue 7 §4): what a member may answer to a notice (陈述申辩), and on what ground
# its region restores it (信用修复).
DEFAULT_REASONS["objection"] = [
    "evidence_wrong",
    "not_responsible",
    "already_cured",
    "disproportionate",
    "procedure_wrong",
    "force_majeure",
]
DEFAULT_REASONS["restoration"] = [
    "cured_on_log",
    "conduct_corrected",
    "commitment_renewed",
    "training_completed",
]
ReasonList = Annotated[list[Code], Field(max_length=256)]


class ReasonsModel(WireModel):
    dispute: ReasonList = Field(default_factory=lambda: list(DEFAULT_REASONS["dispute"]))
    rejection: ReasonList = Field(default_factory=lambda: list(DEFAULT_REASONS["rejection"]))
    suspension: ReasonList = Field(default_factory=lambda: list(DEFAULT_REASONS["suspension"]))
    reinstatement: ReasonList = Field(
        default_factory=lambda: list(DEFAULT_REASONS["reinstatement"])
    )
    withdrawal: ReasonList = Field(default_factory=lambda: list(DEFAULT_REASONS["withdrawal"]))
    objection: ReasonList = Field(default_factory=lambda: list(DEFAULT_REASONS["objection"]))
    restoration: ReasonList = Field(default_factory=lambda: list(DEFAULT_REASONS["restoration"]))


class AuditorModel(WireModel):
    """An auditor the policy declares (issue 9): its name and its request-signing keys.
    Its signed reads see what the operator's see; a later `policy.adopted` without it
    (or without a key) ends them from that entry on."""

    name: Ident
    keys: KeyList


class PolicyModel(WireModel):
    return_days_min: Annotated[int, Field(ge=7, le=365)]
    excluded_categories: Annotated[list[Category], Field(max_length=256)]
    local_excluded_categories: dict[RegionCode, list[Category]]
    settlement_days: Annotated[int, Field(ge=1, le=90)]
    dispute_days: Annotated[int, Field(ge=1, le=365)]
    entry_time_skew_s: Annotated[int, Field(ge=1, le=86_400)]
    points_window_days: Annotated[int, Field(ge=1, le=3650)]
    stars: StarThresholds
    rules: dict[Ident, PenaltyRuleModel]
    zones: Annotated[list[ZoneModel], Field(max_length=16)]
    # How long after refunding a consumer (`accepted`) a till may still log the return.
    recording_lag_days: Annotated[int, Field(ge=0, le=30)] = 3
    calendar: CalendarModel | None = None
    reasons: ReasonsModel = Field(default_factory=ReasonsModel)
    advance_bases: dict[Code, list[PayerKind]] = Field(
        default_factory=lambda: {code: list(kinds) for code, kinds in DEFAULT_ADVANCE_BASES.items()}
    )
    # A credit notice's objection deadline lies this many days after its local date, at
    # least and at most (陈述申辩: the member must have time to answer, not forever).
    # When the nightly job closes the day before (local HH:MM), and how many days a
    # payee has to confirm a recorded payment before it is escalated to its region.
    reconcile_at: Annotated[str, StringConstraints(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")] = (
        "00:30"
    )
    confirm_days: Annotated[int, Field(ge=1, le=30)] = 3
    objection_days_min: Annotated[int, Field(ge=1, le=90)] = 3
    objection_days_max: Annotated[int, Field(ge=1, le=365)] = 15
    # Left out of the stored policy when empty: the policies logged before auditors
    # existed keep the exact projection row they were sealed with.
    auditors: Annotated[list[AuditorModel], Field(max_length=AUDITORS_MAX)] = Field(
        default_factory=list, exclude_if=lambda auditors: not auditors
    )


class GenesisBody(WireModel):
    origin: Annotated[str, StringConstraints(pattern=r"^[\x21-\x2a\x2c-\x7e]{1,256}$")]
    regions: Annotated[list[RegionModel], Field(min_length=1, max_length=REGIONS_MAX)]
    operator_keys: KeyList
    policy: PolicyModel


# --- regions and the operator join and rotate on the running log (issue 7 §5) -------------


class RegionJoinedBody(WireModel):
    """A region joins the running log with its keys and witness (the genesis's shape)."""

    region: RegionModel


class RegionKeysBody(WireModel):
    region: RegionCode
    keys: KeyList


class OperatorKeysBody(WireModel):
    keys: KeyList


# --- members ----------------------------------------------------------------------------


class StoreModel(WireModel):
    id: Ident
    division: Division
    name: Text


class CommitmentModel(WireModel):
    return_days: Annotated[int, Field(ge=1, le=365)]
    excluded: Annotated[list[Category], Field(max_length=256)]


# The members whose receipts a member honours and bills (a brand's franchisees, a zone's
# members): a cross-member return needs the seller in the accepting member's network.
Network = Annotated[list[Uscc], Field(max_length=NETWORK_MEMBERS_MAX)]


class MemberModel(WireModel):
    id: Uscc
    name: Text
    kind: Literal["merchant", "fund", "platform"]
    region: RegionCode
    stores: Annotated[list[StoreModel], Field(max_length=STORES_PER_MEMBER_MAX)]
    commitment: CommitmentModel
    keys: KeyList
    network: Network = Field(default_factory=list)


class MemberEnrolledBody(WireModel):
    member: MemberModel


class MemberStatusBody(WireModel):
    member: Uscc
    reason: Code  # one of policy.reasons.suspension / reinstatement / withdrawal
    note_hash: Sha256Hex | None = None  # SHA-256 of a note kept off the log (deletable)


class MemberKeysBody(WireModel):
    member: Uscc
    keys: KeyList


class MemberStoresBody(WireModel):
    """Stores opened (new ids, never reused) and closed (by id). A closed store accepts no
    more returns; goods it sold while open stay returnable elsewhere."""

    member: Uscc
    opened: Annotated[list[StoreModel], Field(max_length=STORES_PER_MEMBER_MAX)] = Field(
        default_factory=list
    )
    closed: Annotated[list[Ident], Field(max_length=STORES_PER_MEMBER_MAX)] = Field(
        default_factory=list
    )


class MemberCommitmentBody(WireModel):
    """A new commitment for purchases from ``effective`` (a local date) on: purchases
    made earlier keep the commitment they were made under."""

    member: Uscc
    commitment: CommitmentModel
    effective: LocalDate


class MemberNetworkBody(WireModel):
    """The member's whole network, replacing the one before."""

    member: Uscc
    network: Network


# --- money ------------------------------------------------------------------------------


class ReceiptModel(WireModel):
    """The receipt by its ``ref`` (schemas.identifiers.receipt_ref), never its number:
    the number, store and time together could single out a consumer (PIPL art. 4)."""

    merchant: Uscc
    store: Ident
    ref: ReceiptRef
    purchased: LocalDate
    amount_fen: Fen


class ItemModel(WireModel):
    sku: Ident
    category: Category
    qty: Annotated[int, Field(ge=1, le=LINE_QTY_MAX)]
    refund_fen: Fen
    line: Annotated[int, Field(ge=1, le=RECEIPT_LINES_MAX)]  # the receipt's line
    line_qty: Annotated[int, Field(ge=1, le=LINE_QTY_MAX)]  # the quantity that line sold


class ReturnBody(WireModel):
    receipt: ReceiptModel
    accepted_store: Ident
    accepted: Rfc3339  # when the consumer was refunded: the return window is judged here
    refund_fen: Fen
    items: Annotated[list[ItemModel], Field(min_length=1, max_length=ITEMS_PER_RETURN_MAX)]


class AdvanceBody(WireModel):
    liable: Uscc
    case: Ident
    basis: Code  # one of policy.advance_bases
    amount_fen: Fen
    evidence_hash: Sha256Hex  # SHA-256 of the case file, kept off the log
    complaint_hash: Sha256Hex | None = None  # SHA-256 of the 12315 case id, if any


class DisputeBody(WireModel):
    target: Seq
    reason: Code  # one of policy.reasons.dispute
    note_hash: Sha256Hex | None = None  # SHA-256 of a note kept off the log (deletable)


class DisputeResolvedBody(WireModel):
    dispute: Seq
    outcome: Literal["upheld", "partly", "dismissed"]
    amount_fen: Fen | None = None  # partly: the part of the claim that no longer stands


class EndorsementBody(WireModel):
    targets: Annotated[list[Seq], Field(min_length=1, max_length=ENDORSEMENT_TARGETS_MAX)]
    decision: Literal["approve", "reject"]
    # A rejection's code (policy.reasons.rejection); an approval's is empty.
    reason: Annotated[str, StringConstraints(pattern=r"^[a-z0-9_]{0,48}$")]
    note_hash: Sha256Hex | None = None


# --- reconciliation and settlement (issue 8, DESIGN §5) -----------------------------------

Count = Annotated[int, Field(ge=0, le=AMOUNT_FEN_MAX)]
AmountOrZero = Annotated[int, Field(ge=0, le=AMOUNT_FEN_MAX)]
# base64 (standard, padded) of a SHA-256 root: 44 characters.
RootB64 = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9+/]{43}=$")]
InstructionIndex = Annotated[int, Field(ge=0, lt=INSTRUCTIONS_PER_NIGHT_MAX)]


class CutoffModel(WireModel):
    tree_size: Seq
    root: RootB64


class NightTotalsModel(WireModel):
    gross_fen: AmountOrZero
    net_fen: AmountOrZero
    reduction_permille: Annotated[int, Field(ge=0, le=1000)]
    obligations: Count
    members: Count
    instructions: Count
    overdue: Count


class RootCommitmentModel(WireModel):
    """A list of report items committed by its count, amount and RFC 6962 root."""

    count: Count
    amount_fen: AmountOrZero
    root: RootB64


class ReconciliationClosedBody(WireModel):
    """Business day ``day`` closed: the body reconciliation.report.closed_body() makes."""

    day: LocalDate
    cutoff: CutoffModel
    totals: NightTotalsModel
    included: RootCommitmentModel
    positions: RootCommitmentModel
    instructions: RootCommitmentModel


class SettlementPaidBody(WireModel):
    """The payer paid ``amount_fen`` of an instruction (partial payments allowed); the
    bank's receipt number is kept off the log, only its SHA-256 is here."""

    reconciliation: Seq
    instruction: InstructionIndex
    amount_fen: Fen
    receipt_hash: Sha256Hex


class SettlementConfirmedBody(WireModel):
    """The payee confirms it received ``amount_fen`` of an instruction."""

    reconciliation: Seq
    instruction: InstructionIndex
    amount_fen: Fen


# --- credit -----------------------------------------------------------------------------
# Due process (issue 7 §4): the member's region gives notice (告知) with its evidence and
# an objection deadline; the member may object (陈述申辩) until 24:00 local on that date;
# only then may the region decide (credit.penalty, with its 文号); it restores (信用修复)
# under the terms in force when it decided.

# A decision number (文号), e.g. 沪联信〔2026〕12号: unique per region. Not personal data.
DecisionNo = Annotated[
    str, StringConstraints(min_length=1, max_length=64, pattern=PRINTABLE_TEXT_PATTERN)
]


class NoticeBody(WireModel):
    member: Uscc
    rule: Ident
    points: Annotated[int, Field(ge=0, le=1000)]  # proposed: the rule's points
    measure: Measure  # proposed: the rule's measure
    evidence: Annotated[list[Seq], Field(min_length=1, max_length=EVIDENCE_SEQS_MAX)]
    deadline: LocalDate  # objections until 24:00 local on this date
    note_hash: Sha256Hex | None = None


class ObjectionBody(WireModel):
    notice: Seq
    reason: Code  # one of policy.reasons.objection
    note_hash: Sha256Hex | None = None  # SHA-256 of the statement kept off the log


class PenaltyBody(WireModel):
    notice: Seq
    objection: Seq | None  # the member's objection to that notice, when it made one
    decision_no: DecisionNo
    member: Uscc
    rule: Ident
    points: Annotated[int, Field(ge=0, le=1000)]  # at most the notice's
    measure: Measure  # no more severe than the notice's
    until: Rfc3339


class RestoredBody(WireModel):
    penalty: Seq
    reason: Code  # one of policy.reasons.restoration
    cure: Seq | None  # the entry that cured the fault, when the penalty's rule has a cure
    note_hash: Sha256Hex | None = None


BODY_MODELS: dict[str, type[WireModel]] = {
    "region.genesis": GenesisBody,
    "policy.adopted": PolicyModel,
    "region.joined": RegionJoinedBody,
    "region.keys_changed": RegionKeysBody,
    "operator.keys_changed": OperatorKeysBody,
    "member.enrolled": MemberEnrolledBody,
    "member.suspended": MemberStatusBody,
    "member.reinstated": MemberStatusBody,
    "member.withdrawn": MemberStatusBody,
    "member.keys_changed": MemberKeysBody,
    "member.stores_changed": MemberStoresBody,
    "member.commitment_changed": MemberCommitmentBody,
    "member.network_changed": MemberNetworkBody,
    "return.recorded": ReturnBody,
    "advance.paid": AdvanceBody,
    "claim.disputed": DisputeBody,
    "dispute.resolved": DisputeResolvedBody,
    "endorsement": EndorsementBody,
    "reconciliation.closed": ReconciliationClosedBody,
    "settlement.paid": SettlementPaidBody,
    "settlement.confirmed": SettlementConfirmedBody,
    "credit.notice": NoticeBody,
    "credit.objection": ObjectionBody,
    "credit.penalty": PenaltyBody,
    "credit.restored": RestoredBody,
}


def validate_body(kind: str, body: dict[str, Any]) -> WireModel:
    """The body's strict model, or MalformedError naming the first bad field."""
    model = BODY_MODELS.get(kind)
    if model is None:
        raise MalformedError(f"entries of kind {kind!r} are not accepted yet", field="kind")
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise first_error(exc, "body.") from exc
