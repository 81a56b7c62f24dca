"""`alliance bench append` at a tiny size: the report's shape, never its speed."""

from __future__ import annotations

import secrets
import uuid
from pathlib import Path

import pytest
from sqlalchemy import text

from ledger.db import make_engine
from ops.bench.append import BATCH_SIZE, SCHEMA_PREFIX, bench_append
from ops.bench.memory import bench_memory
from ops.bench.proofs import bench_proofs
from schemas.errors import ConfigError
from tests.conftest import require_pg
from tests.dbtools import PgServer

ENTRIES = 6
KEYS = {
    "bench",
    "backend",
    "kind",
    "entries",
    "batch_size",
    "entries_per_s",
    "raw_limit_per_s",
    "ratio",
    "seconds",
    "raw_seconds",
}


def check_report(report: dict[str, object], backend: str, kind: str) -> None:
    assert set(report) == KEYS
    assert report["bench"] == "append"
    assert report["backend"] == backend
    assert report["kind"] == kind
    assert report["entries"] == ENTRIES
    assert report["batch_size"] == BATCH_SIZE
    for key in ("entries_per_s", "raw_limit_per_s", "ratio", "seconds", "raw_seconds"):
        value = report[key]
        assert isinstance(value, float)
        assert value > 0, key


@pytest.mark.parametrize("kind", ["member", "return"])
def test_sqlite_bench_reports_a_positive_ratio(kind: str) -> None:
    check_report(bench_append(None, entries=ENTRIES, kind=kind), "sqlite", kind)


def test_a_sqlite_url_gets_a_fresh_file_next_to_it(tmp_path: Path) -> None:
    target = tmp_path / "ledger.db"
    report = bench_append(f"sqlite:///{target}", entries=ENTRIES)
    check_report(report, "sqlite", "member")
    assert not target.exists()  # the named database is never touched
    assert list(target.parent.iterdir()) == []  # and the temporary one is gone


def test_postgresql_bench_uses_a_schema_of_its_own_and_drops_it(
    pg_server: PgServer | str, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = require_pg(pg_server)
    token = uuid.uuid4().hex[:12]
    monkeypatch.setattr(secrets, "token_hex", lambda _size: token)
    report = bench_append(server.base_url, entries=ENTRIES, kind="member")
    check_report(report, "postgresql", "member")
    engine = make_engine(server.base_url)
    try:
        with engine.connect() as connection:
            left = connection.execute(
                text("SELECT count(*) FROM information_schema.schemata WHERE schema_name = :name"),
                {"name": SCHEMA_PREFIX + token},
            ).scalar()
        assert left == 0
    finally:
        engine.dispose()


def test_unknown_kind_and_backend_are_refused() -> None:
    with pytest.raises(ConfigError):
        bench_append(None, entries=ENTRIES, kind="advance")
    with pytest.raises(ConfigError):
        bench_append("mysql://localhost/x", entries=ENTRIES)


def test_the_proofs_bench_runs_and_verifies_what_it_times() -> None:
    report = bench_proofs(entries=3000, samples=50)
    assert report["entries"] == 3000 and report["verified_proofs"] > 0
    assert 0 < float(report["inclusion_p50_us"]) <= float(report["inclusion_p99_us"])  # type: ignore[arg-type]


def test_the_memory_bench_restarts_a_writer_on_the_same_log() -> None:
    report = bench_memory(None, entries=300)
    assert report["entries"] == 300
    assert float(report["writer_rss_mb"]) > 0 and float(report["restart_submit_s"]) > 0  # type: ignore[arg-type]
