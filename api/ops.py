"""/healthz and /metrics."""

from __future__ import annotations

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.concurrency import run_in_threadpool

from api.deps import ServicesDep
from api.wire import HealthWire
from ledger import health
from schemas.errors import AllianceError, NotReadyError

router = APIRouter(tags=["operations"])


@router.get("/healthz", response_model=HealthWire)
async def healthz(services: ServicesDep) -> HealthWire:
    """Ready (200) only while this server's writer holds the log: it takes the log's
    lock and syncs its verified state to the head. Otherwise 503 not-ready."""
    if services.ledger.operator is None:
        raise NotReadyError("this server holds no operator key: its writer cannot run")
    try:
        size = await run_in_threadpool(health.writer_ready, services.ledger)
    except AllianceError as exc:
        raise NotReadyError(f"the writer cannot hold the log: {exc}") from exc
    return HealthWire(status="ready", tree_size=size)


@router.get("/metrics", include_in_schema=False)
async def metrics(services: ServicesDep) -> Response:
    """Prometheus text format."""
    body = await run_in_threadpool(services.metrics.render)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
