"""`alliance serve` as a real process on 127.0.0.1 (uvicorn, its own interpreter), for
the tests that need what an in-process TestClient cannot show: signals, kill -9,
children that outlive the server, a restart on the same database."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from ops.process import free_port

READY_DEADLINE_S = 60.0
STOP_DEADLINE_S = 20.0


@dataclass
class Served:
    process: subprocess.Popen[bytes]
    base: str


def start(url: str, keys: Path) -> Served:
    """Start the server and wait (with a deadline) until /healthz answers 200. Its
    stderr is a pipe that the tests read to its end: whoever still holds it open keeps
    the end from coming."""
    port = free_port()
    command = [sys.executable, "-m", "ops.cli", "serve", "--db", url, "--keys", str(keys)]
    process = subprocess.Popen(
        [*command, "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + READY_DEADLINE_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"alliance serve exited: {process.communicate()[1][-800:]!r}")
        try:
            if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                return Served(process, base)
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    process.kill()
    raise AssertionError("alliance serve was not ready in time")


def stop(served: Served) -> bytes:
    """SIGTERM, then the stderr pipe read to its end within STOP_DEADLINE_S: it ends
    only when the server and every process it started have let go of it."""
    served.process.terminate()
    try:
        return served.process.communicate(timeout=STOP_DEADLINE_S)[1]
    finally:
        if served.process.poll() is None:
            served.process.kill()


@contextmanager
def serving(url: str, keys: Path) -> Iterator[Served]:
    served = start(url, keys)
    try:
        yield served
    finally:
        if served.process.poll() is None:
            served.process.kill()
            served.process.wait(timeout=STOP_DEADLINE_S)
