"""The public lookup (一站式查询): what anyone may learn of a member, and whether a
consumer may still return a purchase at one of its stores.

Only public facts leave here: statuses, stores, commitments, credit (stars and the
measures with their decision numbers) and counts. Never an amount between named members,
a receipt or a free-text note: the views below have no field that could carry one. Every
public entry a page rests on comes with its inclusion proof in the verified checkpoint.

The rules are the writer's own: a return window is ``ledger.kinds.members.commitment_for``
and ``active_on`` over the member's rows (loaded into a State of that member alone) and
``ledger.calendar.period_end`` under the policy's calendar (民法典 arts. 201 and 203).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from pydantic import ValidationError

from ledger.access import is_public_kind
from ledger.app import InclusionProof, Ledger
from ledger.calendar import local_date, period_end
from ledger.kinds.members import active_on, commitment_for, open_on
from ledger.reads import MemberRecord, PublicCounts
from ledger.rows import CommitmentRow, MemberRow, StoreRow
from ledger.state import State
from schemas.bodies import PolicyModel
from schemas.entry import parse_record, parse_time
from schemas.errors import MalformedError, NotFoundError, TamperedError
from schemas.identifiers import division_region
from schemas.limits import PUBLIC_COUNTS_WINDOW_DAYS, PUBLIC_PROOFS_MAX

Clock = Callable[[], datetime]


@dataclass(frozen=True, slots=True)
class MemberSummary:
    uscc: str
    name: str
    kind: str
    region: str
    status: str

    @classmethod
    def of(cls, row: MemberRow) -> MemberSummary:
        return cls(row.id, row.name, row.kind, row.region, row.status)


@dataclass(frozen=True, slots=True)
class StatusChange:
    seq: int
    status: str
    logged: str


@dataclass(frozen=True, slots=True)
class StoreView:
    store_id: str
    name: str
    division: str
    opened: str
    closed: str | None


@dataclass(frozen=True, slots=True)
class CommitmentView:
    seq: int
    effective: str  # local date from which it binds purchases
    return_days: int
    excluded: tuple[str, ...]  # the member's own excluded categories


@dataclass(frozen=True, slots=True)
class MeasureView:
    """A credit measure in force: the decision (文号) and how much evidence it cites."""

    seq: int
    region: str
    decision_no: str
    rule: str
    measure: str
    points: int
    issued: str
    until: str
    evidence_items: int


@dataclass(frozen=True, slots=True)
class ProvenEntry:
    seq: int
    kind: str
    proof: InclusionProof


@dataclass(frozen=True, slots=True)
class PublicMember:
    member: MemberSummary
    statuses: tuple[StatusChange, ...]
    stores: tuple[StoreView, ...]
    commitment: CommitmentView | None  # in force today
    upcoming: tuple[CommitmentView, ...]  # logged, taking effect later
    stars: int
    measure: str
    measures: tuple[MeasureView, ...]
    counts_since: str  # local date the counts start from
    counts: PublicCounts
    proofs: tuple[ProvenEntry, ...]
    proofs_left_out: int  # the oldest entries past PUBLIC_PROOFS_MAX
    tree_size: int


@dataclass(frozen=True, slots=True)
class ReturnCheck:
    """Can a purchase of ``purchased`` be returned at this store, and until when."""

    uscc: str
    store: str
    purchased: date
    returnable: bool
    reason: str  # returnable | window-closed | not-committed | store-not-open
    return_days: int | None
    last_day: date | None  # the last local day to return (moved past days off)
    until: datetime | None  # 24:00 local on last_day
    excluded: tuple[str, ...]  # the member's commitment
    statutory_excluded: tuple[str, ...]  # the policy's, everywhere
    local_excluded: tuple[str, ...]  # the policy's, in the store's region
    commitment_seq: int | None


class PublicReads:
    """The public views of one ledger (read-only: the writer need not run here)."""

    def __init__(self, ledger: Ledger, clock: Clock) -> None:
        self.ledger = ledger
        self.clock = clock

    def search(self, query: str, limit: int) -> list[MemberSummary]:
        text = query.strip()
        if not text:
            raise MalformedError("the query is empty", field="q")
        if "\x00" in text:
            # PostgreSQL text cannot hold NUL (it raised, a 500) and SQLite's LIKE stops
            # at it (it matched everyone): refused alike on both backends.
            raise MalformedError("the query holds a NUL character", field="q")
        return [MemberSummary.of(row) for row in self.ledger.reads().search_members(text, limit)]

    def _record(self, uscc: str) -> MemberRecord:
        record = self.ledger.reads().member_record(uscc)
        if record is None:
            raise NotFoundError(f"{uscc} is not a member of the alliance")
        return record

    def member(self, uscc: str) -> PublicMember:
        now = self.clock()
        record = self._record(uscc)
        state = _member_state(record)
        today = local_date(now)
        in_force = commitment_for(state, uscc, today)
        upcoming = [row for row in record.commitments if row.effective > today.isoformat()]
        credit = self.ledger.reads().credit_as_of(uscc, now)
        measures = _measures(record, now)
        since = now - timedelta(days=PUBLIC_COUNTS_WINDOW_DAYS)
        proofs, left_out, size = self._proofs(_rests_on(record))
        return PublicMember(
            member=MemberSummary.of(record.member),
            statuses=tuple(StatusChange(s.seq, s.status, s.logged) for s in record.statuses),
            stores=tuple(_store_view(store) for store, _ in record.stores),
            commitment=None if in_force is None else _commitment_view(record, in_force),
            upcoming=tuple(_commitment_view(record, row) for row in upcoming),
            stars=credit.stars,
            measure=credit.measure,
            measures=measures,
            counts_since=local_date(since).isoformat(),
            counts=self.ledger.reads().public_counts(uscc, since),
            proofs=proofs,
            proofs_left_out=left_out,
            tree_size=size,
        )

    def _proofs(self, seqs: list[int]) -> tuple[tuple[ProvenEntry, ...], int, int]:
        """Inclusion proofs of the newest PUBLIC_PROOFS_MAX of ``seqs`` that are public
        entries, all in the tree of the latest verified checkpoint."""
        size = self.ledger.signed_checkpoint().size
        wanted = sorted({seq for seq in seqs if seq < size})
        kept = wanted[-PUBLIC_PROOFS_MAX:]
        proven: list[ProvenEntry] = []
        for seq in kept:
            leaves = self.ledger.leaves(seq, seq + 1)
            if not leaves:
                raise TamperedError(f"seq {seq} is missing from the log")
            kind = str(parse_record(leaves[0])[0]["entry"]["kind"])
            if is_public_kind(kind):
                proof = self.ledger.inclusion(seq, size)
                proof.require_leaf(leaves[0])  # the kind shown is the proven leaf's
                proven.append(ProvenEntry(seq, kind, proof))
        return tuple(proven), len(wanted) - len(kept), size

    def check(self, uscc: str, store_id: str, purchased: date) -> ReturnCheck:
        now = self.clock()
        if purchased > local_date(now):
            raise MalformedError("the purchase date lies in the future", field="purchased")
        record = self._record(uscc)
        store = next((s for s, _ in record.stores if s.store_id == store_id), None)
        if store is None:
            raise NotFoundError(f"{uscc} has no store {store_id}", field="store")
        policy = _policy(record)
        local = tuple(policy.local_excluded_categories.get(division_region(store.division), []))
        state = _member_state(record)
        commitment = commitment_for(state, uscc, purchased)
        reason = "returnable"
        if commitment is None or not active_on(state, uscc, purchased):
            reason = "not-committed"
        elif not open_on(store, purchased):
            reason = "store-not-open"
        if reason != "returnable" or commitment is None:
            return ReturnCheck(
                uscc, store_id, purchased, False, reason, None, None, None, (), (), local, None
            )
        until = period_end(purchased, commitment.return_days, policy.calendar)
        if now >= until:
            reason = "window-closed"
        return ReturnCheck(
            uscc=uscc,
            store=store_id,
            purchased=purchased,
            returnable=reason == "returnable",
            reason=reason,
            return_days=commitment.return_days,
            last_day=until.date() - timedelta(days=1),
            until=until,
            excluded=_excluded(record, commitment),
            statutory_excluded=tuple(policy.excluded_categories),
            local_excluded=local,
            commitment_seq=commitment.seq,
        )


def _policy(record: MemberRecord) -> PolicyModel:
    try:
        return PolicyModel.model_validate_json(record.policy.value)
    except ValidationError as exc:  # the writer stores only policies it validated
        raise TamperedError("the stored policy is not one the log adopted") from exc


def _member_state(record: MemberRecord) -> State:
    """A State holding this member's rows only: enough for the writer's own rules on its
    statuses, commitments and stores (commitment_for, active_on, excludes)."""
    state = State()
    state.put(record.policy, record.policy.seq, changed=False)
    state.put(record.member, record.member_seq, changed=False)
    for status in record.statuses:
        state.put(status, status.seq, changed=False)
    for commitment in record.commitments:
        state.put(commitment, commitment.seq, changed=False)
    for exclusion in record.exclusions:
        state.put(exclusion, exclusion.commitment_seq, changed=False)
    for store, version in record.stores:
        state.put(store, version, changed=False)
    return state


def _excluded(record: MemberRecord, commitment: CommitmentRow) -> tuple[str, ...]:
    return tuple(
        sorted(row.category for row in record.exclusions if row.commitment_seq == commitment.seq)
    )


def _commitment_view(record: MemberRecord, row: CommitmentRow) -> CommitmentView:
    return CommitmentView(row.seq, row.effective, row.return_days, _excluded(record, row))


def _store_view(store: StoreRow) -> StoreView:
    return StoreView(store.store_id, store.name, store.division, store.opened, store.closed)


def _measures(record: MemberRecord, now: datetime) -> tuple[MeasureView, ...]:
    """The penalties not restored whose measure still runs at ``now``."""
    return tuple(
        MeasureView(
            seq=penalty.seq,
            region=penalty.region,
            decision_no=penalty.decision_no,
            rule=penalty.rule,
            measure=penalty.measure,
            points=penalty.points,
            issued=penalty.issued,
            until=penalty.until,
            evidence_items=record.evidence_counts.get(penalty.notice, 0),
        )
        for penalty, _ in record.penalties
        if penalty.restored_seq is None and parse_time(penalty.until) > now
    )


def _rests_on(record: MemberRecord) -> list[int]:
    """The seqs of the entries the page's rows come from: the enrolment and each status
    change, each commitment, each store's newest change, each penalty, its notice and
    its restoration."""
    seqs = {record.member.enrolled_seq, record.member_seq}
    seqs.update(status.seq for status in record.statuses)
    seqs.update(commitment.seq for commitment in record.commitments)
    seqs.update(version for _, version in record.stores)
    for penalty, version in record.penalties:
        seqs.update((penalty.seq, penalty.notice, version))
    return sorted(seqs)


__all__ = [
    "CommitmentView",
    "MeasureView",
    "MemberSummary",
    "ProvenEntry",
    "PublicMember",
    "PublicReads",
    "ReturnCheck",
    "StatusChange",
    "StoreView",
]
