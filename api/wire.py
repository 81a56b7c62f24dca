"""The API's response bodies: strict pydantic models, kept apart from the ledger's rows
and views (ledger.rows, ledger.public), which they are built from here and only here.
They give the OpenAPI document its schemas and the tests something to conform to."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from ledger.app import ConsistencyProof, InclusionProof
from ledger.public import MemberSummary, ProvenEntry, PublicMember, ReturnCheck
from ledger.sequencer import Appended
from signing.keys import b64encode


class Wire(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


class AppendedWire(Wire):
    seq: int
    leaf_hash: str  # base64

    @classmethod
    def of(cls, appended: Appended) -> AppendedWire:
        return cls(seq=appended.seq, leaf_hash=b64encode(appended.leaf_hash))


class BatchItemWire(Wire):
    """One document of a batch: appended (``seq``, ``leaf_hash``, ``duplicate``) or
    refused (a problem document: ``type``, ``title``, ``status``, ``detail``…)."""

    model_config = ConfigDict(strict=True, extra="allow", frozen=True)
    seq: int | None = None
    leaf_hash: str | None = None
    duplicate: bool | None = None
    type: str | None = None
    title: str | None = None
    status: int | None = None
    detail: str | None = None
    field: str | None = None


class BatchWire(Wire):
    results: list[BatchItemWire]
    appended: int
    refused: int


class InclusionWire(Wire):
    seq: int
    tree_size: int
    leaf_hash: str
    hashes: list[str]
    root: str

    @classmethod
    def of(cls, proof: InclusionProof) -> InclusionWire:
        return cls.model_validate(proof.wire())


class ConsistencyWire(Wire):
    old: int
    new: int
    hashes: list[str]
    old_root: str
    new_root: str

    @classmethod
    def of(cls, proof: ConsistencyProof) -> ConsistencyWire:
        return cls.model_validate(proof.wire())


class EntryWire(Wire):
    """A logged record (the leaf's JSON), its exact leaf bytes and its inclusion proof in
    the latest verified checkpoint."""

    seq: int
    kind: str
    record: dict[str, Any]
    leaf: str  # base64 of the leaf bytes the leaf hash is taken over
    proof: InclusionWire


class MemberSummaryWire(Wire):
    uscc: str
    name: str
    kind: str
    region: str
    status: str

    @classmethod
    def of(cls, summary: MemberSummary) -> MemberSummaryWire:
        return cls(
            uscc=summary.uscc,
            name=summary.name,
            kind=summary.kind,
            region=summary.region,
            status=summary.status,
        )


class SearchWire(Wire):
    query: str
    limit: int
    members: list[MemberSummaryWire]


class StatusWire(Wire):
    seq: int
    status: str
    logged: str


class StoreWire(Wire):
    store_id: str
    name: str
    division: str
    opened: str
    closed: str | None
    open: bool


class CommitmentWire(Wire):
    seq: int
    effective: str
    return_days: int
    excluded: list[str]


class MeasureWire(Wire):
    seq: int
    region: str
    decision_no: str
    rule: str
    measure: str
    points: int
    issued: str
    until: str
    evidence_items: int


class CountsWire(Wire):
    since: str
    returns_accepted: int
    returns_honoured: int
    overdue_settlements: int
    advances_recovered: int


class ProvenWire(Wire):
    seq: int
    kind: str
    proof: InclusionWire

    @classmethod
    def of(cls, proven: ProvenEntry) -> ProvenWire:
        return cls(seq=proven.seq, kind=proven.kind, proof=InclusionWire.of(proven.proof))


class PublicMemberWire(Wire):
    member: MemberSummaryWire
    status_history: list[StatusWire]
    stores: list[StoreWire]
    commitment: CommitmentWire | None
    upcoming_commitments: list[CommitmentWire]
    stars: int
    measure: str
    measures: list[MeasureWire]
    counts: CountsWire
    tree_size: int
    proofs: list[ProvenWire]
    proofs_left_out: int

    @classmethod
    def of(cls, page: PublicMember) -> PublicMemberWire:
        return cls(
            member=MemberSummaryWire.of(page.member),
            status_history=[
                StatusWire(seq=s.seq, status=s.status, logged=s.logged) for s in page.statuses
            ],
            stores=[
                StoreWire(
                    store_id=s.store_id,
                    name=s.name,
                    division=s.division,
                    opened=s.opened,
                    closed=s.closed,
                    open=s.closed is None,
                )
                for s in page.stores
            ],
            commitment=None if page.commitment is None else _commitment(page.commitment),
            upcoming_commitments=[_commitment(c) for c in page.upcoming],
            stars=page.stars,
            measure=page.measure,
            measures=[MeasureWire.model_validate(m, from_attributes=True) for m in page.measures],
            counts=CountsWire(
                since=page.counts_since,
                returns_accepted=page.counts.returns_accepted,
                returns_honoured=page.counts.returns_honoured,
                overdue_settlements=page.counts.overdue_settlements,
                advances_recovered=page.counts.advances_recovered,
            ),
            tree_size=page.tree_size,
            proofs=[ProvenWire.of(p) for p in page.proofs],
            proofs_left_out=page.proofs_left_out,
        )


def _commitment(view: Any) -> CommitmentWire:
    return CommitmentWire(
        seq=view.seq,
        effective=view.effective,
        return_days=view.return_days,
        excluded=list(view.excluded),
    )


class ReturnCheckWire(Wire):
    uscc: str
    store: str
    purchased: str
    returnable: bool
    reason: str
    return_days: int | None
    last_day: str | None
    until: str | None  # RFC 3339, +08:00: 24:00 local on last_day
    excluded: list[str]
    statutory_excluded: list[str]
    local_excluded: list[str]
    commitment_seq: int | None

    @classmethod
    def of(cls, check: ReturnCheck) -> ReturnCheckWire:
        return cls(
            uscc=check.uscc,
            store=check.store,
            purchased=check.purchased.isoformat(),
            returnable=check.returnable,
            reason=check.reason,
            return_days=check.return_days,
            last_day=None if check.last_day is None else check.last_day.isoformat(),
            until=None if check.until is None else check.until.isoformat(),
            excluded=list(check.excluded),
            statutory_excluded=list(check.statutory_excluded),
            local_excluded=list(check.local_excluded),
            commitment_seq=check.commitment_seq,
        )


class HealthWire(Wire):
    status: str
    tree_size: int
