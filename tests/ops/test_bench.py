"""The benches at a tiny size: the reports' shape and the raw loop's work, never a speed."""

from __future__ import annotations

import base64
import copy
import hashlib
import secrets
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import inspect, select, text

from ledger import merkle, store
from ledger.db import make_engine
from ops.bench.append import (
    BATCH_SIZE,
    BENCH_NOW,
    RATIO_DIGITS,
    RAW_TABLE,
    SCHEMA_PREFIX,
    Fixture,
    _fresh_database,
    _member_submissions,
    _raw_loop,
    _raw_table,
    _start_log,
    bench_append,
    raw_rows,
)
from ops.bench.http import bench_http
from ops.bench.machine import machine
from ops.bench.memory import bench_memory
from ops.bench.proofs import bench_proofs
from schemas.canonical import canonical_reference, parse_json
from schemas.entry import format_utc
from schemas.errors import ConfigError, SignatureError
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
    "stages_us_per_entry",
    "raw_us_per_entry",
    "rules_only_ratio_max",
    "machine",
}
STAGES = {
    "prepare",
    "prefetch",
    "verdicts",
    "rules",
    "records",
    "log_write",
    "projections",
    "commit",
    "batch_other",
    "wal_copy",
}
MACHINE_KEYS = {"cores", "cpu_model", "python", "date"}
RAW_ENTRIES = 5


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
    check_stages(report)
    check_machine(report)


def check_stages(report: dict[str, object]) -> None:
    """Where the writer's time went, per entry: every stage measured, the rules and
    the log's writes above zero, and the bound the rules set is the raw loop's time
    over theirs (so at least the measured ratio: every other stage only adds)."""
    stages = report["stages_us_per_entry"]
    assert isinstance(stages, dict) and set(stages) == STAGES
    assert all(isinstance(value, float) and value >= 0 for value in stages.values())
    assert stages["rules"] > 0 and stages["log_write"] > 0 and stages["commit"] > 0
    raw_us = report["raw_us_per_entry"]
    assert isinstance(raw_us, float) and raw_us > 0
    bound = report["rules_only_ratio_max"]
    assert isinstance(bound, float)
    assert abs(bound - raw_us / stages["rules"]) <= 0.01 * bound + 1e-3
    if "ratio" in report:  # the rules run inside the library's time: never above the bound
        assert float(str(report["ratio"])) <= bound + 10.0**-RATIO_DIGITS


def check_machine(report: dict[str, object]) -> None:
    """The machine and the run's UTC date and time, within a minute of now."""
    host = report["machine"]
    assert isinstance(host, dict) and set(host) == MACHINE_KEYS
    assert isinstance(host["cores"], int) and host["cores"] >= 1
    assert isinstance(host["cpu_model"], str) and host["cpu_model"]
    assert isinstance(host["python"], str) and host["python"].startswith("3.")
    when = datetime.fromisoformat(str(host["date"]))
    assert when.utcoffset() == timedelta(0)
    now = datetime.fromisoformat(str(machine()["date"]))
    assert timedelta(0) <= now - when < timedelta(minutes=1)


@pytest.mark.parametrize("kind", ["member", "return"])
def test_sqlite_bench_reports_a_positive_ratio(kind: str) -> None:
    check_report(bench_append(None, entries=ENTRIES, kind=kind), "sqlite", kind)


SUSTAINED_KEYS = {
    "preload",
    "sustained_entries_per_s",
    "sustained_raw_limit_per_s",
    "sustained_ratio",
    "sustained_vs_empty",
    "sustained",
}


@pytest.mark.parametrize("kind", ["member", "return"])
def test_a_preload_measures_again_on_the_grown_log(kind: str) -> None:
    """--preload: the entries are appended untimed, then the same measure again; every
    phase's entries are checked in the log (bench_append raises otherwise)."""
    report = bench_append(None, entries=ENTRIES, kind=kind, preload=3 * ENTRIES)
    check_report({k: v for k, v in report.items() if k not in SUSTAINED_KEYS}, "sqlite", kind)
    assert set(report) == KEYS | SUSTAINED_KEYS
    assert report["preload"] == 3 * ENTRIES
    grown = report["sustained"]
    assert isinstance(grown, dict)
    check_stages(grown)
    for key in SUSTAINED_KEYS - {"preload", "sustained"}:
        value = report[key]
        assert isinstance(value, float) and value > 0, key
    ratio, sustained = float(report["ratio"]), float(report["sustained_ratio"])  # type: ignore[arg-type]
    # Each figure is rounded to RATIO_DIGITS: the quotient of the unrounded ratios lies
    # within what the rounded ones allow (a small ratio under load makes that wide).
    half = 0.5 * 10.0**-RATIO_DIGITS
    low, high = (sustained - half) / (ratio + half), (sustained + half) / (ratio - half)
    assert low - half <= float(report["sustained_vs_empty"]) <= high + half  # type: ignore[arg-type]


def test_a_postgresql_preload_grows_the_log(pg_url: str) -> None:
    report = bench_append(pg_url, entries=ENTRIES, kind="return", preload=2 * ENTRIES)
    assert report["backend"] == "postgresql" and report["preload"] == 2 * ENTRIES
    assert float(report["sustained_entries_per_s"]) > 0  # type: ignore[arg-type]


def test_a_negative_preload_is_refused() -> None:
    with pytest.raises(ConfigError):
        bench_append(None, entries=ENTRIES, preload=-1)


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
    check_machine(report)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_the_proofs_bench_reads_proofs_from_a_database(backend: str, pg_url: str) -> None:
    """Proofs served through ledger.store.DbTiles, verified after timing (both backends)."""
    db = "sqlite:///" if backend == "sqlite" else pg_url
    report = bench_proofs(entries=70_000, samples=20, db=db)
    assert (report["backend"], report["verified_proofs"]) == (backend, 20 + 20)
    assert float(report["inclusion_p50_us"]) > 0  # type: ignore[arg-type]


def test_the_memory_bench_restarts_a_writer_on_the_same_log() -> None:
    report = bench_memory(None, entries=300)
    assert report["entries"] == 300
    assert float(report["writer_rss_mb"]) > 0 and float(report["restart_submit_s"]) > 0  # type: ignore[arg-type]
    check_machine(report)


# --- the raw loop ----------------------------------------------------------------------


@pytest.fixture
def sqlite_log() -> Iterator[tuple[str, Fixture]]:
    with _fresh_database(None) as (backend, engine):
        yield backend, _start_log(engine)


def raw_keys(fixture: Fixture) -> dict[str, bytes]:
    return {key.key_id: key.public.raw for key in fixture.ring.keys.values()}


def forged(document: dict[str, Any]) -> dict[str, Any]:
    """``document`` with one bit of its signature flipped (still 64 bytes, valid base64)."""
    changed = copy.deepcopy(document)
    raw = bytearray(base64.b64decode(changed["signatures"][0]["sig"]))
    raw[10] ^= 1
    changed["signatures"][0]["sig"] = base64.b64encode(bytes(raw)).decode("ascii")
    return changed


def test_the_raw_loop_refuses_a_signature_that_does_not_verify(
    sqlite_log: tuple[str, Fixture],
) -> None:
    _, fixture = sqlite_log
    documents = _member_submissions(fixture, RAW_ENTRIES)
    keys, logged = raw_keys(fixture), format_utc(BENCH_NOW)
    assert len(raw_rows(0, logged, documents, keys)) == RAW_ENTRIES
    with pytest.raises(SignatureError, match="entry 3 "):
        raw_rows(0, logged, [*documents[:3], forged(documents[3]), documents[4]], keys)
    altered = copy.deepcopy(documents[0])
    altered["entry"]["body"]["member"]["name"] += "!"  # the entry changed under its signature
    with pytest.raises(SignatureError):
        raw_rows(0, logged, [altered], keys)


def test_the_raw_loop_rows_are_the_library_rows_of_the_same_entries(
    sqlite_log: tuple[str, Fixture],
) -> None:
    """The raw leaf is the entry's canonical bytes, exactly those inside the library's
    leaf (the record around them) and under the library's entry hash; its leaf hash is
    that of those bytes; the other columns are the library's."""
    _, fixture = sqlite_log
    documents = _member_submissions(fixture, RAW_ENTRIES)
    rows = raw_rows(0, format_utc(BENCH_NOW), documents, raw_keys(fixture))
    results = fixture.ledger.submit_many(documents)
    with fixture.engine.connect() as connection:
        for row, result in zip(rows, results, strict=True):
            assert not isinstance(result, Exception)
            stored = store.read_entry(connection, result.seq)
            assert stored is not None
            _, entry_id, entry_hash, kind, signer, logged, leaf, leaf_hash = row
            assert (entry_id, kind, signer, logged) == (
                stored.entry_id,
                stored.kind,
                stored.signer,
                stored.logged,
            )
            assert stored.leaf.startswith(b'{"entry":' + leaf + b',"logged":')
            assert hashlib.sha256(leaf).digest() == stored.entry_hash
            assert leaf == canonical_reference(parse_json(stored.leaf)["entry"])
            assert leaf_hash == entry_hash == merkle.leaf_hash(leaf)


def test_the_raw_table_has_the_log_columns_and_no_key_index_or_constraint() -> None:
    engine = make_engine("sqlite://")
    try:
        _raw_table().metadata.create_all(engine)
        found = inspect(engine)
        assert [column["name"] for column in found.get_columns(RAW_TABLE)] == list(
            store.ENTRY_COLUMNS
        )
        assert found.get_pk_constraint(RAW_TABLE)["constrained_columns"] == []
        assert found.get_indexes(RAW_TABLE) == []
        assert found.get_unique_constraints(RAW_TABLE) == []
    finally:
        engine.dispose()


def check_raw_insert(backend: str, fixture: Fixture) -> None:
    """Two batches through the driver's bulk insert land as the rows built, in order,
    and the table is gone after."""
    documents = _member_submissions(fixture, 2 * RAW_ENTRIES)
    with _raw_loop(fixture, backend) as raw:
        for half in (documents[:RAW_ENTRIES], documents[RAW_ENTRIES:]):
            raw.check(half)
        built = list(raw.pending)
        raw.insert()
        assert raw.size == len(documents) and raw.pending == []
        table = _raw_table()
        with fixture.engine.connect() as connection:
            stored = connection.execute(select(table).order_by(table.c.seq)).all()
        assert [tuple(row) for row in stored] == built
    assert not inspect(fixture.engine).has_table(RAW_TABLE)


def test_the_raw_loop_writes_its_rows_through_sqlite3(sqlite_log: tuple[str, Fixture]) -> None:
    check_raw_insert(*sqlite_log)


def test_the_raw_loop_copies_its_rows_into_postgresql(pg_server: PgServer | str) -> None:
    server = require_pg(pg_server)
    with _fresh_database(server.base_url) as (backend, engine):
        check_raw_insert(backend, _start_log(engine))


@pytest.mark.parametrize("batch", [False, True])
def test_the_http_bench_appends_over_a_real_server(batch: bool) -> None:
    """`alliance serve` in its own process, a load generator in another, the library's
    rate in the same run; every entry appended (no failures)."""
    report = bench_http(None, clients=4, entries=60, batch=batch)
    assert (report["mode"], report["entries"], report["failures"]) == (
        "batch" if batch else "single",
        60,
        0,
    )
    assert float(report["ratio"]) > 0  # type: ignore[arg-type]
    assert 0 < float(report["p50_ms"]) <= float(report["p99_ms"])  # type: ignore[arg-type]
    check_machine(report)
