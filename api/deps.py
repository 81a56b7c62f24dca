"""What every route is handed: the app's services, and who is reading.

``reader()`` is the one place a request becomes a ``ledger.access.Reader``: an unsigned
request is PUBLIC; a signed one (RFC 9421, signing.http) is parsed here and judged by
ledger.access.authenticate, which holds every rule."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from api.metrics import Metrics
from ledger import access
from ledger.access import PUBLIC, AuditorKeys, NonceCache, Reader
from ledger.app import Ledger
from ledger.public import PublicReads
from ledger.sessions import Sessions
from schemas.errors import LimitError, QueueFullError
from schemas.limits import API_INFLIGHT_ENTRIES_MAX, SUBMISSION_BYTES_MAX
from signing.http import HttpRequest, is_signed, parse_signed


@dataclass
class Admission:
    """Counts the entries handed to the writer and not yet answered; refuses more than
    API_INFLIGHT_ENTRIES_MAX (503 with Retry-After) before their bodies are judged."""

    metrics: Metrics
    limit: int = API_INFLIGHT_ENTRIES_MAX
    inflight: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def enter(self, count: int) -> None:
        with self._lock:
            if self.inflight + count > self.limit:
                raise QueueFullError(
                    f"{self.inflight} entries are waiting for the writer; retry shortly"
                )
            self.inflight += count
            self.metrics.queue_depth.set(self.inflight)

    def leave(self, count: int) -> None:
        with self._lock:
            self.inflight -= count
            self.metrics.queue_depth.set(self.inflight)


@dataclass(frozen=True)
class Services:
    ledger: Ledger
    public: PublicReads
    metrics: Metrics
    admission: Admission
    clock: Callable[[], datetime]
    nonces: NonceCache = field(default_factory=NonceCache)
    # The policy-declared auditors' keys (ledger.access.AuditorKeys): none until the log
    # holds them; meanwhile auditors sign with the operator's key.
    auditors: AuditorKeys = field(default_factory=dict)
    # The web console's region sessions (ledger.sessions): challenges and cookies.
    sessions: Sessions = field(default_factory=Sessions)


def services(request: Request) -> Services:
    found: Services = request.app.state.services
    return found


async def reader(request: Request) -> Reader:
    """Who sent ``request``: PUBLIC without a signature, else the principal whose
    signature verifies (401 ``bad-signature`` when it does not). The body is read here
    (Starlette keeps it for the route) because a body's Content-Digest is checked."""
    if not is_signed(request.headers):
        return await run_in_threadpool(session_reader, request)
    headers = {name: ", ".join(request.headers.getlist(name)) for name in request.headers}
    found = services(request)
    body = await _signed_body(request)
    message = HttpRequest(request.method, _target_uri(request), headers, body)
    signed = parse_signed(message)
    return await run_in_threadpool(
        lambda: access.authenticate(
            signed, found.ledger.reads().key, found.clock(), found.nonces, auditors=found.auditors
        )
    )


SESSION_COOKIE = "alliance_session"


def session_reader(request: Request) -> Reader:
    """The region of the request's session cookie (ledger.sessions), or PUBLIC without
    one or once it has ended (its time is up, or the log replaced its key): an ended
    session reads as the public, it is not an error (the page then asks to sign in
    again). It reads the key's row (the database): call it from a worker thread."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return PUBLIC
    found = services(request)
    session = found.sessions.reader(token, found.clock(), found.ledger.reads().key)
    return PUBLIC if session is None else session.reader


async def _signed_body(request: Request) -> bytes:
    """The body whose digest a signature covers, refused (413) past
    SUBMISSION_BYTES_MAX (no signed route takes more) without reading it all; kept in
    Starlette's own cache so that the route reads the same bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > SUBMISSION_BYTES_MAX:
        raise LimitError(f"the body is {declared} bytes; the limit is {SUBMISSION_BYTES_MAX}")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > SUBMISSION_BYTES_MAX:
            raise LimitError(f"the body exceeds the limit of {SUBMISSION_BYTES_MAX} bytes")
        chunks.append(chunk)
    request._body = b"".join(chunks)
    return request._body


def _target_uri(request: Request) -> str:
    """The target URI as the client wrote it: the raw (still percent-encoded) path and
    query, which RFC 9421 §2.2.6-7 sign, not Starlette's decoded ``url.path``."""
    raw_path = request.scope.get("raw_path") or request.url.path.encode()
    query = request.scope.get("query_string", b"")
    uri = f"{request.url.scheme}://{request.url.netloc}{raw_path.decode('latin-1')}"
    return uri + (f"?{query.decode('latin-1')}" if query else "")


ServicesDep = Annotated[Services, Depends(services)]
ReaderDep = Annotated[Reader, Depends(reader)]
