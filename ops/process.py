"""Starting one of our own HTTP servers (`alliance serve`, `alliance witness --listen`)
in its own process on 127.0.0.1, and waiting until it answers: the one helper the HTTP
bench, the demo and the tests share.

Readiness is polled with a deadline, never slept for: each attempt that finds no answer
waits on the process itself (up to READY_POLL_S), so a server that dies is reported at
once, with the end of its stderr.
"""

from __future__ import annotations

import contextlib
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


def _answers(http: httpx.Client, url: str, ready_path: str) -> bool:
    """The server answers ``ready_path``: 200 for /healthz (the writer holds the log),
    any HTTP answer below 500 for a path that only shows the server is up."""
    try:
        status = http.get(f"{url}{ready_path}", timeout=2).status_code
    except httpx.TransportError:
        return False
    return status == 200 if ready_path == "/healthz" else status < 500


def serve_args(db_url: str, keys: Path, *extra: str) -> list[str]:
    """`alliance serve` on ``db_url`` with the operator key in ``keys``."""
    return ["serve", "--db", db_url, "--keys", str(keys), *extra]


@contextmanager
def alliance_server(arguments: Sequence[str], *, ready_path: str = "/healthz") -> Iterator[str]:
    """Run ``alliance <arguments>`` on a free port (added: ``--port P`` for serve,
    ``--listen 127.0.0.1:P`` for the witness) until the block ends; yields its base URL
    once it answers ``ready_path``. Stopped with SIGTERM (SIGKILL after STOP_TIMEOUT_S)."""
    with alliance_servers([arguments], ready_path=ready_path) as urls:
        yield urls[0]


@contextmanager
def alliance_servers(
    commands: Sequence[Sequence[str]], *, ready_path: str = "/healthz"
) -> Iterator[list[str]]:
    """Several servers started together (their start-ups overlap), each waited for."""
    with contextlib.ExitStack() as stack:
        started = []
        for arguments in commands:
            port = free_port()
            command = [sys.executable, "-m", "ops.cli", *arguments]
            command += ["--port", str(port)] if arguments[0] == "serve" else []
            command += ["--listen", f"127.0.0.1:{port}"] if arguments[0] == "witness" else []
            stderr = stack.enter_context(tempfile.TemporaryFile())
            env = os.environ | {"PYTHONPATH": str(ROOT)}
            # Our own interpreter and CLI, with arguments our callers built.
            process = subprocess.Popen(  # noqa: S603
                command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=stderr
            )
            stack.callback(_stop, process)
            started.append((f"http://127.0.0.1:{port}", process, stderr, arguments[0]))
        # One client for every poll: each new one loads the CA bundle (~0.3 s).
        with httpx.Client() as http:
            for url, process, stderr, what in started:
                _wait_ready(http, url, ready_path, process, stderr, what)
        yield [url for url, *_ in started]


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _wait_ready(
    http: httpx.Client,
    url: str,
    ready_path: str,
    process: subprocess.Popen[bytes],
    stderr: IO[bytes],
    what: str,
) -> None:
    for _ in range(READY_ATTEMPTS):
        if _answers(http, url, ready_path):
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


__all__ = ["alliance_server", "alliance_servers", "free_port", "serve_args"]
