"""`alliance bench http`: appends over HTTP against the library's own rate, in one run.

A fresh log (SQLite file, or a fresh PostgreSQL schema with ``--db``) gets its genesis;
``alliance serve`` runs on it in its own process on 127.0.0.1; a load generator in a third
process posts pre-signed ``member.enrolled`` submissions from ``clients`` concurrent
connections, one entry a request (``POST /v1/entries``) or 1,000 a request
(``POST /v1/entries:batch``), and reports entries/s with the p50 and p99 latency of a
request. The library rate is measured in the same run, on a second fresh log of the
same backend: the same number of pre-signed entries through ``Ledger.submit_many`` in
the sequencer's batches. ``ratio`` = HTTP rate / library rate (issue 9's targets: ≥ 0.6
for single posts with p99 < 250 ms at 64 clients, ≥ 0.9 for batches).

Entries carry the real clock (the server's log clock is the real one), and every key is
generated for the run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ledger.app import Ledger
from ledger.state import OPERATOR
from ops.bench.append import _fresh_database
from ops.bench.machine import machine
from ops.config import load_config
from ops.process import alliance_server, serve_args
from ops.world import EntryFactory, Keyring, genesis_submission, member_body, uscc
from schemas.errors import ConfigError
from schemas.limits import BATCH_SIZE_MAX

REQUEST_TIMEOUT_S = 120.0
SERVER_STOP_S = 30.0  # a graceful stop after the load; then it is killed
LOAD_TIMEOUT_S = 3600.0  # the load generator's whole run; past it the bench fails
HTTP_BATCH_ENTRIES = 1_000  # documents per :batch request (the route's limit)
SIGNER_REGION = "31"

# The load generator: reads documents (JSON lines) and posts them from N connections.
_LOAD = r"""
import asyncio, json, sys, time
import httpx

async def main(url, path, clients, per_request):
    documents = [json.loads(line) for line in open(path, encoding="utf-8")]
    groups = [documents[i:i + per_request] for i in range(0, len(documents), per_request)]
    queue = asyncio.Queue()
    for group in groups:
        queue.put_nowait(group)
    latencies, failures = [], 0
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=120.0, limits=limits) as client:
        async def worker():
            nonlocal failures
            while not queue.empty():
                group = queue.get_nowait()
                started = time.perf_counter()
                if per_request == 1:
                    response = await client.post("/v1/entries", json=group[0])
                    ok = response.status_code in (200, 201)
                else:
                    response = await client.post("/v1/entries:batch", json={"entries": group})
                    ok = response.status_code == 200 and response.json()["refused"] == 0
                latencies.append(time.perf_counter() - started)
                failures += 0 if ok else 1
        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(clients)))
        seconds = time.perf_counter() - started
    print(json.dumps({"seconds": seconds, "latencies": latencies, "failures": failures}))

asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])))
"""


def _documents(ring: Keyring, factory: EntryFactory, count: int) -> list[dict[str, Any]]:
    """``count`` member.enrolled submissions by region 31, timed at the real clock."""
    signer = f"region:{SIGNER_REGION}"
    ring.ensure(signer)  # the genesis declares this same key later
    now = datetime.now(UTC)
    documents = []
    for index in range(count):
        member_id = uscc(SIGNER_REGION, index + 1)
        public = ring.ensure(f"bench-http-{index}").public.wire()
        body = member_body(member_id, SIGNER_REGION, public, name=f"bench member {index}")
        documents.append(factory.signed(ring, "member.enrolled", signer, body, now))
    return documents


def _new_log(url: str, ring: Keyring, factory: EntryFactory) -> Ledger:
    genesis = genesis_submission(load_config(), ring, factory, datetime.now(UTC))
    return Ledger.create(url, genesis, ring.keys[OPERATOR])


def _library_rate(url: str, ring: Keyring, documents: list[dict[str, Any]]) -> float:
    ledger = _new_log(url, ring, EntryFactory())
    try:
        started = time.perf_counter()
        for start in range(0, len(documents), BATCH_SIZE_MAX):
            results = ledger.submit_many(documents[start : start + BATCH_SIZE_MAX])
            if any(not hasattr(result, "seq") for result in results):
                raise ConfigError("the library refused a bench entry")
        return len(documents) / (time.perf_counter() - started)
    finally:
        ledger.close()


def _percentile_ms(values: list[float], percentile: int) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, round(percentile / 100 * (len(ordered) - 1)))
    return round(ordered[index] * 1000, 1)


def _load(base: str, documents: list[dict[str, Any]], clients: int, per_request: int) -> Any:
    with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as handle:
        for document in documents:
            handle.write(json.dumps(document) + "\n")
    try:
        done = subprocess.run(  # noqa: S603 (our interpreter and script)
            [sys.executable, "-c", _LOAD, base, handle.name, str(clients), str(per_request)],
            capture_output=True,
            text=True,
            check=False,
            env={**os.environ},
            timeout=LOAD_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired as exc:
        raise ConfigError(f"the load generator did not finish in {LOAD_TIMEOUT_S} s") from exc
    finally:
        os.unlink(handle.name)
    if done.returncode != 0:
        raise ConfigError(f"the load generator failed: {done.stderr[-500:]}")
    return json.loads(done.stdout)


def bench_http(
    db: str | None, clients: int = 64, entries: int = 20_000, batch: bool = False
) -> dict[str, object]:
    """One run: the library's rate, then the same entries over HTTP (module docstring)."""
    ring, factory = Keyring(), EntryFactory()
    documents = _documents(ring, factory, entries)
    with tempfile.TemporaryDirectory() as keys_dir, _fresh_database(db) as (backend, engine):
        library_url = engine.url.render_as_string(hide_password=False)
        library_rate = _library_rate(library_url, ring, documents)
        with _fresh_database(db) as (_, served):
            served_url = served.url.render_as_string(hide_password=False)
            _new_log(served_url, ring, factory).close()
            ring.keys[OPERATOR].save(Path(keys_dir) / "operator.pem")
            with alliance_server(serve_args(served_url, Path(keys_dir))) as base:
                per_request = HTTP_BATCH_ENTRIES if batch else 1
                run = _load(base, documents, clients, per_request)
    http_rate = entries / run["seconds"]
    return {
        "bench": "http",
        "backend": backend,
        "mode": "batch" if batch else "single",
        "clients": clients,
        "entries": entries,
        "failures": run["failures"],
        "entries_per_s": round(http_rate, 1),
        "p50_ms": _percentile_ms(run["latencies"], 50),
        "p99_ms": _percentile_ms(run["latencies"], 99),
        "library_entries_per_s": round(library_rate, 1),
        "ratio": round(http_rate / library_rate, 3),
        "machine": machine(),
    }
