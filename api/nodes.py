"""What the regions' nodes read over HTTP (docs/PROTOCOL.md §6, "Nodes over HTTP"):
the entries awaiting a region's decision, each with its leaf and inclusion proof, and
the log's index of keys. Nodes verify both before use (nodes/remote.py): the proofs
against a checkpoint signed by the log key they trust, each key against the public entry
that declared it."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query
from starlette.concurrency import run_in_threadpool

from api.deps import ReaderDep, ServicesDep
from api.wire import InclusionWire, Wire
from ledger import access
from schemas.errors import NotFoundError
from schemas.limits import PENDING_PAGE_MAX, PROOF_TREE_SIZE_MAX
from signing.keys import b64encode

router = APIRouter(prefix="/v1", tags=["nodes"])

REGION_PATTERN = r"^[0-9]{2}$"


class PendingEntryWire(Wire):
    seq: int
    leaf: str  # base64 of the exact leaf bytes
    proof: InclusionWire


class PendingWire(Wire):
    region: str
    tree_size: int
    entries: list[PendingEntryWire]
    more: bool  # entries past PENDING_PAGE_MAX are left for the next page


class KeyWire(Wire):
    key: str
    principal: str
    pub: str
    from_seq: int
    until_seq: int | None


@router.get("/endorsements/pending", response_model=PendingWire)
async def pending(
    services: ServicesDep,
    reader: ReaderDep,
    region: Annotated[str, Query(pattern=REGION_PATTERN)],
    after: Annotated[int, Query(ge=-1, le=PROOF_TREE_SIZE_MAX)] = -1,
) -> PendingWire:
    """The entries awaiting `region`'s decision after seq `after`, oldest first, at most
    PENDING_PAGE_MAX, each with its leaf and its inclusion proof in the latest checkpoint:
    to the region itself, auditors and the operator (a signed request)."""
    access.check_region(reader, region)
    return await run_in_threadpool(_pending, services, region, after)


def _pending(services: ServicesDep, region: str, after: int) -> PendingWire:
    ledger = services.ledger
    size = ledger.signed_checkpoint().size
    seqs = [seq for seq in ledger.reads().awaiting(region) if after < seq < size]
    page = seqs[:PENDING_PAGE_MAX]
    entries = [
        PendingEntryWire(seq=proof.seq, leaf=b64encode(leaf), proof=InclusionWire.of(proof))
        for leaf, proof in ledger.proven_leaves(page, size)
    ]
    return PendingWire(region=region, tree_size=size, entries=entries, more=len(seqs) > len(page))


@router.get("/keys/{key_id}", response_model=KeyWire)
def key(services: ServicesDep, key_id: Annotated[str, Path(max_length=128)]) -> KeyWire:
    """Who holds `key_id` and from which seq (the public entry that declared it) until
    which (the entry that replaced it): public, as the declaring entries are."""
    row = services.ledger.reads().key(key_id)
    if row is None:
        raise NotFoundError(f"key {key_id} is not a key of this log")
    return KeyWire(
        key=row.key_id,
        principal=row.principal,
        pub=row.pub,
        from_seq=row.from_seq,
        until_seq=row.until_seq,
    )
