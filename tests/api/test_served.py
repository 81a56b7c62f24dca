"""`alliance serve` in its own process: it stops without leaving a process behind, and
kill -9 in the middle of a `:batch` upload loses no acknowledged entry."""

from __future__ import annotations

import signal
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from ledger.state import OPERATOR
from ops.bench.http import _documents, _new_log
from ops.world import EntryFactory, Keyring
from schemas.limits import BODY_READ_DEADLINE_S, PARALLEL_VERIFY_MIN_ENTRIES
from tests.api.served import STOP_DEADLINE_S, serving, start, stop

BATCH_TIMEOUT_S = 120.0
KILL_DEADLINE_S = 60.0
POLL_S = 0.01


@dataclass
class Log:
    url: str
    keys: Path
    documents: list[dict[str, Any]]


def _log(db_url: str, tmp_path: Path, count: int) -> Log:
    ring, factory = Keyring(), EntryFactory()
    documents = _documents(ring, factory, count)
    _new_log(db_url, ring, factory).close()
    keys = tmp_path / "keys"
    keys.mkdir()
    ring.keys[OPERATOR].save(keys / "operator.pem")
    return Log(db_url, keys, documents)


def _post_batch(base: str, documents: list[dict[str, Any]]) -> list[int]:
    response = httpx.post(
        f"{base}/v1/entries:batch", json={"entries": documents}, timeout=BATCH_TIMEOUT_S
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["refused"] == 0, body
    return [item["seq"] for item in body["results"]]


def test_a_stopped_server_leaves_no_process_behind(db_url: str, tmp_path: Path) -> None:
    """Regression: a batch large enough to start the verification worker, then SIGTERM.
    The server's stderr must reach its end within the deadline: before the fix the
    worker outlived the server holding the pipe, and `alliance bench http --batch`
    waited on it forever."""
    log = _log(db_url, tmp_path, PARALLEL_VERIFY_MIN_ENTRIES)
    served = start(log.url, log.keys)
    try:
        seqs = _post_batch(served.base, log.documents)
        assert seqs == list(range(1, len(log.documents) + 1))
    finally:
        stop(served)  # raises TimeoutExpired if anything still holds the pipe
    assert served.process.returncode is not None


def test_the_worker_dies_with_a_killed_server(db_url: str, tmp_path: Path) -> None:
    """kill -9 skips every shutdown hook: the worker notices its parent is gone."""
    log = _log(db_url, tmp_path, PARALLEL_VERIFY_MIN_ENTRIES)
    with serving(log.url, log.keys) as served:
        _post_batch(served.base, log.documents)
        served.process.send_signal(signal.SIGKILL)
        served.process.communicate(timeout=STOP_DEADLINE_S)  # the pipe's end: no orphan
        assert served.process.returncode == -signal.SIGKILL


def _queue_depth(base: str) -> float:
    for line in httpx.get(f"{base}/metrics", timeout=5).text.splitlines():
        if line.startswith("alliance_queue_depth "):
            return float(line.split()[1])
    raise AssertionError("no alliance_queue_depth in /metrics")


@pytest.mark.parametrize("in_flight", [1000])
def test_kill_9_in_the_middle_of_a_batch_upload(
    db_url: str, tmp_path: Path, in_flight: int
) -> None:
    """Two batches acknowledged, a third in flight when the server is killed -9. After a
    restart every acknowledged entry is in the log at its seq, and a retry of the whole
    upload answers the same seqs (the acknowledged ones as duplicates)."""
    acked_count = 2 * PARALLEL_VERIFY_MIN_ENTRIES
    log = _log(db_url, tmp_path, acked_count + in_flight)
    halves = [log.documents[:PARALLEL_VERIFY_MIN_ENTRIES]]
    halves.append(log.documents[PARALLEL_VERIFY_MIN_ENTRIES:acked_count])
    last = log.documents[acked_count:]
    with serving(log.url, log.keys) as served:
        acked = _post_batch(served.base, halves[0]) + _post_batch(served.base, halves[1])
        outcome: list[object] = []

        def upload() -> None:
            try:
                outcome.append(_post_batch(served.base, last))
            except (httpx.HTTPError, AssertionError) as exc:
                outcome.append(exc)

        uploader = threading.Thread(target=upload)
        uploader.start()
        deadline = time.monotonic() + KILL_DEADLINE_S
        while _queue_depth(served.base) == 0 and not outcome:
            assert time.monotonic() < deadline, "the third batch never reached the writer"
            time.sleep(POLL_S)
        served.process.send_signal(signal.SIGKILL)
        served.process.communicate(timeout=STOP_DEADLINE_S)
        uploader.join(BATCH_TIMEOUT_S)
    if outcome and isinstance(outcome[0], list):
        acked += outcome[0]  # it was answered before the kill landed
    with serving(log.url, log.keys) as again:
        # The last acknowledged entry, read back; the retry below vouches for the rest
        # (a duplicate answers the seq its entry id was logged at).
        record = httpx.get(f"{again.base}/v1/entries/{acked[-1]}", timeout=10)
        assert record.status_code == 200, record.text
        logged_id = record.json()["record"]["entry"]["id"]
        assert logged_id == log.documents[len(acked) - 1]["entry"]["id"]
        retried = _post_batch(again.base, halves[0]) + _post_batch(again.base, halves[1])
        retried += _post_batch(again.base, last)
        assert retried[: len(acked)] == acked
        assert retried == list(range(1, len(log.documents) + 1))
        stop(again)


def test_a_slow_client_times_out(sqlite_url: str, tmp_path: Path) -> None:
    """A body that stalls half-way is answered 408 once BODY_READ_DEADLINE_S passes;
    the connection is not held for the client."""
    log = _log(sqlite_url, tmp_path, 1)
    with serving(log.url, log.keys) as served:
        port = int(served.base.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port)) as connection:
            connection.settimeout(BODY_READ_DEADLINE_S + STOP_DEADLINE_S)
            head = "POST /v1/entries HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            connection.sendall(f'{head}Content-Length: 100\r\n\r\n{{"entry":'.encode())
            started = time.monotonic()
            answer = connection.recv(4096).decode()
            waited_s = time.monotonic() - started
            while "request-timeout" not in answer:  # the body may come in its own segment
                more = connection.recv(4096).decode()
                if not more:
                    break
                answer += more
        assert answer.startswith("HTTP/1.1 408"), answer
        assert "request-timeout" in answer and "application/problem+json" in answer
        assert BODY_READ_DEADLINE_S - 1 <= waited_s < BODY_READ_DEADLINE_S + STOP_DEADLINE_S
