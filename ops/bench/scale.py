"""`alliance bench scale` (`make scale`): issue 11's figures on one log of ``entries``
entries on PostgreSQL, built the fastest honest way:

1. the bench's signed export (ops.bench.audit.build_export: genesis and merchants
   appended by the writer on a SQLite file, the returns generated on every core by the
   writer's own code, byte for byte its export: ops/bench/generate.py), reused when the
   folder already holds one of that size;
2. the audit of it, against the all-core raw Ed25519 verify rate (ops.bench.audit),
   unless ``audit=False`` (the import audits it again anyway: at 10 M the separate
   audit is an hour that a run measuring only the rest can spare);
3. `alliance import` of it into a fresh PostgreSQL schema (every signature and rule
   verified again, leaves and tiles bulk-loaded, projections sealed): its rate;
4. a fresh process opens that database as the writer and appends one entry (what a
   one-entry `alliance submit` costs at that size): its wall time and peak memory;
5. inclusion proofs read from that database's tiles as `alliance proof` and the API
   serve them (Ledger.inclusion: checked against the checkpoint's root), p50 and p99,
   beside pymerkle's in-memory proofs over the same leaves.

Each step's figures are also handed to ``progress`` as soon as it ends (the CLI prints
them on stderr), so a run of hours that is cut short still leaves what it measured.

The append rates come from `alliance bench append` (the Makefile runs it beside this).
"""

from __future__ import annotations

import gc
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pymerkle

from ledger.app import Ledger
from ledger.export import ENTRIES_FILE
from ledger.restore import import_export
from ops.bench.append import BENCH_SETUP_AT, SEED, _fresh_database
from ops.bench.audit import bench_audit, ensure_export
from ops.bench.child import run_child
from ops.bench.machine import machine
from ops.bench.memory import _RESTART
from ops.bench.proofs import _percentile_us, _time_interleaved
from ops.config import load_config
from ops.world import EntryFactory, Keyring, genesis_submission
from schemas.errors import ConfigError
from schemas.limits import BENCH_PYMERKLE_ENTRIES_MAX, BENCH_RESTART_TIMEOUT_S
from signing.keys import PrivateKey

PROOF_SAMPLES = 2000
PERCENTILES = (50, 99)


def bench_operator() -> PrivateKey:
    """The bench log's operator key (the keyring is derived from SEED)."""
    ring = Keyring(seed=SEED)
    genesis_submission(load_config(), ring, EntryFactory(SEED), BENCH_SETUP_AT)
    return ring.keys["operator"]


def _restart(url: str) -> dict[str, Any]:
    return run_child(_RESTART, url, BENCH_RESTART_TIMEOUT_S, "the one-entry submit")


def _pymerkle(path: Path) -> Any:
    """pymerkle's RFC 6962 tree over the leaves of ``path``, streamed in."""
    tree = pymerkle.InmemoryTree(algorithm="sha256", disable_security=False)
    with path.open("rb") as handle:
        for line in handle:
            tree.append_entry(line.rstrip(b"\n"))
    return tree


def _proofs(url: str, entries: int, export: Path) -> dict[str, object]:
    """Our p50/p99 from the database at ``entries`` leaves, interleaved with pymerkle's
    in memory over the same leaves (when ``entries`` is within its memory budget)."""
    rng = random.Random(SEED)  # noqa: S311 - sample positions, not secrets
    seqs = [(rng.randrange(entries), entries) for _ in range(PROOF_SAMPLES)]
    ledger = Ledger.replica(url)  # reads only, as a read replica would serve them
    try:
        ledger.inclusion(0, entries)  # the checkpoint and keys, before timing
        if entries > BENCH_PYMERKLE_ENTRIES_MAX:
            ours = []
            for seq, size in seqs:
                started = time.perf_counter_ns()
                ledger.inclusion(seq, size)
                ours.append(time.perf_counter_ns() - started)
            theirs: list[int] = []
        else:
            gc.disable()
            try:
                tree = _pymerkle(export / ENTRIES_FILE)
                one_based = [(seq + 1, size) for seq, size in seqs]
                ours, theirs = _time_interleaved(
                    ledger.inclusion, seqs, tree.prove_inclusion, one_based
                )
                del tree
            finally:
                gc.enable()
    finally:
        ledger.close()
    result: dict[str, object] = {
        f"db_inclusion_p{p}_us": _percentile_us(ours, p) for p in PERCENTILES
    }
    if theirs:
        for p in PERCENTILES:
            result[f"pymerkle_inclusion_p{p}_us"] = _percentile_us(theirs, p)
        result["ratio_p50"] = round(
            float(str(result["pymerkle_inclusion_p50_us"]))
            / float(str(result["db_inclusion_p50_us"])),
            3,
        )
    return result


def _ignore(step: str, figures: dict[str, object]) -> None:
    """The default progress: nothing said until the end."""


def bench_scale(
    entries: int,
    db: str,
    folder: Path,
    *,
    audit: bool = True,
    progress: Callable[[str, dict[str, object]], None] = _ignore,
) -> dict[str, object]:
    """Every figure of issue 11 at ``entries`` entries (see the module docstring);
    ``progress(step, figures)`` after each step."""
    host = machine()
    started = time.perf_counter()
    export = folder / f"export-{entries}"
    report: dict[str, object] = {"bench": "scale", "entries": entries}
    first: dict[str, object]
    if audit:
        audited = bench_audit(entries, export)
        first = {key: audited[key] for key in audited if key not in ("bench", "machine")}
    else:
        built_started = time.perf_counter()
        reused = ensure_export(export, entries)
        built_s = round(time.perf_counter() - built_started, 1)
        first = {"export": str(export), "export_reused": reused, "export_built_s": built_s}
    step = "audit" if audit else "export"
    report[step] = first
    progress(step, first)
    with _fresh_database(db) as (backend, engine):
        if backend != "postgresql":
            raise ConfigError("make scale runs on PostgreSQL: --db postgresql+psycopg://…")
        url = engine.url.render_as_string(hide_password=False)
        imported = import_export(export, url, bench_operator())
        wired = imported.wire()
        report["import"] = wired
        progress("import", wired)
        submit = _restart(url)
        report["one_entry_submit_s"] = round(float(submit["seconds"]), 2)
        report["one_entry_submit_peak_rss_mb"] = round(float(submit["peak_rss_mb"]), 1)
        progress("submit", {key: report[key] for key in report if key.startswith("one_entry")})
        proofs = _proofs(url, entries, export)
        report["proofs"] = proofs
        progress("proofs", proofs)
    report["total_s"] = round(time.perf_counter() - started, 1)
    report["machine"] = host
    return report
