"""A region's witness over HTTP: ``POST /add-checkpoint`` of C2SP tlog-witness, served
by `alliance witness --listen` (nodes/tlog.py holds every check)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from fastapi import FastAPI, Request, Response
from starlette.concurrency import run_in_threadpool

from api import problems
from api.deps import read_body
from nodes.tlog import SIZE_MEDIA_TYPE, AddCheckpoint, TlogWitness
from schemas.errors import AllianceError, StaleSizeError
from schemas.limits import WITNESS_REQUEST_BYTES_MAX


def _utc_now() -> datetime:
    return datetime.now(UTC)


def create_witness_app(witness: TlogWitness, clock: Callable[[], datetime] = _utc_now) -> FastAPI:
    app = FastAPI(title=f"Alliance witness {witness.signer.name}", version="1")

    def on_problem(_exc: AllianceError) -> None:
        return None

    problems.install(app, on_problem)

    async def stale(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StaleSizeError)
        # Exactly the spec's media type: Starlette would add a charset to a text/* type.
        headers = {"content-type": SIZE_MEDIA_TYPE}
        return Response(f"{exc.size}\n".encode(), status_code=409, headers=headers)

    app.add_exception_handler(StaleSizeError, stale)

    @app.post("/add-checkpoint", response_class=Response)
    async def add_checkpoint(request: Request) -> Response:
        """Cosign the checkpoint once it is consistent with the last one cosigned."""
        body = await read_body(request, WITNESS_REQUEST_BYTES_MAX)
        parsed = AddCheckpoint.parse(body)
        line = await run_in_threadpool(witness.add_checkpoint, parsed, clock())
        return Response(line, media_type="text/plain; charset=utf-8")

    return app


__all__ = ["create_witness_app"]
