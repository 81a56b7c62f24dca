"""ops/bench/generate.py writes exactly the export the writer does: the same entries.jsonl,
checkpoint (the operator's note and every witness's cosignature) and trust.json, byte for
byte, as appending the same submissions through the writer and exporting (the body
build_export had before it used the generator, kept here verbatim as the reference)."""

from __future__ import annotations

import random
from pathlib import Path

from ledger.audit import audit_directory
from ledger.export import CHECKPOINT_FILE, ENTRIES_FILE, REPORTS_DIR, TRUST_FILE
from ops.bench.append import (
    BATCH_SIZE,
    BENCH_NOW,
    RETURN_MERCHANTS,
    SAME_MERCHANT_SHARE,
    SEED,
    _enrol_merchants,
    _fresh_database,
    _require_appended,
    _return_body,
    _start_log,
)
from ops.bench.generate import generate_export
from ops.service import run_witness, trust_from_ledger
from schemas.limits import BENCH_MEMORY_CHUNK_ENTRIES

RETURNS = 300
ENTRIES = 1 + RETURN_MERCHANTS + RETURNS  # the genesis, the merchants, then returns
CHUNK_ENTRIES = 64  # several chunks per worker, and a short last one


def _writer_export(directory: Path, entries: int) -> None:
    """The bench's export through the writer: build_export's body before the generator."""
    with _fresh_database(None) as (_, engine):
        fixture = _start_log(engine)
        merchants = _enrol_merchants(fixture, RETURN_MERCHANTS)
        rng = random.Random(SEED)
        remaining = entries - fixture.ledger.size()
        for base in range(0, max(remaining, 0), BENCH_MEMORY_CHUNK_ENTRIES):
            documents = []
            for index in range(base, min(remaining, base + BENCH_MEMORY_CHUNK_ENTRIES)):
                acceptor = seller = rng.choice(merchants)
                if rng.random() >= SAME_MERCHANT_SHARE:
                    while seller == acceptor:
                        seller = rng.choice(merchants)
                body = _return_body(rng, seller, f"R{index:09d}")
                documents.append(
                    fixture.factory.signed(
                        fixture.ring, "return.recorded", acceptor, body, BENCH_NOW
                    )
                )
            for start in range(0, len(documents), BATCH_SIZE):
                _require_appended(fixture.ledger.submit_many(documents[start : start + BATCH_SIZE]))
        trust = trust_from_ledger(fixture.ledger)
        for code, key in sorted(fixture.ring.witnesses.items()):
            run_witness(fixture.ledger, code, key, trust, BENCH_NOW)
        fixture.ledger.export(directory)


def test_generated_export_is_the_writers_byte_for_byte(tmp_path: Path) -> None:
    written, generated = tmp_path / "writer", tmp_path / "generated"
    _writer_export(written, ENTRIES)
    exported = generate_export(generated, ENTRIES, workers=2, chunk_entries=CHUNK_ENTRIES)
    assert exported.size == ENTRIES and exported.cosignatures == 4
    for name in (ENTRIES_FILE, CHECKPOINT_FILE, TRUST_FILE):
        assert (generated / name).read_bytes() == (written / name).read_bytes(), name
    assert sorted(p.name for p in generated.iterdir()) == sorted(p.name for p in written.iterdir())
    assert list((generated / REPORTS_DIR).iterdir()) == []
    assert sum(1 for _ in (generated / ENTRIES_FILE).open("rb")) == ENTRIES
    assert audit_directory(generated).ok
