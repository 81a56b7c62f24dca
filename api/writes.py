"""POST /v1/entries and POST /v1/entries:batch: writes, authenticated by the entries'
own signatures. Both answer only once the entries are durable (the group-commit
sequencer returns then). The writer runs in the threadpool: its calls block."""

from __future__ import annotations

from typing import Any

import anyio
import anyio.to_thread
from fastapi import APIRouter, Request, Response

from api.deps import ServicesDep, read_body
from api.wire import AppendedWire, BatchItemWire, BatchWire
from ledger.sequencer import Appended
from schemas.canonical import parse_json
from schemas.errors import AllianceError, LimitError, MalformedError, NotReadyError
from schemas.limits import (
    API_WRITER_THREADS,
    BATCH_REQUEST_BYTES_MAX,
    BATCH_REQUEST_ENTRIES_MAX,
    SUBMISSION_BYTES_MAX,
)

router = APIRouter(tags=["writes"])

SUBMITTED_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "A `submitted` document (docs/PROTOCOL.md §1): the entry and its signatures",
    "required": ["entry", "signatures"],
    "properties": {
        "entry": {"type": "object"},
        "signatures": {"type": "array", "items": {"type": "object"}},
    },
}
BATCH_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["entries"],
    "properties": {
        "entries": {
            "type": "array",
            "minItems": 1,
            "maxItems": BATCH_REQUEST_ENTRIES_MAX,
            "items": SUBMITTED_SCHEMA,
        }
    },
}


def _body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


_WRITER_THREADS: list[anyio.CapacityLimiter] = []


def _writer_threads() -> anyio.CapacityLimiter:
    """The threads that wait for the writer, apart from the shared threadpool: each
    write holds its thread until its batch is durable, and reads must not queue behind
    them; and enough of them that concurrent single posts fill one group commit."""
    if not _WRITER_THREADS:
        _WRITER_THREADS.append(anyio.CapacityLimiter(API_WRITER_THREADS))
    return _WRITER_THREADS[0]


async def _submit(
    services: ServicesDep, documents: list[Any], route: str
) -> list[Appended | AllianceError]:
    if services.ledger.operator is None:
        raise NotReadyError("this server holds no operator key: it serves reads only")
    services.admission.enter(len(documents))
    started = services.metrics.timer()
    try:
        return await anyio.to_thread.run_sync(
            services.ledger.submit_many, documents, limiter=_writer_threads()
        )
    finally:
        services.admission.leave(len(documents))
        services.metrics.observe_append(route, started)


@router.post(
    "/v1/entries",
    status_code=201,
    response_model=AppendedWire,
    openapi_extra=_body(SUBMITTED_SCHEMA),
    responses={200: {"model": AppendedWire, "description": "Already logged: its seq"}},
)
async def post_entry(request: Request, response: Response, services: ServicesDep) -> AppendedWire:
    """Append one `submitted` document: 201 with its seq, 200 if it was logged before."""
    document = parse_json(await read_body(request, SUBMISSION_BYTES_MAX))
    result = (await _submit(services, [document], "entry"))[0]
    if isinstance(result, AllianceError):
        raise result
    if result.duplicate:
        response.status_code = 200
    else:
        response.headers["Location"] = f"/v1/entries/{result.seq}"
    return AppendedWire.of(result)


@router.post("/v1/entries:batch", response_model=BatchWire, openapi_extra=_body(BATCH_SCHEMA))
async def post_batch(request: Request, services: ServicesDep) -> BatchWire:
    """Append up to BATCH_REQUEST_ENTRIES_MAX documents in order; one result per
    document, in order: appended (seq, leaf_hash, duplicate) or a problem document."""
    body = parse_json(await read_body(request, BATCH_REQUEST_BYTES_MAX))
    entries = body.get("entries") if isinstance(body, dict) else None
    if not isinstance(entries, list) or not entries:
        raise MalformedError('a batch is {"entries": [submitted, …]}', field="entries")
    if len(entries) > BATCH_REQUEST_ENTRIES_MAX:
        raise LimitError(
            f"a batch holds at most {BATCH_REQUEST_ENTRIES_MAX} documents", field="entries"
        )
    services.metrics.batch_entries.observe(len(entries))
    results = await _submit(services, entries, "batch")
    items = [_item(result) for result in results]
    appended = sum(1 for result in results if isinstance(result, Appended))
    return BatchWire(results=items, appended=appended, refused=len(results) - appended)


def _item(result: Appended | AllianceError) -> BatchItemWire:
    if isinstance(result, AllianceError):
        return BatchItemWire.model_validate(result.problem())
    wire = AppendedWire.of(result)
    return BatchItemWire(seq=wire.seq, leaf_hash=wire.leaf_hash, duplicate=result.duplicate)


__all__ = ["router"]
