"""`alliance bench audit`: the auditor's rate against the all-core raw Ed25519 verify rate.

Builds (or reuses) an export of ``entries`` entries: the bench's genesis and merchants
appended by the writer on a SQLite file, then the returns among them generated as the
writer would log them (ops.bench.generate: byte-identical, signed on every core), every
witness's cosignature, in the layout of `alliance export`. Then, in the same run:

* the audit (ledger.audit.audit_directory) of that export: entries per second, and its
  peak resident memory (measured in a fresh child process, so the build does not count);
* the raw loop: the same signatures verified by every core, straightforwardly (each
  worker parses its lines with the standard library, caches each public key and calls
  libsodium), over the same file.

The ratio is audit / raw; issue 11's target is at least 0.6 at a million entries.
"""

from __future__ import annotations

import binascii
import json
import os
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import nacl.bindings
import orjson

from ledger.checking import ENTRY_START
from ledger.export import ENTRIES_FILE
from ops.bench.append import SEED
from ops.bench.child import run_child
from ops.bench.generate import generate_export
from ops.bench.machine import machine
from schemas.errors import ConfigError
from schemas.limits import (
    AUDIT_CHUNK_LINES,
    BENCH_AUDIT_TIMEOUT_S,
)
from signing.entry import ENTRY_SIGNATURE_PREFIX
from signing.keys import b64decode

RAW_ENTRY_END = b',"logged":"'  # the member after "entry" in a canonical record
STAMP_FILE = "bench-audit.json"  # what the export in a folder was built from
RATE_DIGITS = 1
RATIO_DIGITS = 3

# Run by the audit child: audit the folder, print its time, findings and peak memory.
_AUDIT = """
import json, sys, time
from ops.bench.child import peak_rss_mb
from pathlib import Path
from ledger.audit import audit_directory
start = time.perf_counter()
report = audit_directory(Path(sys.argv[1]))
print(json.dumps({"seconds": time.perf_counter() - start, "size": report.size,
                  "findings": [str(f) for f in report.findings[:5]],
                  "peak_rss_mb": peak_rss_mb()}))
"""


def build_export(directory: Path, entries: int) -> None:
    """An export of ``entries`` entries in ``directory`` (the bench's log: genesis,
    RETURN_MERCHANTS enrolments, returns), every region's witness cosigned: generated on
    every core, byte for byte what the writer would export (ops/bench/generate.py)."""
    generate_export(directory, entries)
    (directory / STAMP_FILE).write_text(json.dumps({"entries": entries, "seed": SEED}))


def ensure_export(directory: Path, entries: int) -> bool:
    """Reuse the export in ``directory`` if this bench built it for ``entries``;
    otherwise build it. True when it was reused."""
    stamp = directory / STAMP_FILE
    if stamp.is_file():
        try:
            built = json.loads(stamp.read_text("utf-8"))
        except (OSError, ValueError):
            built = {}
        if built == {"entries": entries, "seed": SEED}:
            return True
    directory.mkdir(parents=True, exist_ok=True)
    build_export(directory, entries)
    return False


def _raw_verify_chunk(lines: list[bytes]) -> int:
    """The raw loop's worker: parse each line with orjson, take the entry's bytes as the
    slice before its "logged" member (the bench's lines are canonical records), verify
    every signature under its cached key. Returns the signatures verified."""
    keys: dict[str, bytes] = _RAW_KEYS
    verified = 0
    for line in lines:
        record = orjson.loads(line)
        message = ENTRY_SIGNATURE_PREFIX + line[ENTRY_START : line.rindex(RAW_ENTRY_END)]
        for signature in record["signatures"]:
            raw = binascii.a2b_base64(signature["sig"])
            nacl.bindings.crypto_sign_open(raw + message, keys[signature["key"]])
            verified += 1
    return verified


_RAW_KEYS: dict[str, bytes] = {}


def _raw_init(keys: dict[str, bytes]) -> None:
    _RAW_KEYS.update(keys)


def _declared_keys(path: Path) -> dict[str, bytes]:
    """key id -> raw public key of every key the log declares (scanned, not judged)."""
    keys: dict[str, bytes] = {}

    def collect(value: object) -> None:
        if isinstance(value, dict):
            if isinstance(value.get("key"), str) and isinstance(value.get("pub"), str):
                keys[value["key"]] = b64decode(value["pub"])
            for inner in value.values():
                collect(inner)
        elif isinstance(value, list):
            for inner in value:
                collect(inner)

    with path.open("rb") as handle:
        for line in handle:
            if b'"pub"' in line:
                collect(json.loads(line)["entry"]["body"])
    return keys


def raw_verify(path: Path) -> tuple[int, float]:
    """The all-core raw verify over ``path``'s signatures: (signatures, seconds). The
    keys are gathered before the clock starts (the raw loop caches them)."""
    keys = _declared_keys(path)
    workers = os.cpu_count() or 1
    with ProcessPoolExecutor(workers, initializer=_raw_init, initargs=(keys,)) as executor:
        list(executor.map(_raw_verify_chunk, [[]] * workers))  # workers up before timing
        started = time.perf_counter()
        total = 0
        with path.open("rb") as handle:
            futures = []
            chunk: list[bytes] = []
            for line in handle:
                chunk.append(line)
                if len(chunk) >= AUDIT_CHUNK_LINES:
                    futures.append(executor.submit(_raw_verify_chunk, chunk))
                    chunk = []
                    if len(futures) > 2 * workers:
                        total += futures.pop(0).result()
            futures.append(executor.submit(_raw_verify_chunk, chunk))
            total += sum(future.result() for future in futures)
        return total, time.perf_counter() - started


def _audit_child(directory: Path) -> dict[str, object]:
    return run_child(_AUDIT, str(directory), BENCH_AUDIT_TIMEOUT_S, "the audit child")


def bench_audit(entries: int, directory: Path) -> dict[str, object]:
    host = machine()
    started = time.perf_counter()
    reused = ensure_export(directory, entries)
    built_s = time.perf_counter() - started
    audited = _audit_child(directory)
    if audited["findings"]:
        raise ConfigError(f"the bench export does not audit: {audited['findings']}")
    signatures, raw_s = raw_verify(directory / ENTRIES_FILE)
    audit_s = float(str(audited["seconds"]))
    audit_rate = entries / audit_s
    raw_rate = signatures / raw_s
    return {
        "bench": "audit",
        "entries": entries,
        "ratio": round(audit_rate / raw_rate, RATIO_DIGITS),
        "audit_per_s": round(audit_rate, RATE_DIGITS),
        "raw_verify_per_s": round(raw_rate, RATE_DIGITS),
        "signatures": signatures,
        "audit_peak_rss_mb": round(float(str(audited["peak_rss_mb"])), 1),
        "export": str(directory),
        "export_reused": reused,
        "export_built_s": round(built_s, 1),
        "machine": host,
    }
