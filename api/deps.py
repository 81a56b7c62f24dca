"""What every route is handed: the app's services, and who is reading.

``reader()`` is the one place a request becomes a ``ledger.access.Reader``. Until RFC
9421 request signatures land, everyone is PUBLIC; then this dependency will verify the
signature and build the reader of the principal, and no route changes."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated

from fastapi import Depends, Request

from api.metrics import Metrics
from ledger.access import PUBLIC, Reader
from ledger.app import Ledger
from ledger.public import PublicReads
from schemas.errors import QueueFullError
from schemas.limits import API_INFLIGHT_ENTRIES_MAX


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


def services(request: Request) -> Services:
    found: Services = request.app.state.services
    return found


def reader(request: Request) -> Reader:
    """Who sent ``request``. TODO(issue 9, authentication): verify its RFC 9421
    signature here and return the principal's Reader."""
    del request
    return PUBLIC


ServicesDep = Annotated[Services, Depends(services)]
ReaderDep = Annotated[Reader, Depends(reader)]
