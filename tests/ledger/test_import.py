"""`alliance import`: an export restored into a fresh database is the same ledger (the
exported checkpoint and cosignatures, projections `rebuild` finds identical, an export
byte for byte the same) and the writer appends after it; a tampered export, a wrong
operator key and a database that already holds a ledger are refused, writing nothing.
Both backends."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, func, make_url, select, text

from ledger import audit, restore, store
from ledger.app import Ledger
from ledger.calendar import local_date
from ledger.db import make_engine
from ledger.export import CHECKPOINT_FILE, ENTRIES_FILE, REPORTS_DIR
from ledger.restore import import_export
from ledger.schema import is_initialized, migrate
from ledger.sequencer import lock_log
from ledger.tables import Checkpoint, Cosignature
from ops.world import schema_url
from schemas.entry import parse_time
from schemas.errors import (
    AlreadyInitialisedError,
    BatchFailedError,
    ConfigError,
    LogBusyError,
    OperatorKeyError,
    VerificationError,
)
from signing.keys import PrivateKey, b64encode
from signing.note import parse_note
from tests.conftest import Alliance, require_pg
from tests.dbtools import PgServer, new_schema_name
from tests.reconciliation.nights import closed, make_town


@pytest.fixture
def target_url(db_url: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """A second, empty database on the same backend as ``db_url`` (not migrated: the
    import migrates it)."""
    if db_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'restored.db'}"
        return
    server: PgServer = require_pg(request.getfixturevalue("pg_server"))
    schema = new_schema_name()
    server.admin.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield schema_url(server.base_url, schema)
    finally:
        server.drop(schema)


def _files(directory: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(directory)): path.read_bytes()
        for path in sorted(directory.rglob("*"))
        if path.is_file()
    }


def _operator(alliance: Alliance) -> PrivateKey:
    return alliance.ring.keys["operator"]


def _counts(url: str) -> tuple[int, int, int]:
    """Leaves, checkpoints and cosignatures stored at ``url``."""
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            size = store.head_size(connection)
            count = select(func.count())
            checkpoints = connection.execute(count.select_from(Checkpoint)).scalar_one()
            cosignatures = connection.execute(count.select_from(Cosignature)).scalar_one()
        return size, int(checkpoints), int(cosignatures)
    finally:
        engine.dispose()


def assert_nothing_written(url: str) -> None:
    """No SQLite file, or (PostgreSQL) not even the schema: the one transaction, migration
    included, was rolled back."""
    if url.startswith("sqlite"):
        assert not Path(url.removeprefix("sqlite:///")).exists()
        return
    engine = make_engine(url)
    try:
        assert not is_initialized(engine)
    finally:
        engine.dispose()


def assert_rebuilds_identical(alliance: Alliance, url: str) -> None:
    restored = Ledger.open(url, _operator(alliance), alliance.clock)
    try:
        assert restored.rebuild().identical
    finally:
        restored.close()


def check_restored(alliance: Alliance, exported: Path, url: str, tmp_path: Path) -> None:
    """The database at ``url`` holds the exported ledger, whole, and can go on."""
    restored = Ledger.open(url, _operator(alliance), alliance.clock)
    try:
        note = (exported / CHECKPOINT_FILE).read_text("utf-8")
        signed = restored.signed_checkpoint()
        assert signed.note == note  # the exported note and lines, never re-signed
        assert signed.cosigned_by == ("31", "32", "33", "34")
        rebuilt = restored.rebuild()
        assert rebuilt.identical and rebuilt.differing_tables == []
        assert rebuilt.entries == 12
        again = tmp_path / "again"
        restored.export(again)
        assert _files(again) == _files(exported)
        appended = restored.submit(alliance.enroll_doc())
        assert appended.seq == 12 and not appended.duplicate
        assert restored.size() == 13
    finally:
        restored.close()


def test_import_restores_the_exported_ledger(
    alliance: Alliance, exported: Path, target_url: str, tmp_path: Path
) -> None:
    result = import_export(exported, target_url, _operator(alliance)).wire()
    assert result["size"] == 12 and result["cosignatures"] == 4 and result["nights"] == 0
    assert result["root"] == b64encode(alliance.ledger.signed_checkpoint().root)
    assert set(result) == {"size", "root", "cosignatures", "nights", "seconds", "entries_per_s"}
    assert _counts(target_url) == (12, 1, 4)
    # The stored rows are the exported note's: the operator's line, each witness's line.
    _, signatures = parse_note((exported / CHECKPOINT_FILE).read_text("utf-8"))
    engine = make_engine(target_url)
    try:
        with engine.connect() as connection:
            stored = store.checkpoint_at(connection, 12)
            lines = store.cosignature_lines(connection, 12)
    finally:
        engine.dispose()
    assert stored is not None
    assert sorted(lines) == sorted(s.line for s in signatures if s.name != alliance.config.origin)
    _, own = parse_note(stored.note)
    assert [s.line for s in own] == [signatures[0].line]
    check_restored(alliance, exported, target_url, tmp_path)


def test_a_tampered_export_is_refused_and_writes_nothing(
    alliance: Alliance, exported: Path, target_url: str
) -> None:
    lines = (exported / ENTRIES_FILE).read_bytes().split(b"\n")
    record = json.loads(lines[5])
    record["entry"]["body"]["member"]["name"] = "edited"
    lines[5] = json.dumps(record, sort_keys=True, separators=(",", ":")).encode()
    (exported / ENTRIES_FILE).write_bytes(b"\n".join(lines))
    with pytest.raises(VerificationError, match="does not audit"):
        import_export(exported, target_url, _operator(alliance))
    assert_nothing_written(target_url)


def test_a_wrong_operator_key_is_refused(
    alliance: Alliance, exported: Path, target_url: str
) -> None:
    stranger = PrivateKey.from_seed(b"\x07" * 32)
    with pytest.raises(OperatorKeyError, match="nothing was written"):
        import_export(exported, target_url, stranger)
    assert_nothing_written(target_url)  # although every chunk had been stored


def test_importing_into_a_ledger_is_refused(alliance: Alliance, exported: Path) -> None:
    before = _counts(alliance.url)
    with pytest.raises(AlreadyInitialisedError):
        import_export(exported, alliance.url, _operator(alliance))
    assert _counts(alliance.url) == before


def test_backup_and_restore_drill(
    alliance: Alliance, exported: Path, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Export (the fixture), drop the database, import into it again, compare."""
    url = alliance.url
    alliance.ledger.close()
    alliance.engine.dispose()
    if url.startswith("sqlite"):
        Path(url.removeprefix("sqlite:///")).unlink()
    else:
        server: PgServer = require_pg(request.getfixturevalue("pg_server"))
        # The fixture's schema (schema_url puts it in the search path), dropped whole.
        name = str(make_url(url).query["options"]).removeprefix("-csearch_path=")
        server.drop(name)
        server.admin.execute(f'CREATE SCHEMA "{name}"')
    result = import_export(exported, url, _operator(alliance))
    assert result.size == 12
    check_restored(alliance, exported, url, tmp_path)


def test_a_closed_night_is_restored_byte_for_byte(
    alliance: Alliance, target_url: str, tmp_path: Path
) -> None:
    town = make_town(alliance)
    night = closed(town)
    alliance.cosign()
    directory = tmp_path / "export"
    alliance.ledger.export(directory)
    [report] = (directory / REPORTS_DIR).iterdir()
    result = import_export(directory, target_url, _operator(alliance))
    assert result.nights == 1 and result.size == night + 1
    restored = Ledger.open(target_url, _operator(alliance), alliance.clock)
    try:
        with restored.engine.connect() as connection:
            stored = store.read_report(connection, report.stem)
        assert stored == (night, report.read_bytes())  # the bytes as exported
        assert restored.rebuild().identical
        again = tmp_path / "again"
        restored.export(again)
        assert _files(again) == _files(directory)
    finally:
        restored.close()


def test_a_changed_night_report_is_refused(
    alliance: Alliance, target_url: str, tmp_path: Path
) -> None:
    closed(make_town(alliance))
    alliance.cosign()
    directory = tmp_path / "export"
    alliance.ledger.export(directory)
    [report] = (directory / REPORTS_DIR).iterdir()
    report.write_bytes(report.read_bytes().replace(b"6000", b"6001"))
    with pytest.raises(VerificationError, match="report-mismatch"):
        import_export(directory, target_url, _operator(alliance))
    assert_nothing_written(target_url)


def test_a_spilled_import_restores_the_same_ledger(
    alliance: Alliance, target_url: str, tmp_path: Path
) -> None:
    """An import that pages the replay's growing rows to disk (ledger.spill, what an
    export over AUDIT_SPILL_BYTES_MIN gets) restores what an in-memory one restores,
    night, returns, endorsements and all."""
    town = make_town(alliance)
    night = closed(town)
    alliance.cosign()
    directory = tmp_path / "export"
    alliance.ledger.export(directory)
    result = import_export(directory, target_url, _operator(alliance), spill=True)
    assert result.nights == 1 and result.size == night + 1
    assert_rebuilds_identical(alliance, target_url)


def test_a_dead_database_process_stops_the_audit_and_writes_nothing(
    alliance: Alliance,
    exported: Path,
    target_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The leaves are stored while the audit replays them, by the import's database
    process: its death (here killed after the second hand-over, as the OOM killer
    would) stops the replay at the next hand-overs instead of at the log's end, with a
    typed error, and its one transaction is rolled back: no schema, and no SQLite file
    left behind."""
    monkeypatch.setattr(audit, "INTEGRATE_CHUNK", 2)  # six hand-overs for the 12 entries
    handed: list[int] = []
    original = restore._Load.integrated

    def killing(self: restore._Load, *args: Any) -> None:
        handed.append(len(args[0]))
        original(self, *args)
        if len(handed) == 2:
            for process in list(self.executor._processes.values()):
                os.kill(process.pid, signal.SIGKILL)

    monkeypatch.setattr(restore._Load, "integrated", killing)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))  # where the spill goes
    with pytest.raises(BatchFailedError, match="database process died"):
        import_export(exported, target_url, _operator(alliance), spill=True)
    assert len(handed) < 6  # stopped before the log's end
    assert_nothing_written(target_url)
    assert list(scratch.iterdir()) == []  # the spill file went with the failed audit
    assert multiprocessing.active_children() == []


def test_a_refusal_in_the_database_process_leaves_no_process(
    alliance: Alliance, exported: Path, target_url: str
) -> None:
    """The import's own check under its lock (another import may have won the race past
    the first, read-only check) refuses before the audit starts, with its type, and
    ends its process although no with-block was entered."""
    import_export(exported, target_url, _operator(alliance))
    load = restore._Load(target_url, _operator(alliance))
    with pytest.raises(AlreadyInitialisedError, match="already holds a ledger"), load:
        pytest.fail("the block ran on a database that holds a ledger")
    assert multiprocessing.active_children() == []


def _spy_hand_overs(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The number of lines in each chunk the replay hands the database process."""
    handed: list[int] = []
    original = restore._Load.integrated

    def spying(self: restore._Load, *args: Any) -> None:
        handed.append(len(args[0]))
        original(self, *args)

    monkeypatch.setattr(restore._Load, "integrated", spying)
    return handed


def test_a_finding_after_stored_chunks_rolls_them_back(
    alliance: Alliance, exported: Path, target_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Chunks before the tampered line were already stored in the import's transaction
    when the replay found it: the refusal rolls them back with the schema."""
    monkeypatch.setattr(audit, "INTEGRATE_CHUNK", 2)
    handed = _spy_hand_overs(monkeypatch)
    lines = (exported / ENTRIES_FILE).read_bytes().split(b"\n")
    record = json.loads(lines[9])
    record["signatures"][0]["sig"] = b64encode(b"\x00" * 64)
    lines[9] = json.dumps(record, sort_keys=True, separators=(",", ":")).encode()
    (exported / ENTRIES_FILE).write_bytes(b"\n".join(lines))
    with pytest.raises(VerificationError, match="does not audit"):
        import_export(exported, target_url, _operator(alliance))
    assert sum(handed) >= 8  # four chunks were stored before the finding
    assert_nothing_written(target_url)


def test_a_day_ending_on_a_full_chunk_hands_over_no_empty_chunk(
    alliance: Alliance, target_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A business day that ends exactly where an integration chunk fills: the replay's
    day-end integration has nothing left to integrate, and hands over nothing (an empty
    chunk failed SQLite's executemany)."""
    closed(make_town(alliance))
    alliance.cosign()
    directory = tmp_path / "export"
    alliance.ledger.export(directory)
    days = [
        local_date(parse_time(json.loads(line)["logged"]))
        for line in (directory / ENTRIES_FILE).read_bytes().splitlines()
    ]
    starts = [0] + [seq for seq in range(1, len(days)) if days[seq] > days[seq - 1]]
    assert len(starts) >= 2, "the town's log spans more than one business day"
    chunk = starts[1] - starts[0]  # the first day's entries fill exactly one chunk
    monkeypatch.setattr(audit, "INTEGRATE_CHUNK", chunk)
    handed = _spy_hand_overs(monkeypatch)
    result = import_export(directory, target_url, _operator(alliance))
    assert handed[0] == chunk and 0 not in handed and sum(handed) == len(days)
    assert result.size == len(days)
    assert_rebuilds_identical(alliance, target_url)


def test_long_lines_are_handed_over_in_smaller_chunks(
    alliance: Alliance,
    exported: Path,
    target_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A chunk is handed over once its lines reach IMPORT_CHUNK_BYTES_MAX, however few:
    the import's memory is bounded by bytes, not only by lines (a hostile export's lines
    may be 64 KiB each)."""
    monkeypatch.setattr(audit, "IMPORT_CHUNK_BYTES_MAX", 1)
    handed = _spy_hand_overs(monkeypatch)
    import_export(exported, target_url, _operator(alliance))
    assert handed == [1] * 12
    check_restored(alliance, exported, target_url, tmp_path)


def test_a_failed_import_keeps_a_file_it_did_not_create(
    alliance: Alliance, exported: Path, tmp_path: Path
) -> None:
    """Only a SQLite file the import itself created is removed when it fails."""
    target = tmp_path / "theirs.db"
    target.touch()
    stranger = PrivateKey.from_seed(b"\x07" * 32)
    with pytest.raises(OperatorKeyError):
        import_export(exported, f"sqlite:///{target}", stranger)
    assert target.exists()


def test_an_import_into_a_log_held_by_another_is_refused_at_once(
    alliance: Alliance, exported: Path, target_url: str
) -> None:
    """Another import (or writer) holds the target's log: the import is refused with
    log-busy rather than waiting behind it (for another import, its whole audit), and
    the holder's transaction is untouched."""
    # SQLite: the holder's BEGIN IMMEDIATE is the file's write lock; PostgreSQL: the
    # advisory lock of the schema's log.
    _refused_while_held(alliance, exported, target_url, lock_log, "holds this database's log")


def _refused_while_held(
    alliance: Alliance, exported: Path, url: str, hold: Callable[[Connection], object], match: str
) -> None:
    """While ``hold`` holds something of the target in another connection's transaction,
    the import answers log-busy (leaving no process behind); once freed, it goes in."""
    engine = make_engine(url)
    try:
        with engine.connect() as holder:
            holder.begin()
            hold(holder)
            with pytest.raises(LogBusyError, match=match):
                import_export(exported, url, _operator(alliance))
            assert multiprocessing.active_children() == []
            holder.rollback()
    finally:
        engine.dispose()
    import_export(exported, url, _operator(alliance))  # free again: it goes in
    assert _counts(url) == (12, 1, 4)


def test_a_checkpoint_line_no_key_vouches_for_is_not_stored(
    alliance: Alliance, exported: Path, target_url: str
) -> None:
    """A signature line named after the log's origin with a key hash no key has is
    passed over by a note's verifier (C2SP signed-note), so the export audits; the
    import stores the operator's line that verifies and the witnesses', not those
    bytes."""
    path = exported / CHECKPOINT_FILE
    note = path.read_text("utf-8")
    junk = "\u2014 " + alliance.config.origin + " " + b64encode(b"\xde\xad\xbe\xef" + b"x" * 200)
    path.write_text(note + junk + "\n", "utf-8")
    import_export(exported, target_url, _operator(alliance))
    engine = make_engine(target_url)
    try:
        with engine.connect() as connection:
            stored = store.checkpoint_at(connection, 12)
    finally:
        engine.dispose()
    assert stored is not None and "3q2+7" not in stored.note  # base64 of 0xdeadbeef
    restored = Ledger.open(target_url, _operator(alliance), alliance.clock)
    try:
        assert restored.signed_checkpoint().note == note  # as exported, less the junk
    finally:
        restored.close()


def test_an_import_into_a_missing_schema_is_a_config_error(
    alliance: Alliance, exported: Path, request: pytest.FixtureRequest
) -> None:
    """PostgreSQL: a search_path naming no schema locks nothing (the lock functions take
    NULL); that is the URL's mistake, not a busy log to retry."""
    server: PgServer = require_pg(request.getfixturevalue("pg_server"))
    url = schema_url(server.base_url, new_schema_name())  # never created
    with pytest.raises(ConfigError, match="no schema of the database URL's search_path"):
        import_export(exported, url, _operator(alliance))


def _run_sql(url: str, *statements: str, migrated: bool = True) -> None:
    """Prepare the target: the project's schema first (``migrated``), then ``statements``."""
    engine = make_engine(url)
    try:
        if migrated:
            migrate(engine)
        with engine.begin() as connection:
            for statement in statements:
                connection.execute(text(statement))
    finally:
        engine.dispose()


def test_an_import_behind_a_locked_table_answers_log_busy(
    alliance: Alliance, exported: Path, request: pytest.FixtureRequest
) -> None:
    """PostgreSQL: a table of the target that another session holds locked (its DDL, a
    LOCK TABLE) makes the import answer log-busy after IMPORT_LOCK_WAIT_MS instead of
    waiting behind it for ever; once the lock is gone the import goes in."""
    server: PgServer = require_pg(request.getfixturevalue("pg_server"))
    schema = new_schema_name()
    server.admin.execute(f'CREATE SCHEMA "{schema}"')
    url = schema_url(server.base_url, schema)
    try:
        _run_sql(url, "CREATE TABLE other (x INTEGER)", migrated=False)
        _refused_while_held(
            alliance,
            exported,
            url,
            lambda holder: holder.execute(text("LOCK TABLE other IN ACCESS EXCLUSIVE MODE")),
            "holds a table of this database locked",
        )
    finally:
        server.drop(schema)


def test_rows_planted_beside_an_empty_log_are_refused(
    alliance: Alliance, exported: Path, target_url: str
) -> None:
    """Only an empty database is restored into: a row in any table (here one beside a
    migrated, empty log; a night report would be kept by the append-only triggers)."""
    _run_sql(target_url, "CREATE TABLE planted (x INTEGER)", "INSERT INTO planted VALUES (1)")
    with pytest.raises(AlreadyInitialisedError, match="table planted holds rows"):
        import_export(exported, target_url, _operator(alliance))


def test_a_schema_revision_this_version_does_not_know_is_a_config_error(
    alliance: Alliance, exported: Path, target_url: str
) -> None:
    _run_sql(
        target_url,
        "CREATE TABLE alembic_version (version_num VARCHAR(32))",
        "INSERT INTO alembic_version VALUES ('abc123')",
        migrated=False,
    )
    with pytest.raises(ConfigError, match="not one this version can migrate"):
        import_export(exported, target_url, _operator(alliance))


def test_a_new_sqlite_file_appears_only_when_the_import_commits(
    alliance: Alliance, exported: Path, tmp_path: Path
) -> None:
    """The database is built under a private name in the target's folder and linked to
    the target's name once committed: a refused import leaves the folders as they were
    (the ones it made for the target are removed)."""
    folder = tmp_path / "made" / "folder"
    target = folder / "restored.db"
    tampered = tmp_path / "tampered"
    tampered.mkdir()
    for name, data in _files(exported).items():
        (tampered / name).parent.mkdir(parents=True, exist_ok=True)
        (tampered / name).write_bytes(data)
    (tampered / ENTRIES_FILE).write_bytes((tampered / ENTRIES_FILE).read_bytes()[:-40])
    with pytest.raises(VerificationError):
        import_export(tampered, f"sqlite:///{target}", _operator(alliance))
    assert not (tmp_path / "made").exists()
    folder.mkdir(parents=True)
    with pytest.raises(VerificationError):
        import_export(tampered, f"sqlite:///{target}", _operator(alliance))
    assert list(folder.iterdir()) == []  # a folder it did not make stays
    import_export(exported, f"sqlite:///{target}", _operator(alliance))
    assert [path.name for path in folder.iterdir()] == ["restored.db"]
    assert _counts(f"sqlite:///{target}") == (12, 1, 4)


def test_a_target_made_by_another_process_meanwhile_is_kept(
    alliance: Alliance, exported: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process creates the target while the import runs: the import does not
    replace it (a link never overwrites) and is refused; their file is as they left it."""
    target = tmp_path / "raced.db"
    original = restore._commit_audited

    def racing(*args: Any) -> restore.Imported:
        target.write_bytes(b"theirs")
        return original(*args)

    monkeypatch.setattr(restore, "_commit_audited", racing)
    with pytest.raises(AlreadyInitialisedError, match="created by another process"):
        import_export(exported, f"sqlite:///{target}", _operator(alliance))
    assert target.read_bytes() == b"theirs"
    assert [path.name for path in tmp_path.iterdir() if "raced" in path.name] == ["raced.db"]


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:", "sqlite:///file:x?uri=true"])
def test_an_import_needs_a_sqlite_file_by_path(
    alliance: Alliance, exported: Path, url: str
) -> None:
    with pytest.raises(ConfigError, match="named by its path"):
        import_export(exported, url, _operator(alliance))
