"""RFC 9457 problem+json: the one place an error becomes an HTTP answer.

Each ``AllianceError`` class carries its stable ``type_slug`` and HTTP ``status``
(schemas/errors.py: the one table of statuses); this module only renders them. Errors
raised by the framework itself (a malformed query, an unknown route, a wrong method) are
first turned into the matching ``AllianceError``, so a client always gets a problem
document with a stable ``type`` and never a traceback.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException

from schemas import errors
from schemas.errors import (
    AllianceError,
    ForbiddenError,
    InternalError,
    MalformedError,
    MethodNotAllowedError,
    NotFoundError,
    NotReadyError,
    RetryableError,
)

PROBLEM_MEDIA_TYPE = "application/problem+json"
log = logging.getLogger("alliance.api")


def problem_types() -> list[type[AllianceError]]:
    """Every error class of schemas.errors, base first: the problem types of the API."""
    found = [
        value
        for value in vars(errors).values()
        if isinstance(value, type) and issubclass(value, AllianceError)
    ]
    return sorted(found, key=lambda cls: (len(cls.__mro__), cls.type_slug))


def problem_response(exc: AllianceError) -> JSONResponse:
    headers = {}
    if isinstance(exc, RetryableError):
        headers["Retry-After"] = str(exc.retry_after_s)
    return JSONResponse(
        exc.problem(), status_code=exc.status, media_type=PROBLEM_MEDIA_TYPE, headers=headers
    )


def _validation_problem(exc: RequestValidationError) -> MalformedError:
    """The first refused parameter, named as the client wrote it (query.seq → seq)."""
    first: dict[str, Any] = exc.errors()[0] if exc.errors() else {}
    location = [str(part) for part in first.get("loc", ())[1:]]
    field = ".".join(location) or None
    message = str(first.get("msg", "invalid request"))
    return MalformedError(f"{field or 'request'}: {message}", field=field)


def install(app: FastAPI, on_problem: Any) -> None:
    """Register the handlers. ``on_problem(exc)`` is told of every problem answered
    (the metrics count them, refused reads apart)."""

    async def alliance_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, AllianceError)
        on_problem(exc)
        return problem_response(exc)

    async def validation_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return await alliance_error(request, _validation_problem(exc))

    async def http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, HTTPException)
        problem: AllianceError
        if exc.status_code == 404:
            problem = NotFoundError(f"no route {request.url.path}")
        elif exc.status_code == 405:
            problem = MethodNotAllowedError(f"{request.method} is not allowed here")
        else:
            problem = MalformedError(str(exc.detail))
        return await alliance_error(request, problem)

    async def database_down(request: Request, exc: Exception) -> JSONResponse:
        log.warning("database unavailable: %s", exc.__class__.__name__)
        return await alliance_error(request, NotReadyError("the database is unavailable"))

    async def bug(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return await alliance_error(request, InternalError("the server failed; it is logged"))

    app.add_exception_handler(AllianceError, alliance_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(OperationalError, database_down)
    app.add_exception_handler(Exception, bug)


def problem_schema() -> dict[str, Any]:
    """The OpenAPI schema of a problem document; ``type`` is one of the listed types."""
    return {
        "type": "object",
        "required": ["type", "title", "status", "detail"],
        "properties": {
            "type": {
                "type": "string",
                "enum": [cls.problem_type_of() for cls in problem_types()],
            },
            "title": {"type": "string"},
            "status": {"type": "integer"},
            "detail": {"type": "string"},
            "seq": {"type": "integer"},
            "field": {"type": "string"},
        },
    }


def problem_catalogue() -> list[dict[str, Any]]:
    """Every problem type with its title and status (the OpenAPI ``x-problem-types``)."""
    return [
        {"type": cls.problem_type_of(), "title": cls.title, "status": cls.status}
        for cls in problem_types()
    ]


def is_refused_read(exc: AllianceError) -> bool:
    return isinstance(exc, ForbiddenError)
