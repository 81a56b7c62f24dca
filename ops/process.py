"""Starting one of our own HTTP servers (`alliance serve`, `alliance witness --listen`)
in its own process on 127.0.0.1, and waiting until it answers: the one helper the HTTP
bench, the demo and the tests share.

Readiness is polled with a deadline, never slept for: each attempt that finds no answer
waits on the process itself (up to READY_POLL_S), so a server that dies is reported at
once, with the end of its stderr.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import httpx

from schemas.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
READY_ATTEMPTS = 600  # × up to READY_POLL_S: a bounded minute at most
READY_POLL_S = 0.1
STOP_TIMEOUT_S = 30
STDERR_TAIL_BYTES = 2000


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _answers(url: str, ready_path: str) -> bool:
    """The server answers ``ready_path``: 200 for /healthz (the writer holds the log),
    any HTTP answer below 500 for a path that only shows the server is up."""
    try:
        status = httpx.get(f"{url}{ready_path}", timeout=2).status_code
    except httpx.TransportError:
        return False
    return status == 200 if ready_path == "/healthz" else status < 500


@contextmanager
def alliance_server(
    arguments: Sequence[str], *, ready_path: str = "/healthz", port: int | None = None
) -> Iterator[str]:
    """Run ``alliance <arguments> --port/--listen …`` (the port is added: ``--port P``
    for serve, ``--listen 127.0.0.1:P`` for the witness) until the block ends; yields
    its base URL once it answers. Stopped with SIGTERM (SIGKILL after STOP_TIMEOUT_S)."""
    port = port or free_port()
    command = [sys.executable, "-m", "ops.cli", *arguments]
    command += ["--port", str(port)] if arguments[0] == "serve" else []
    command += ["--listen", f"127.0.0.1:{port}"] if arguments[0] == "witness" else []
    env = os.environ | {"PYTHONPATH": str(ROOT)}
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryFile() as stderr:
        # Our own interpreter and CLI, with arguments our callers built.
        process = subprocess.Popen(  # noqa: S603
            command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=stderr
        )
        try:
            _wait_ready(url, ready_path, process, stderr, arguments[0])
            yield url
        finally:
            process.terminate()
            try:
                process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_ready(
    url: str, ready_path: str, process: subprocess.Popen[bytes], stderr: IO[bytes], what: str
) -> None:
    for _ in range(READY_ATTEMPTS):
        if _answers(url, ready_path):
            return
        try:
            process.wait(timeout=READY_POLL_S)
        except subprocess.TimeoutExpired:
            continue
        stderr.seek(0)
        tail = stderr.read()[-STDERR_TAIL_BYTES:].decode(errors="replace")
        raise ConfigError(f"alliance {what} exited {process.returncode}: {tail}")
    process.kill()
    raise ConfigError(f"the server at {url} was not ready after {READY_ATTEMPTS} attempts")


__all__ = ["alliance_server", "free_port"]
