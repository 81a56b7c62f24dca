"""`alliance bench audit`: builds the bench's export once, audits it clean in a child
process, and verifies the same signatures in the raw loop (a small log: the behaviour,
not the figures)."""

from __future__ import annotations

from pathlib import Path

from ledger.audit import audit_directory
from ledger.export import ENTRIES_FILE
from ops.bench.append import RETURN_MERCHANTS
from ops.bench.audit import bench_audit, raw_verify

ENTRIES = RETURN_MERCHANTS + 40  # the genesis, the merchants, then returns


def test_bench_audit_builds_once_and_measures_both_sides(tmp_path: Path) -> None:
    folder = tmp_path / "export"
    first = bench_audit(ENTRIES, folder)
    assert first["export_reused"] is False
    assert first["entries"] == ENTRIES
    assert first["signatures"] == sum(1 for _ in (folder / ENTRIES_FILE).open("rb")) + 4
    assert float(str(first["ratio"])) > 0
    assert audit_directory(folder).ok
    again = bench_audit(ENTRIES, folder)
    assert again["export_reused"] is True
    signatures, seconds = raw_verify(folder / ENTRIES_FILE)
    assert signatures == first["signatures"] and seconds > 0
