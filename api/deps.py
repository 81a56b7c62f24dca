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

import anyio
from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from api.metrics import Metrics
from ledger import access
from ledger.access import PUBLIC, AuditorKeys, NonceCache, Reader
from ledger.app import Ledger
from ledger.public import PublicReads
from ledger.sessions import Sessions
from schemas.errors import LimitError, QueueFullError, SlowClientError
from schemas.limits import API_INFLIGHT_ENTRIES_MAX, BODY_READ_DEADLINE_S, SUBMISSION_BYTES_MAX
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
    # Auditor keys given to the app itself (tests), beside those the policy in force
    # declares (ledger.access.auditor_keys, read per signed request).
    auditors: AuditorKeys = field(default_factory=dict)
    # The web console's region sessions (ledger.sessions): challenges and cookies.
    sessions: Sessions = field(default_factory=Sessions)
    # A read-only ledger on a hot standby (`alliance serve --read-db`): checkpoints,
    # tiles, proofs, entries and public reads come from it; writes, and whatever decides
    # admission or authenticates a reader, stay with ``ledger`` (the primary).
    replica: Ledger | None = None

    @property
    def reading(self) -> Ledger:
        """The ledger that serves the log's reads: the replica's, else the primary's."""
        return self.replica if self.replica is not None else self.ledger


def services_of(request: Request) -> Services:
    found: Services = request.app.state.services
    return found


async def services(request: Request) -> Services:
    # async: FastAPI runs a sync dependency in the threadpool, where it would queue
    # behind the writes that hold every thread while they wait for their batch.
    return services_of(request)


async def reader(request: Request) -> Reader:
    """Who sent ``request``: PUBLIC without a signature, else the principal whose
    signature verifies (401 ``bad-signature`` when it does not). The body is read here
    (Starlette keeps it for the route) because a body's Content-Digest is checked."""
    if not is_signed(request.headers):
        return await run_in_threadpool(session_reader, request)
    headers = {name: ", ".join(request.headers.getlist(name)) for name in request.headers}
    found = services_of(request)
    body = await _signed_body(request)
    message = HttpRequest(request.method, _target_uri(request), headers, body)
    signed = parse_signed(message)

    def judge() -> Reader:
        reads = found.ledger.reads()
        auditors = {**access.auditor_keys(reads), **found.auditors}
        return access.authenticate(
            signed, reads.key, found.clock(), found.nonces, auditors=auditors
        )

    return await run_in_threadpool(judge)


SESSION_COOKIE = "alliance_session"


def session_reader(request: Request) -> Reader:
    """The region of the request's session cookie (ledger.sessions), or PUBLIC without
    one or once it has ended (its time is up, or the log replaced its key): an ended
    session reads as the public, it is not an error (the page then asks to sign in
    again). It reads the key's row (the database): call it from a worker thread."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return PUBLIC
    found = services_of(request)
    session = found.sessions.reader(token, found.clock(), found.ledger.reads().key)
    return PUBLIC if session is None else session.reader


async def _signed_body(request: Request) -> bytes:
    """The body whose digest a signature covers, refused (413) past
    SUBMISSION_BYTES_MAX (no signed route takes more) without reading it all; kept in
    Starlette's own cache so that the route reads the same bytes."""
    request._body = await read_body(request, SUBMISSION_BYTES_MAX)
    return request._body


async def read_body(request: Request, limit_bytes: int) -> bytes:
    """The request body, refused (413) past ``limit_bytes`` without reading it all, and
    (408) when it has not arrived whole within BODY_READ_DEADLINE_S: a slow client
    holds neither a connection nor a worker for long."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit_bytes:
        raise LimitError(f"the body is {declared} bytes; the limit is {limit_bytes}")
    chunks: list[bytes] = []
    size = 0
    try:
        with anyio.fail_after(BODY_READ_DEADLINE_S):
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit_bytes:
                    raise LimitError(f"the body exceeds the limit of {limit_bytes} bytes")
                chunks.append(chunk)
    except TimeoutError as exc:
        raise SlowClientError(
            f"the body did not arrive within {BODY_READ_DEADLINE_S} s ({size} bytes came)"
        ) from exc
    return b"".join(chunks)


def _target_uri(request: Request) -> str:
    """The target URI as the client wrote it: the raw (still percent-encoded) path and
    query, which RFC 9421 §2.2.6-7 sign, not Starlette's decoded ``url.path``."""
    raw_path = request.scope.get("raw_path") or request.url.path.encode()
    query = request.scope.get("query_string", b"")
    uri = f"{request.url.scheme}://{request.url.netloc}{raw_path.decode('latin-1')}"
    return uri + (f"?{query.decode('latin-1')}" if query else "")


ServicesDep = Annotated[Services, Depends(services)]
ReaderDep = Annotated[Reader, Depends(reader)]
