"""`alliance import DIR`: rebuild a database from an export (`alliance export`), the
restore half of a backup drill.

Nothing is trusted that the auditor would not trust: the export is audited
(ledger.audit.audit_directory: every signature, every rule, the tree, the checkpoint and
its cosignatures, each night's report byte for byte) and nothing is committed unless it
passes. Each file is read ONCE (the checkpoint stored is the text the audit verified,
AuditReport.checkpoint_note): the audit's replay hands each integrated chunk of lines,
with the leaf hashes and tiles it computed and the projection rows it changed, to this
module's database process (the audit's Sink), which stores it while the replay goes on:
the storing's Python (reading each leaf's columns, sealing rows, formatting COPY) and the
database's work run beside the audit's, and no pass over the whole state is left for the
end. Everything is written in ONE transaction, opened before the audit, so a refusal or
a failure leaves the database as it was (the schema too: migrated inside that
transaction; a new SQLite file is built under a private name and linked to its target's
name only once committed, _Staged):

* the leaves, in seq order, each integration's chunk followed by its tiles and inner
  nodes (as the writer integrates a batch, so the tile-width and nodes-after-full
  triggers hold at every step);
* each night's report, the bytes the replay recomputed and found equal to the exported;
* the exported checkpoint note as it was signed (never re-signed: the operator's
  signature line that verifies, alone), and each cosignature line as its own row;
* the sealed projections, from the audit's replay of exactly these leaves: with each
  chunk, a version of every row its entries changed, sealed with the operator key (as
  the writer stores a batch's), and at the end the sealed head marker.

The stored bytes are the audited bytes themselves (the lines the replay judged), so a
file changed during the import cannot slip in unaudited bytes.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import multiprocessing
import os
import tempfile
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TypeVar

import alembic.util
import orjson
from sqlalchemy import Connection, Engine, RootTransaction, inspect, literal, select, table
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from ledger import merkle, projections, store
from ledger.app import declared_keys, operator_verifier, row_verifier
from ledger.audit import AuditReport, NightReport, audit_directory
from ledger.checking import audited_entry_bytes
from ledger.db import make_engine, sqlite_file
from ledger.rows import Row
from ledger.schema import is_initialized, migrate_in
from ledger.seal import Sealer
from ledger.sequencer import try_lock_log
from ledger.state import OPERATOR
from ledger.verifying import exit_with_parent
from schemas.errors import (
    AlreadyInitialisedError,
    BatchFailedError,
    ConfigError,
    LogBusyError,
    OperatorKeyError,
    TamperedError,
    VerificationError,
    invariant,
)
from schemas.limits import IMPORT_CHUNKS_AHEAD, IMPORT_LOCK_WAIT_MS
from signing.checkpoint import cosignature_timestamp, verify_cosigned_checkpoint
from signing.keys import PrivateKey, b64encode
from signing.note import parse_note, render_note, verify_note

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Imported:
    size: int
    root: bytes
    cosignatures: int
    nights: int
    seconds: float  # the whole import: audit, load and projections

    def wire(self) -> dict[str, object]:
        rate = self.size / self.seconds if self.seconds > 0 else 0.0
        return {
            "size": self.size,
            "root": b64encode(self.root),
            "cosignatures": self.cosignatures,
            "nights": self.nights,
            "seconds": round(self.seconds, 3),
            "entries_per_s": round(rate, 1),
        }


@dataclass(frozen=True, slots=True)
class SplitCheckpoint:
    """The exported note split as the database stores it: the operator's note (its
    signature lines only) and one (witness, timestamp, line) row per cosignature."""

    note: str
    cosignatures: list[tuple[str, int, str]]


def import_export(
    directory: Path, url: str, operator: PrivateKey, *, spill: bool | None = None
) -> Imported:
    """Audit the export in ``directory`` and load it into the empty database at ``url``
    as it is audited; commits only when it audits, refuses (writing nothing) an export
    that does not, an operator key that is not the log's, and a database that already
    holds a ledger. ``spill``: page the replay's growing rows to disk (default: above
    AUDIT_SPILL_BYTES_MIN; ledger.spill)."""
    started = time.perf_counter()
    load_url, staged = _stage_sqlite(url)
    engine = make_engine(load_url)
    try:
        _refuse_initialised(engine)  # read only: a live writer's lock is not waited for
        with _Load(load_url, operator) as load:
            report = audit_directory(directory, spill=spill, sink=load)
            try:
                imported = _commit_audited(operator, report, load, started)
            finally:
                report.close()  # the spill file, if the audit made one
        # Committed, and the database process has closed it (_Load's exit).
        if staged is not None:
            _put_in_place(staged)
        return imported
    finally:
        engine.dispose()
        if staged is not None:  # its private name (the target's link stays, if made)
            _remove_sqlite_files(staged.private)
            _remove_empty(staged.folders)


def _commit_audited(
    operator: PrivateKey, report: AuditReport, load: _Load, started: float
) -> Imported:
    if not report.ok:
        raise VerificationError(
            f"the export does not audit ({len(report.findings)} findings; first: "
            f"{report.findings[0]}): nothing was written"
        )
    _check_operator(report, operator)
    invariant(report.checkpoint_note is not None, "a clean audit read the checkpoint")
    assert report.checkpoint_note is not None
    split = split_checkpoint(report, report.checkpoint_note)
    nights = load.finish(report, split)
    elapsed = time.perf_counter() - started
    return Imported(report.size, report.root, len(split.cosignatures), nights, elapsed)


def _check_operator(report: AuditReport, operator: PrivateKey) -> None:
    """The projections are sealed with this key and the writer appends with it: it must
    be the operator key the log holds current at its head."""
    if operator.key_id not in report.state.current_keys.get(OPERATOR, set()):
        raise OperatorKeyError(
            f"operator key {operator.key_id} is not this log's current operator key; "
            "nothing was written"
        )


def _refuse_initialised(engine: Engine) -> None:
    """A ledger already there is refused before the audit starts. PostgreSQL only: it
    reads without the log's lock, while every SQLite transaction of the project's
    engines takes the file's write lock (BEGIN IMMEDIATE); on SQLite the check under
    that lock (_open, not waited for) is the first."""
    if engine.dialect.name == "postgresql" and is_initialized(engine):
        with engine.connect() as connection:
            _refuse_initialised_in(connection)


def _refuse_initialised_in(connection: Connection) -> None:
    if store.head_size(connection) > 0:
        raise AlreadyInitialisedError("this database already holds a ledger; nothing was written")


def _refuse_nonempty(connection: Connection) -> None:
    """An import restores into an empty database: a ledger is refused, and so is a row
    in any other table (rows planted beside an empty log, which the append-only
    triggers would keep, or another program's database given by mistake)."""
    present = set(inspect(connection).get_table_names())
    if "log_entries" in present:
        _refuse_initialised_in(connection)
    for name in sorted(present - {"alembic_version"}):  # any table: another program's too
        if connection.execute(select(literal(1)).select_from(table(name)).limit(1)).first():
            raise AlreadyInitialisedError(
                f"this database is not empty (table {name} holds rows); nothing was written"
            )


def split_checkpoint(report: AuditReport, note: str) -> SplitCheckpoint:
    """The audited checkpoint ``note`` as stored rows: the note with the operator's
    signature line exactly as exported (the one that verifies; no other), and each
    cosignature that verifies under a witness key the log declared (the audit required
    one from every such witness)."""
    keys = declared_keys(report.state, report.size)
    verifier = operator_verifier(keys, note)
    if verifier is None:
        raise TamperedError("the checkpoint is signed by no operator key of the log")
    checkpoint, cosigned = verify_cosigned_checkpoint(note, verifier, list(keys.witnesses.values()))
    if (checkpoint.size, checkpoint.root) != (report.size, report.root):
        raise TamperedError("the checkpoint is not the audited tree's")
    text, signatures = parse_note(note)
    witnesses = {(w.name, w.key_hash) for w in keys.witnesses.values()}
    # The operator's line that verifies, alone: any other line named after the origin
    # (an unknown key hash, which a note's verifier passes over) is bytes no key
    # vouches for, and is not stored.
    _, signed = verify_note(note, [verifier])
    rows = [
        (s.name, cosignature_timestamp(s), s.line)
        for s in signatures
        if (s.name, s.key_hash) in witnesses and s.name in cosigned
    ]
    operator_note = render_note(text, signed)
    stored = store.StoredCheckpoint(report.size, report.root, operator_note, "")
    if row_verifier(keys, stored) is None:
        raise TamperedError("the operator's signature lines alone do not verify")
    return SplitCheckpoint(operator_note, rows)


class _Load:
    """The import's one transaction, held by one database process of its own (the
    audit's Sink): the replay hands it each integrated chunk and goes on while it is
    stored, with at most IMPORT_CHUNKS_AHEAD chunks waiting (memory: a few chunks of
    lines). A process, not a thread: the storing is Python too (reading each leaf's
    columns, sealing rows, formatting COPY), and a thread of the replay's process held
    the interpreter lock for as long again as the replay itself (100 k entries: 10 s of
    a 22 s import). A failure of a store surfaces in the replay at its next hand-over
    and stops it; leaving the block without finish() rolls everything back (and a
    process that dies takes its uncommitted transaction with it)."""

    def __init__(self, url: str, operator: PrivateKey) -> None:
        self.url = url
        self.operator = operator
        # spawn: a forked child would inherit the parent's threads' locks mid-state.
        self.executor = ProcessPoolExecutor(
            1,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=exit_with_parent,
            initargs=(os.getpid(),),
        )
        self.waiting: deque[Future[None]] = deque()
        self.sealer: Sealer | None = None  # sent with the first chunk (its genesis leaf)

    def __enter__(self) -> _Load:
        # Refusals (a ledger already there, the lock held) come now, before the audit.
        try:
            _outcome(self._submit(_open, self.url))
        except BaseException as exc:
            self.__exit__(type(exc), exc, exc.__traceback__)  # no with-block to close it
            raise
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        try:
            if error is None:
                self._drain()
            else:  # already failing: what the stores raise adds nothing
                with contextlib.suppress(Exception):
                    self._drain()
        finally:
            with contextlib.suppress(Exception):  # a dead process took its transaction
                self.executor.submit(_close).result()
            self.executor.shutdown()

    def integrated(
        self,
        lines: list[bytes],
        hashes: list[bytes],
        integration: merkle.Integration,
        reports: list[NightReport],
        changed: list[tuple[str, list[tuple[Row, int]]]],
    ) -> None:
        sealer = None
        if self.sealer is None and hashes:
            sealer = self.sealer = Sealer.for_log(self.operator, hashes[0])
        # As plain tuples: a NamedTuple pickles through Python code (2.3 us a row, and as
        # much again to unpickle; 1 us and 0.4 us plain), about 12 rows an entry.
        values: list[tuple[str, list[tuple[tuple[object, ...], int]]]] = [
            (name, [(row[:], version) for row, version in rows]) for name, rows in changed if rows
        ]
        chunk = _Chunk(lines, hashes, integration, reports, values, sealer)
        self.waiting.append(self._submit(_store, chunk))
        while len(self.waiting) > IMPORT_CHUNKS_AHEAD:
            _outcome(self.waiting.popleft())  # its error stops the replay here

    def finish(self, report: AuditReport, split: SplitCheckpoint) -> int:
        """The rest of the import after a clean audit, then the commit; the nights."""
        self._drain()
        return _outcome(self._submit(_finish, report.size, report.root, split), finishing=True)

    def _drain(self) -> None:
        while self.waiting:
            _outcome(self.waiting.popleft())

    def _submit(self, function: Callable[..., T], *arguments: object) -> Future[T]:
        """A task for the database process; a process found dead already (the pool
        refuses new work) is the same BatchFailedError as one that dies at its task."""
        try:
            return self.executor.submit(function, *arguments)
        except BrokenProcessPool as exc:
            raise _died(exc) from exc


def _outcome(future: Future[T], *, finishing: bool = False) -> T:
    """The database process's answer; its death is a BatchFailedError (its connection
    went with it, and the server rolled the transaction back; ``finishing``: unless it
    died right after its commit)."""
    try:
        return future.result()
    except BrokenProcessPool as exc:
        raise _died(exc, finishing=finishing) from exc


def _died(exc: BrokenProcessPool, *, finishing: bool = False) -> BatchFailedError:
    if finishing:  # a new SQLite file is never put in place then (_put_in_place)
        return BatchFailedError(
            f"the import's database process died as it committed ({exc}); a PostgreSQL "
            "schema may hold the ledger: `alliance doctor` tells"
        )
    return BatchFailedError(f"the import's database process died ({exc}); nothing was committed")


@dataclass(frozen=True, slots=True)
class _Chunk:
    """What the replay hands the database process at one integration (audit.Sink)."""

    lines: list[bytes]
    hashes: list[bytes]
    integration: merkle.Integration
    reports: list[NightReport]
    changed: list[tuple[str, list[tuple[tuple[object, ...], int]]]]  # (values, version)
    sealer: Sealer | None  # with the first chunk only


# --- the database process ------------------------------------------------------------


@dataclass
class _Held:
    """The database process's import: its connection, transaction and progress."""

    engine: Engine
    connection: Connection
    transaction: RootTransaction
    sealer: Sealer | None = None
    size: int = 0
    root: bytes = merkle.EMPTY_ROOT
    last_logged: str = ""
    nights: int = 0


SQLITE_BUSY, SQLITE_LOCKED = 5, 6  # primary result codes (sqlite.org/rescode.html)
_BUSY = "another writer or import holds this database's log; nothing was written"
LOCK_NOT_AVAILABLE = "55P03"  # PostgreSQL's SQLSTATE when lock_timeout ran out
_HELD: list[_Held] = []  # in the database process: the one import it holds


def _held() -> _Held:
    invariant(len(_HELD) == 1, "the import's database process holds no transaction")
    return _HELD[0]


def _open(url: str) -> None:
    engine = make_engine(url)
    connection = engine.connect()
    driver = connection.connection.driver_connection
    if engine.dialect.name == "sqlite" and driver is not None:
        driver.execute("PRAGMA busy_timeout=0")  # BEGIN IMMEDIATE is the lock: not waited for
    try:
        transaction = connection.begin()
    except OperationalError as exc:
        connection.close()
        code = getattr(exc.orig, "sqlite_errorcode", None)
        if code is not None and code & 0xFF in (SQLITE_BUSY, SQLITE_LOCKED):
            raise LogBusyError(_BUSY) from exc  # another writer holds the file's lock
        raise
    _HELD.append(_Held(engine, connection, transaction))
    # Against a concurrent import or writer, before the schema; refused at once, not
    # waited for (behind another import, the wait could be its whole audit).
    if not try_lock_log(connection):
        raise LogBusyError(_BUSY)
    postgresql = engine.dialect.name == "postgresql"
    if postgresql:  # a table another session holds locked is not waited for either
        connection.exec_driver_sql(f"SET LOCAL lock_timeout = {IMPORT_LOCK_WAIT_MS}")
    try:
        _refuse_nonempty(connection)  # before the schema is touched
        migrate_in(connection)  # rolled back with the rest if the import fails
    except alembic.util.CommandError as exc:  # a revision this version does not know
        raise ConfigError(
            f"the database's schema is not one this version can migrate ({exc}); "
            "nothing was written"
        ) from exc
    except OperationalError as exc:
        if getattr(exc.orig, "sqlstate", None) == LOCK_NOT_AVAILABLE:
            raise LogBusyError(
                "another session holds a table of this database locked; nothing was written"
            ) from exc
        raise
    if postgresql:  # the tables are this transaction's own from here: no limit needed
        connection.exec_driver_sql("SET LOCAL lock_timeout = 0")


def _store(chunk: _Chunk) -> None:
    """One integration's leaves, then its tiles and nodes (each tile at the width the
    log's size then implies: the width trigger), the nights it closed, and a sealed
    version of every projection row its entries changed (as the writer stores a
    batch's: the newest version of each row is the replay's)."""
    held = _held()
    connection = held.connection
    first = held.size
    rows = [
        _stored_entry(first + offset, line, leaf_hash)
        for offset, (line, leaf_hash) in enumerate(zip(chunk.lines, chunk.hashes, strict=True))
    ]
    invariant(chunk.integration.size == first + len(rows), "an integration skipped leaves")
    for row in rows:  # the hashes the tiles were built from are the stored leaves'
        invariant(merkle.leaf_hash(row.leaf) == row.leaf_hash, f"seq {row.seq}: leaf hash")
    store.insert_entries(connection, rows)
    store.write_tiles(connection, chunk.integration.tiles)
    store.write_nodes(connection, chunk.integration.nodes)
    store.insert_reports(connection, chunk.reports)
    if chunk.sealer is not None:
        held.sealer = chunk.sealer
    if chunk.changed:
        invariant(held.sealer is not None, "projection rows came before the genesis leaf")
        assert held.sealer is not None
        # Sealed with the key given, checked at the end against the log's current
        # operator key (_check_operator): a wrong one is refused and rolled back.
        projections.write_rows(connection, held.sealer, chunk.changed)
    # In the transaction (durable only at the commit): the log up to integration.size.
    held.size, held.root = chunk.integration.size, chunk.integration.root
    if rows:
        held.last_logged = rows[-1].logged
    held.nights += len(chunk.reports)


def _finish(size: int, root: bytes, split: SplitCheckpoint) -> int:
    held = _held()
    connection = held.connection
    if (held.size, held.root) != (size, root):
        raise TamperedError("the stored tree is not the audited tree; nothing was written")
    # The operator signed the checkpoint when it appended the last batch, whose leaves
    # carry that time (the note itself does not say when).
    stored = store.StoredCheckpoint(size, root, split.note, held.last_logged)
    store.insert_checkpoint(connection, stored)
    for witness, timestamp_s, line in split.cosignatures:
        store.insert_cosignature(connection, size, witness, timestamp_s, line)
    # Every row version the replay made is stored (_store); the head marker says so.
    invariant(held.sealer is not None, "the import sealed its projections")
    assert held.sealer is not None
    projections.write_head(connection, held.sealer, size)
    held.transaction.commit()
    # Durable now: the whole ledger, or (had anything failed before) none of it.
    return held.nights


def _close() -> None:
    while _HELD:
        held = _HELD.pop()
        held.connection.close()  # rolls back a transaction not committed
        held.engine.dispose()


def _stored_entry(seq: int, leaf: bytes, leaf_hash: bytes) -> store.StoredEntry:
    """The row the writer stored for ``leaf`` (the columns the triggers compare with it).
    The replay judged these very bytes (a canonical record, admitted by the rules), so a
    plain JSON read suffices: the full reading (ledger.state.leaf_context) was half of
    the load's time."""
    record = orjson.loads(leaf)
    entry = record["entry"]
    invariant(record["seq"] == seq, f"line {seq + 1} reached the store out of order")
    return store.StoredEntry(
        seq=seq,
        entry_id=str(entry["id"]),
        entry_hash=hashlib.sha256(audited_entry_bytes(leaf)).digest(),
        kind=str(entry["kind"]),
        signer=str(entry["signer"]),
        logged=str(record["logged"]),
        leaf=leaf,
        leaf_hash=leaf_hash,
    )


@dataclass(frozen=True, slots=True)
class _Staged:
    """A new SQLite database, built under a private name beside its target and linked
    to the target's name only once committed: a failed import leaves no file behind,
    and never removes one it did not make."""

    target: Path
    private: Path
    folders: tuple[Path, ...]  # the folders made for it, deepest first


def _stage_sqlite(url: str) -> tuple[str, _Staged | None]:
    """The URL to load into, and the staging of a SQLite target that does not exist
    yet (None: PostgreSQL, or the user's existing file, loaded into as it is)."""
    target = sqlite_file(url)  # a ConfigError if it is no database URL
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return url, None
    if target is None:
        raise ConfigError("an import restores into a SQLite file named by its path")
    if target.exists():
        return url, None
    folders = tuple(itertools.takewhile(lambda f: not f.exists(), target.parents))
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        descriptor, name = tempfile.mkstemp(
            prefix=f".{target.name}.", suffix=".importing", dir=target.parent
        )
        os.close(descriptor)
        os.chmod(name, 0o644)  # as SQLite would have made it (mkstemp: 0600)
    except OSError as exc:
        raise ConfigError(f"cannot create {target}: {exc.strerror}") from exc
    private = parsed.set(database=name).render_as_string(hide_password=False)
    return private, _Staged(target, Path(name), folders)


def _put_in_place(staged: _Staged) -> None:
    """Link the committed, closed database to its target's name; a file another
    process made there meanwhile is kept, and this import refused."""
    wal = Path(f"{staged.private}-wal")
    # Closed by its last connection, SQLite moved the log's pages into the file.
    invariant(not wal.exists() or wal.stat().st_size == 0, "the import's WAL outlived it")
    try:
        os.link(staged.private, staged.target)
    except FileExistsError as exc:
        raise AlreadyInitialisedError(
            f"{staged.target} was created by another process during the import; "
            "nothing was written to it"
        ) from exc
    except OSError as exc:
        raise ConfigError(f"cannot name the database {staged.target}: {exc.strerror}") from exc
    directory = os.open(staged.target.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
    # Durable: the restored ledger under the target's name.


def _remove_empty(folders: Sequence[Path]) -> None:
    """Remove the folders an import made for a target it did not create, deepest first,
    as long as each is empty (another process may have put something there since)."""
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:
            return  # not empty (or gone): it and its parents stay


def _remove_sqlite_files(path: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        with contextlib.suppress(FileNotFoundError):
            Path(f"{path}{suffix}").unlink()
