"""The reconcile bench on a database, at a tiny size: both backends, the table gone after,
the same netting read back by seq and by GROUP BY. Never a speed."""

from __future__ import annotations

import secrets
import uuid
from pathlib import Path

import pytest
from sqlalchemy import text

from ledger.db import make_engine
from ops.bench.append import SCHEMA_PREFIX
from ops.bench.reconcile import bench_reconcile_db
from schemas.errors import ConfigError
from tests.conftest import require_pg
from tests.dbtools import PgServer
from tests.reconciliation.support import shipped_calendar
from tests.reconciliation.test_bench import KEYS

OBLIGATIONS, MEMBERS = 400, 9


def check(report: dict[str, object], backend: str) -> None:
    assert set(report) == KEYS
    assert report["backend"] == backend
    assert (report["obligations"], report["members"]) == (OBLIGATIONS, MEMBERS)
    assert isinstance(report["instructions"], int) and 0 < report["instructions"] < MEMBERS
    for key in ("seconds", "raw_seconds", "ratio"):
        assert isinstance(report[key], float) and report[key] >= 0, key


def test_sqlite_night_in_a_fresh_file(tmp_path: Path) -> None:
    target = tmp_path / "ledger.db"
    check(
        bench_reconcile_db(f"sqlite:///{target}", OBLIGATIONS, MEMBERS, shipped_calendar()),
        "sqlite",
    )
    assert list(tmp_path.iterdir()) == []  # the named file untouched, the temporary gone


def test_postgresql_night_in_a_schema_of_its_own(
    pg_server: PgServer | str, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = require_pg(pg_server)
    token = uuid.uuid4().hex[:12]
    monkeypatch.setattr(secrets, "token_hex", lambda _size: token)
    check(bench_reconcile_db(server.base_url, OBLIGATIONS, MEMBERS), "postgresql")
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


def test_unknown_backend_is_refused() -> None:
    with pytest.raises(ConfigError):
        bench_reconcile_db("mysql://localhost/x", OBLIGATIONS, MEMBERS)
