"""The FastAPI application over one Ledger: ``create_app(ledger)``."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from starlette.concurrency import run_in_threadpool

from api import desk, log, nodes, ops, problems, public, reads, session, web, writes
from api.deps import Admission, Services
from api.metrics import Metrics
from ledger import verifying
from ledger.app import Ledger
from ledger.public import PublicReads
from schemas.errors import AllianceError

PROBLEM_REF = "#/components/schemas/Problem"
PROBLEM_STATUSES = (400, 401, 403, 404, 405, 409, 413, 422, 503)


def _utc_now() -> datetime:
    return datetime.now(UTC)


@asynccontextmanager
async def _lifespan(_: FastAPI) -> AsyncIterator[None]:
    yield
    # The writer's verification worker stops with the server, not after it.
    await run_in_threadpool(verifying.shutdown)


def create_app(
    ledger: Ledger, clock: Callable[[], datetime] = _utc_now, *, replica: Ledger | None = None
) -> FastAPI:
    """The API of ``ledger``; it writes when the ledger holds the operator key. With
    ``replica`` (a read-only ledger on a hot standby of ledger's database) the log's
    reads and the public reads are served from the replica."""
    app = FastAPI(
        lifespan=_lifespan,
        title="Alliance Ledger",
        version="1",
        description="The transparency log of the YRD consumer alliance (docs/PROTOCOL.md §6).",
    )
    metrics = Metrics(ledger, clock)
    if ledger.operator is not None:
        ledger.writer.batch_observers.append(metrics.commit_entries.observe)
    app.state.services = Services(
        ledger=ledger,
        public=PublicReads(replica if replica is not None else ledger, clock),
        metrics=metrics,
        admission=Admission(metrics),
        clock=clock,
        replica=replica,
    )

    def on_problem(exc: AllianceError) -> None:
        metrics.problems.labels(exc.type_slug).inc()
        if problems.is_refused_read(exc):
            metrics.refused_reads.inc()

    problems.install(app, on_problem)
    problem_response = {
        "description": "A problem (RFC 9457); `type` is one of x-problem-types",
        "content": {
            problems.PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}
        },
    }
    responses: dict[int | str, dict[str, Any]] = dict.fromkeys(PROBLEM_STATUSES, problem_response)
    routers = (writes.router, log.router, public.router, reads.router, nodes.router, ops.router)
    for router in (*routers, session.router, desk.router):
        app.include_router(router, responses=responses)
    web.install(app)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document, with the Problem schema and the list of problem types."""
    if app.openapi_schema is None:
        document = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        components = document.setdefault("components", {})
        components.setdefault("schemas", {})["Problem"] = problems.problem_schema()
        document["x-problem-types"] = problems.problem_catalogue()
        app.openapi_schema = document
    return app.openapi_schema
