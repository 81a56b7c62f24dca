"""`alliance bench memory`: the writer's memory and start-up on a full log.

Appends ``entries`` returns (among RETURN_MERCHANTS merchants, as `bench append --kind
return` builds them) through the front door in chunks, then reports

* the sustained append rate over the whole run (the log growing as it goes);
* the writer's resident memory at the end (VmRSS, after a collection);
* a restart: a fresh process opens the same database and appends one entry; its wall
  time and peak memory (what a one-entry `alliance submit` costs at that size).

Not a timed test: a figure for the README, with the machine it ran on.
"""

from __future__ import annotations

import gc
import itertools
import time

from ops.bench.append import (
    BATCH_SIZE,
    RETURN_MERCHANTS,
    _enrol_merchants,
    _fresh_database,
    _require_appended,
    _start_log,
)
from ops.bench.child import run_child, status_mib
from ops.bench.generate import return_submissions
from ops.bench.machine import machine
from schemas.errors import ConfigError
from schemas.limits import (
    BENCH_MEMORY_CHUNK_ENTRIES,
    BENCH_MEMORY_ENTRIES_MAX,
    BENCH_RESTART_TIMEOUT_S,
)
from signing.entry import submitted

# Run by the restart child: open the ledger, append one enrolment, print time and peak RSS.
_RESTART = """
import json, sys, time
from ops.bench.child import peak_rss_mb
start = time.perf_counter()
from ledger.app import Ledger
from ops.bench.append import BENCH_NOW, SEED
from ops.world import EntryFactory, Keyring, member_body, uscc
ring = Keyring(seed=SEED)
ring.ensure("region:31")
member = uscc("31", 9_999_999)
body = member_body(member, "31", ring.ensure(member).public.wire())
document = EntryFactory().signed(ring, "member.enrolled", "region:31", body, BENCH_NOW)
ledger = Ledger.open(sys.argv[1], ring.ensure("operator"), clock=lambda: BENCH_NOW)
seq = ledger.submit(document).seq
print(json.dumps({"seq": seq, "seconds": time.perf_counter() - start,
                  "peak_rss_mb": peak_rss_mb()}))
"""


def bench_memory(db: str | None, entries: int = 1_000_000) -> dict[str, object]:
    if not 1 <= entries <= BENCH_MEMORY_ENTRIES_MAX:
        raise ConfigError(f"entries must be within 1..{BENCH_MEMORY_ENTRIES_MAX}")
    host = machine()
    with _fresh_database(db) as (backend, engine):
        fixture = _start_log(engine)
        merchants = _enrol_merchants(fixture, RETURN_MERCHANTS)
        # The bench export's returns (ops.bench.generate), signed a chunk at a time.
        returns = return_submissions(fixture, merchants, entries)
        appended_s = 0.0
        for _ in range(0, entries, BENCH_MEMORY_CHUNK_ENTRIES):
            documents = [
                submitted(entry, fixture.ring.keys[signer])
                for signer, entry in itertools.islice(returns, BENCH_MEMORY_CHUNK_ENTRIES)
            ]
            started = time.perf_counter()
            for start in range(0, len(documents), BATCH_SIZE):
                _require_appended(fixture.ledger.submit_many(documents[start : start + BATCH_SIZE]))
            appended_s += time.perf_counter() - started
        del documents
        gc.collect()
        writer_rss_mb = status_mib("VmRSS")
        url = engine.url.render_as_string(hide_password=False)
        child = run_child(_RESTART, url, BENCH_RESTART_TIMEOUT_S, "the restart child")
    return {
        "bench": "memory",
        "backend": backend,
        "entries": entries,
        "append_per_s": round(entries / appended_s, 1),
        "writer_rss_mb": round(writer_rss_mb, 1),
        "restart_submit_s": round(float(child["seconds"]), 2),
        "restart_peak_rss_mb": round(float(child["peak_rss_mb"]), 1),
        "machine": host,
    }
