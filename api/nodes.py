"""What the regions' nodes read over HTTP (docs/PROTOCOL.md §6, "Nodes over HTTP"):
the entries awaiting a region's decision, each with its leaf and inclusion proof, and
the log's index of keys. Nodes verify both before use (nodes/remote.py): the proofs
against a checkpoint signed by the log key they trust, each key against the public entry
that declared it."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from starlette.concurrency import run_in_threadpool

from api.deps import ReaderDep, ServicesDep
from api.wire import InclusionWire, Wire
from ledger import access
from schemas.errors import NotFoundError
from schemas.limits import KEYS_PAGE_MAX, PENDING_PAGE_MAX, PROOF_TREE_SIZE_MAX
from signing.keys import b64encode

router = APIRouter(prefix="/v1", tags=["nodes"])

REGION_PATTERN = r"^[0-9]{2}$"


class PendingEntryWire(Wire):
    seq: int
    leaf: str  # base64 of the exact leaf bytes
    proof: InclusionWire


class PendingWire(Wire):
    region: str
    checkpoint: str  # the signed note of tree_size, the tree every proof is in
    tree_size: int
    entries: list[PendingEntryWire]
    more: bool  # entries past PENDING_PAGE_MAX are left for the next page


class KeyWire(Wire):
    key: str
    principal: str
    pub: str
    from_seq: int
    until_seq: int | None
    # The entry that declared the key (at from_seq - 1; the genesis' keys at 0), its
    # leaf and inclusion proof in the tree of KeysWire.tree_size.
    declared: PendingEntryWire


class KeysWire(Wire):
    checkpoint: str
    tree_size: int
    keys: list[KeyWire]


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
    head = ledger.signed_checkpoint()
    size = head.size
    seqs = [seq for seq in ledger.reads().awaiting(region) if after < seq < size]
    page = seqs[:PENDING_PAGE_MAX]
    entries = [
        PendingEntryWire(seq=proof.seq, leaf=b64encode(leaf), proof=InclusionWire.of(proof))
        for leaf, proof in ledger.proven_leaves(page, size)
    ]
    return PendingWire(
        region=region,
        checkpoint=head.note,
        tree_size=size,
        entries=entries,
        more=len(seqs) > len(page),
    )


@router.get("/keys", response_model=KeysWire)
async def keys(
    services: ServicesDep,
    key: Annotated[list[str], Query(min_length=1, max_length=KEYS_PAGE_MAX)],
) -> KeysWire:
    """Who holds each `key` (repeat it, at most KEYS_PAGE_MAX) from which seq until which,
    with the public entry that declared it and that entry's inclusion proof, so that a
    node checks the key against the log itself: public, as the declaring entries are.
    404 if one is not a key of this log."""
    return await run_in_threadpool(_keys, services, key)


def _keys(services: ServicesDep, key_ids: list[str]) -> KeysWire:
    ledger = services.ledger
    reads = ledger.reads()
    rows = []
    for key_id in dict.fromkeys(key_ids):
        row = reads.key(key_id)
        if row is None:
            raise NotFoundError(f"key {key_id} is not a key of this log")
        rows.append(row)
    head = ledger.signed_checkpoint()
    declaring = sorted({max(0, row.from_seq - 1) for row in rows})
    proven = dict(zip(declaring, ledger.proven_leaves(declaring, head.size), strict=True))
    found = []
    for row in rows:
        leaf, proof = proven[max(0, row.from_seq - 1)]
        declared = PendingEntryWire(
            seq=proof.seq, leaf=b64encode(leaf), proof=InclusionWire.of(proof)
        )
        found.append(
            KeyWire(
                key=row.key_id,
                principal=row.principal,
                pub=row.pub,
                from_seq=row.from_seq,
                until_seq=row.until_seq,
                declared=declared,
            )
        )
    return KeysWire(checkpoint=head.note, tree_size=head.size, keys=found)
