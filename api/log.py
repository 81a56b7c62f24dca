"""The log per C2SP tlog-tiles (/checkpoint, /tile/…), its proofs and its entries."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response
from starlette.concurrency import run_in_threadpool

from api.deps import ReaderDep, ServicesDep
from api.wire import ConsistencyWire, EntryWire, InclusionWire
from ledger import access
from ledger.merkle.tiles import ENTRIES_LEVEL, parse_tile_path
from schemas.entry import parse_record
from schemas.errors import NotFoundError, TamperedError
from schemas.limits import PROOF_TREE_SIZE_MAX, TILE_WIDTH
from signing.keys import b64encode

router = APIRouter(tags=["log"])

IMMUTABLE = "public, max-age=31536000, immutable"
# A partial tile or bundle is final for its width too, but clients are told to ask again
# for the full one; the checkpoint changes with every batch.
REVALIDATE = "no-cache"
OCTETS = {
    "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}
}

Seq = Annotated[int, Query(ge=0, le=PROOF_TREE_SIZE_MAX)]
Size = Annotated[int, Query(ge=1, le=PROOF_TREE_SIZE_MAX)]
OptionalSize = Annotated[int | None, Query(ge=1, le=PROOF_TREE_SIZE_MAX)]
PathSeq = Annotated[int, Path(ge=0, le=PROOF_TREE_SIZE_MAX)]


@router.get(
    "/checkpoint",
    response_class=Response,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
)
def checkpoint(services: ServicesDep) -> Response:
    """The latest checkpoint that verifies, with every cosignature that verifies (C2SP
    signed note)."""
    note = services.reading.signed_checkpoint().note
    return Response(
        note, media_type="text/plain; charset=utf-8", headers={"Cache-Control": REVALIDATE}
    )


@router.get("/tile/{path:path}", response_class=Response, responses={200: OCTETS})
def tile(path: str, services: ServicesDep, reader: ReaderDep) -> Response:
    """A hash tile `tile/<L>/<N>[.p/<W>]` or an entry bundle `tile/entries/<N>[.p/<W>]`
    (C2SP tlog-tiles). Full ones are immutable and cached for a year."""
    level, index, width = parse_tile_path("tile/" + path)
    reads = services.reading.reads()
    if level == ENTRIES_LEVEL:
        access.check_entry_bundles(reader)
    # Only what the checkpoint this server serves covers (a lagging replica's own).
    size = services.reading.signed_checkpoint().size
    if level == ENTRIES_LEVEL:
        data = reads.entry_bundle(index, width, size)
    else:
        data = reads.tile(level, index, width, tree_size=size)
    if data is None:
        raise NotFoundError(f"tile/{path} is not in the log yet")
    cache = IMMUTABLE if width == TILE_WIDTH else REVALIDATE
    return Response(data, media_type="application/octet-stream", headers={"Cache-Control": cache})


@router.get("/v1/proofs/inclusion", response_model=InclusionWire)
def inclusion(
    services: ServicesDep,
    seq: Seq,
    tree_size: Annotated[int | None, Query(ge=1, le=PROOF_TREE_SIZE_MAX)] = None,
) -> InclusionWire:
    """Inclusion of `seq` in the tree of `tree_size` (default: the latest checkpoint),
    checked against that tree's root before it is served."""
    return InclusionWire.of(services.reading.inclusion(seq, tree_size))


@router.get("/v1/proofs/consistency", response_model=ConsistencyWire)
def consistency(services: ServicesDep, old: Size, new: Size) -> ConsistencyWire:
    """Consistency of the tree of `old` leaves with the tree of `new` leaves."""
    return ConsistencyWire.of(services.reading.consistency(old, new))


@router.get("/v1/entries/{seq}", response_model=EntryWire)
async def entry(
    services: ServicesDep,
    reader: ReaderDep,
    seq: Annotated[int, Path(ge=0, le=PROOF_TREE_SIZE_MAX)],
) -> EntryWire:
    """The record at `seq` and its inclusion proof: public kinds to everyone, other
    kinds to the readers whose scope holds them (docs/PROTOCOL.md §6)."""
    return await run_in_threadpool(_entry, services, reader, seq)


def _entry(services: ServicesDep, reader: access.Reader, seq: int) -> EntryWire:
    size = services.reading.signed_checkpoint().size
    if seq >= size:
        raise NotFoundError(f"seq {seq} is not in the checkpoint of size {size}")
    leaves = services.reading.leaves(seq, seq + 1)
    if not leaves:
        raise TamperedError(f"seq {seq} is missing from the log")
    record, parsed = parse_record(leaves[0])
    kind = parsed.entry["kind"]
    if not access.is_public_kind(kind):
        access.check_entry(
            reader, access.entry_facts(services.reading.reads(), seq, record["entry"])
        )
    proof = services.reading.inclusion(seq, size)
    proof.require_leaf(leaves[0])
    return EntryWire(
        seq=seq, kind=kind, record=record, leaf=b64encode(leaves[0]), proof=InclusionWire.of(proof)
    )
