"""`alliance import DIR`: rebuild a database from an export (`alliance export`), the
restore half of a backup drill.

Nothing is trusted that the auditor would not trust: the export is audited
(ledger.audit.audit_directory: every signature, every rule, the tree, the checkpoint and
its cosignatures, each night's report byte for byte) and nothing is committed unless it
passes. The file is read ONCE: the audit's replay hands each integrated chunk of lines,
with the leaf hashes and tiles it computed, to this module's database thread (the audit's
Sink), which stores it while the replay goes on, so the database's work (PostgreSQL's
COPY, indexes and triggers run in the server's process) overlaps the audit's, and no
pass over the whole state is left for the end. Everything
is written in ONE transaction, opened before the audit, so a refusal or a failure leaves
the database as it was (the schema too: migrated inside that transaction):

* the leaves, in seq order, each integration's chunk followed by its tiles and inner
  nodes (as the writer integrates a batch, so the tile-width and nodes-after-full
  triggers hold at every step);
* each night's report, the bytes the replay recomputed and found equal to the exported;
* the exported checkpoint note as it was signed (never re-signed: the operator's
  signature lines only), and each cosignature line as its own row;
* the sealed projections, from the audit's replay of exactly these leaves: with each
  chunk, a version of every row its entries changed, sealed with the operator key (as
  the writer stores a batch's), and at the end the sealed head marker.

The stored bytes are the audited bytes themselves (the lines the replay judged), so a
file changed during the import cannot slip in unaudited bytes.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TypeVar

import orjson
from sqlalchemy import Connection, Engine, RootTransaction

from ledger import merkle, projections, store
from ledger.app import declared_keys, operator_verifier, row_verifier
from ledger.audit import AuditReport, NightReport, audit_directory, read_export_file
from ledger.checking import audited_entry_bytes
from ledger.db import make_engine
from ledger.export import CHECKPOINT_FILE
from ledger.rows import Row
from ledger.schema import is_initialized, migrate_in
from ledger.seal import Sealer
from ledger.sequencer import lock_log
from ledger.state import OPERATOR
from schemas.errors import (
    AlreadyInitialisedError,
    OperatorKeyError,
    TamperedError,
    VerificationError,
    invariant,
)
from schemas.limits import CHECKPOINT_FILE_BYTES_MAX, IMPORT_CHUNKS_AHEAD
from signing.checkpoint import cosignature_timestamp, verify_cosigned_checkpoint
from signing.keys import PrivateKey, b64encode
from signing.note import parse_note, render_note

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
    engine = make_engine(url)
    created = _new_sqlite_file(engine)
    try:
        _refuse_initialised(engine)  # read only: a live writer's lock is not waited for
        with _Load(engine, operator) as load:
            report = audit_directory(directory, spill=spill, sink=load)
            try:
                return _commit_audited(directory, operator, report, load, started)
            finally:
                report.close()  # the spill file, if the audit made one
    except BaseException:
        if created is not None:  # nothing was committed: leave no empty database behind
            engine.dispose()
            _remove_sqlite_file(created)
        raise
    finally:
        engine.dispose()


def _commit_audited(
    directory: Path, operator: PrivateKey, report: AuditReport, load: _Load, started: float
) -> Imported:
    if not report.ok:
        raise VerificationError(
            f"the export does not audit ({len(report.findings)} findings; first: "
            f"{report.findings[0]}): nothing was written"
        )
    _check_operator(report, operator)
    note = read_export_file(directory / CHECKPOINT_FILE, "checkpoint", CHECKPOINT_FILE_BYTES_MAX)
    try:
        split = split_checkpoint(report, note.decode("utf-8"))
    except UnicodeDecodeError as exc:  # it was text when audited
        raise TamperedError("the checkpoint changed since it was audited") from exc
    load.call(lambda connection: load.finish(connection, report, split, operator))
    elapsed = time.perf_counter() - started
    return Imported(report.size, report.root, len(split.cosignatures), load.nights, elapsed)


def _check_operator(report: AuditReport, operator: PrivateKey) -> None:
    """The projections are sealed with this key and the writer appends with it: it must
    be the operator key the log holds current at its head."""
    if operator.key_id not in report.state.current_keys.get(OPERATOR, set()):
        raise OperatorKeyError(
            f"operator key {operator.key_id} is not this log's current operator key; "
            "nothing was written"
        )


def _refuse_initialised(engine: Engine) -> None:
    if is_initialized(engine):
        with engine.connect() as connection:
            _refuse_initialised_in(connection)


def _refuse_initialised_in(connection: Connection) -> None:
    if store.head_size(connection) > 0:
        raise AlreadyInitialisedError("this database already holds a ledger; nothing was written")


def split_checkpoint(report: AuditReport, note: str) -> SplitCheckpoint:
    """The audited checkpoint ``note`` as stored rows: the note with the operator's
    signature lines exactly as exported, and each cosignature that verifies under a
    witness key the log declared (the audit required one from every such witness)."""
    keys = declared_keys(report.state, report.size)
    verifier = operator_verifier(keys, note)
    if verifier is None:
        raise TamperedError("the checkpoint is signed by no operator key of the log")
    checkpoint, cosigned = verify_cosigned_checkpoint(note, verifier, list(keys.witnesses.values()))
    if (checkpoint.size, checkpoint.root) != (report.size, report.root):
        raise TamperedError("the checkpoint is not the audited tree's")
    text, signatures = parse_note(note)
    witnesses = {(w.name, w.key_hash) for w in keys.witnesses.values()}
    signed = [s for s in signatures if s.name == keys.origin]
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
    """The import's one transaction, on one database thread of its own (the audit's Sink):
    the replay hands it each integrated chunk and goes on while it is stored, with at
    most IMPORT_CHUNKS_AHEAD chunks waiting (memory: a few chunks of lines). Only this
    thread touches the connection (SQLite's may not change threads). A failure of a
    store surfaces in the replay at its next hand-over and stops it; leaving the block
    without finish() rolls everything back."""

    def __init__(self, engine: Engine, operator: PrivateKey) -> None:
        self.engine = engine
        self.operator = operator
        self.sealer: Sealer | None = None  # once the genesis leaf is known
        self.executor = ThreadPoolExecutor(1, thread_name_prefix="alliance-import")
        self.waiting: deque[Future[None]] = deque()
        self.connection: Connection | None = None
        self.transaction: RootTransaction | None = None
        self.size = 0
        self.root = merkle.EMPTY_ROOT
        self.genesis_hash = b""
        self.last_logged = ""
        self.nights = 0

    def __enter__(self) -> _Load:
        # Refusals (a ledger already there, the lock held) come now, before the audit.
        try:
            self.call(lambda connection: None)
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
            self.executor.submit(self._close).result()
            self.executor.shutdown()

    def call(self, task: Callable[[Connection], T]) -> T:
        """Run ``task`` on the database thread once every chunk handed over is stored."""
        self._drain()
        return self.executor.submit(self._with_connection, task).result()

    def integrated(
        self,
        lines: list[bytes],
        hashes: list[bytes],
        integration: merkle.Integration,
        reports: list[NightReport],
        changed: list[tuple[str, list[tuple[Row, int]]]],
    ) -> None:
        self.waiting.append(
            self.executor.submit(self._store, lines, hashes, integration, reports, changed)
        )
        while len(self.waiting) > IMPORT_CHUNKS_AHEAD:
            self.waiting.popleft().result()  # its error stops the replay here

    def finish(
        self,
        connection: Connection,
        report: AuditReport,
        split: SplitCheckpoint,
        operator: PrivateKey,
    ) -> None:
        """The rest of the import after a clean audit, then the commit."""
        if (self.size, self.root) != (report.size, report.root):
            raise TamperedError("the stored tree is not the audited tree; nothing was written")
        # The operator signed the checkpoint when it appended the last batch, whose
        # leaves carry that time (the note itself does not say when).
        stored = store.StoredCheckpoint(report.size, report.root, split.note, self.last_logged)
        store.insert_checkpoint(connection, stored)
        for witness, timestamp_s, line in split.cosignatures:
            store.insert_cosignature(connection, report.size, witness, timestamp_s, line)
        # Every row version the replay made is stored (_store); the head marker says so.
        invariant(self.sealer is not None, "the import sealed its projections")
        assert self.sealer is not None
        projections.write_head(connection, self.sealer, report.size)
        invariant(self.transaction is not None, "the import's transaction is open")
        assert self.transaction is not None
        self.transaction.commit()
        # Durable now: the whole ledger, or (had anything failed before) none of it.

    def _drain(self) -> None:
        while self.waiting:
            self.waiting.popleft().result()

    def _with_connection(self, task: Callable[[Connection], T]) -> T:
        if self.connection is None:
            self._open()
        assert self.connection is not None
        return task(self.connection)

    def _open(self) -> None:
        connection = self.engine.connect()
        self.connection = connection
        self.transaction = connection.begin()
        lock_log(connection)  # against a concurrent import or writer, before the schema
        migrate_in(connection)  # rolled back with the rest if the import fails
        _refuse_initialised_in(connection)

    def _store(
        self,
        lines: list[bytes],
        hashes: list[bytes],
        integration: merkle.Integration,
        reports: list[NightReport],
        changed: list[tuple[str, list[tuple[Row, int]]]],
    ) -> None:
        """One integration's leaves, then its tiles and nodes (each tile at the width
        the log's size then implies: the width trigger), the nights it closed, and a
        sealed version of every projection row its entries changed (as the writer
        stores a batch's: the newest version of each row is the replay's)."""
        connection = self.connection
        assert connection is not None
        first = self.size
        rows = [
            _stored_entry(first + offset, line, leaf_hash)
            for offset, (line, leaf_hash) in enumerate(zip(lines, hashes, strict=True))
        ]
        invariant(integration.size == first + len(rows), "an integration skipped leaves")
        store.insert_entries(connection, rows)
        store.write_tiles(connection, integration.tiles)
        store.write_nodes(connection, integration.nodes)
        store.insert_reports(connection, reports)
        if self.sealer is None and rows:
            self.genesis_hash = rows[0].leaf_hash
            self.sealer = Sealer.for_log(self.operator, self.genesis_hash)
        if self.sealer is not None:
            # Sealed with the key given, checked at the end against the log's current
            # operator key (_check_operator): a wrong one is refused and rolled back.
            projections.write_rows(connection, self.sealer, changed)
        # In the transaction (durable only at the commit): the log up to integration.size.
        self.size, self.root = integration.size, integration.root
        if rows:
            self.last_logged = rows[-1].logged
        self.nights += len(reports)

    def _close(self) -> None:
        if self.connection is not None:
            self.connection.close()  # rolls back a transaction not committed
            self.connection = None


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


def _new_sqlite_file(engine: Engine) -> Path | None:
    """The SQLite file of ``engine``, when it does not exist yet (the import creates it,
    and removes it again if it fails)."""
    if engine.dialect.name != "sqlite":
        return None
    database = engine.url.database or ""
    if database in ("", ":memory:") or Path(database).exists():
        return None
    return Path(database)


def _remove_sqlite_file(path: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        with contextlib.suppress(FileNotFoundError):
            Path(f"{path}{suffix}").unlink()
