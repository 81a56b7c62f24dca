"""`alliance import DIR`: rebuild a database from an export (`alliance export`), the
restore half of a backup drill.

Nothing is trusted that the auditor would not trust: the export is audited first
(ledger.audit.audit_directory: every signature, every rule, the tree, the checkpoint and
its cosignatures, each night's report byte for byte) and refused, with nothing written,
unless it passes. Then, in ONE transaction, so a failure leaves the database as it was:

* the leaves, in seq order and in chunks of IMPORT_CHUNK_ENTRIES, each chunk followed
  by its tiles and inner nodes (ledger.merkle.integrate, as the writer integrates a
  batch, so the tile-width and nodes-after-full triggers hold at every step);
* the exported checkpoint note as it was signed (never re-signed: the operator's
  signature lines only), and each cosignature line as its own row;
* each night's report, the bytes as exported (checked against its closing entry);
* the sealed projections, from the audit's replay of exactly these leaves, sealed with
  the operator key as `alliance rebuild` seals them (projections.write_all).

The file is read again for the load, so it could have changed since the audit: the
load's tree must end at the audited size and root, and every report must match its
closing entry's counts and roots, or the transaction is rolled back.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import orjson
from sqlalchemy import Connection, Engine

from ledger import merkle, projections, store
from ledger.app import declared_keys, operator_verifier, row_verifier
from ledger.audit import (
    AuditReport,
    Overlong,
    audit_directory,
    open_export_file,
    read_export_file,
    read_lines,
)
from ledger.checking import audited_entry_bytes
from ledger.collector import collection_deferred
from ledger.db import make_engine
from ledger.export import CHECKPOINT_FILE, ENTRIES_FILE, REPORTS_DIR
from ledger.kinds.settlement import check_report
from ledger.schema import is_initialized, migrate
from ledger.seal import Sealer
from ledger.sequencer import lock_log
from ledger.state import OPERATOR
from schemas.errors import (
    AlreadyInitialisedError,
    OperatorKeyError,
    TamperedError,
    VerificationError,
)
from schemas.limits import (
    CHECKPOINT_FILE_BYTES_MAX,
    IMPORT_CHUNK_ENTRIES,
    IMPORT_REPORT_BYTES_MAX,
)
from signing.checkpoint import cosignature_timestamp, verify_cosigned_checkpoint
from signing.keys import PrivateKey, b64encode
from signing.note import parse_note, render_note

CLOSING_KIND = "reconciliation.closed"


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
    """Audit the export in ``directory``, then load it into the empty database at
    ``url``; refuses (writing nothing) an export that does not audit, an operator key
    that is not the log's, and a database that already holds a ledger. ``spill``: page
    the replay's growing rows to disk (default: above AUDIT_SPILL_BYTES_MIN; ledger.spill)."""
    started = time.perf_counter()
    report = audit_directory(directory, spill=spill)
    try:
        return _import_audited(directory, url, operator, report, started)
    finally:
        report.close()  # the spill file, if the audit made one


def _import_audited(
    directory: Path, url: str, operator: PrivateKey, report: AuditReport, started: float
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
    engine = make_engine(url)
    try:
        _refuse_initialised(engine)
        migrate(engine)
        with engine.begin() as connection, collection_deferred():
            lock_log(connection)
            _refuse_initialised_in(connection)  # another import may have won the race
            nights = _load(connection, directory, report, split, operator)
    finally:
        engine.dispose()
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


def _load(
    connection: Connection,
    directory: Path,
    report: AuditReport,
    split: SplitCheckpoint,
    operator: PrivateKey,
) -> int:
    """Everything the import writes, in the caller's transaction; returns the nights."""
    tree = _Tree()
    for chunk in _chunks(directory):
        tree.write(connection, chunk)
        store.insert_reports(connection, _night_reports(directory, chunk))
    if (tree.size, tree.root) != (report.size, report.root):
        raise TamperedError("entries.jsonl changed since it was audited; nothing was written")
    # The operator signed the checkpoint when it appended the last batch, whose leaves
    # carry that time (the note itself does not say when).
    checkpoint = store.StoredCheckpoint(report.size, report.root, split.note, tree.last_logged)
    store.insert_checkpoint(connection, checkpoint)
    for witness, timestamp_s, line in split.cosignatures:
        store.insert_cosignature(connection, report.size, witness, timestamp_s, line)
    sealer = Sealer.for_log(operator, tree.genesis_hash)
    # The audit's replay is the replay of exactly these leaves (the root binds them),
    # every signature verified: sealed as `alliance rebuild` seals a replay.
    projections.write_all(connection, report.state, sealer)
    return tree.nights


@dataclass
class _Tree:
    """The tree as loaded so far: its frontier tiles, size and root."""

    size: int = 0
    root: bytes = merkle.EMPTY_ROOT
    frontier: dict[merkle.TileKey, bytes] = field(default_factory=dict)
    genesis_hash: bytes = b""
    last_logged: str = ""
    nights: int = 0

    def write(self, connection: Connection, chunk: list[store.StoredEntry]) -> None:
        """The chunk's leaves, then the tiles they complete or extend: each tile is
        written at the width the log's size then implies (the width trigger)."""
        store.insert_entries(connection, chunk)
        integration = merkle.integrate(self.size, self.frontier, [e.leaf_hash for e in chunk])
        store.write_tiles(connection, integration.tiles)
        store.write_nodes(connection, integration.nodes)
        merged = {**self.frontier, **integration.tiles}
        self.frontier = {key: merged[key] for key in merkle.frontier_tile_keys(integration.size)}
        self.size, self.root = integration.size, integration.root
        if not self.genesis_hash:
            self.genesis_hash = chunk[0].leaf_hash
        self.last_logged = chunk[-1].logged
        self.nights += sum(1 for e in chunk if e.kind == CLOSING_KIND)


def _chunks(directory: Path) -> Iterator[list[store.StoredEntry]]:
    """The leaves of entries.jsonl as log rows, IMPORT_CHUNK_ENTRIES at a time."""
    chunk: list[store.StoredEntry] = []
    seq = 0
    with open_export_file(directory / ENTRIES_FILE, "entries file") as handle:
        for line in read_lines(handle):
            if isinstance(line, Overlong):
                raise TamperedError(f"line {seq + 1} grew over a leaf's limit since the audit")
            chunk.append(_stored_entry(seq, line))
            seq += 1
            if len(chunk) >= IMPORT_CHUNK_ENTRIES:
                yield chunk
                chunk = []
    if chunk:
        yield chunk


def _stored_entry(seq: int, leaf: bytes) -> store.StoredEntry:
    """The row the writer stored for ``leaf`` (the columns the triggers compare with it).
    The leaf was audited (a canonical record, admitted by the rules) and the tree's root
    binds these bytes to the audited ones, so a plain JSON read suffices: the full
    reading (ledger.state.leaf_context) was half of the load's time."""
    try:
        record = orjson.loads(leaf)
        entry_bytes = audited_entry_bytes(leaf)
    except ValueError as exc:  # orjson's JSONDecodeError, or no "logged" member
        raise TamperedError(f"line {seq + 1} is no longer a record since the audit") from exc
    entry = record["entry"]
    if record["seq"] != seq:
        raise TamperedError(f"line {seq + 1} holds seq {record['seq']} since the audit")
    return store.StoredEntry(
        seq=seq,
        entry_id=str(entry["id"]),
        entry_hash=hashlib.sha256(entry_bytes).digest(),
        kind=str(entry["kind"]),
        signer=str(entry["signer"]),
        logged=str(record["logged"]),
        leaf=leaf,
        leaf_hash=merkle.leaf_hash(leaf),
    )


def _night_reports(directory: Path, chunk: list[store.StoredEntry]) -> list[tuple[str, int, bytes]]:
    """(day, seq, exported bytes) of each night the chunk closes, each checked against
    its closing entry's counts and roots (the audit compared them byte for byte; this
    catches a file swapped since)."""
    nights = []
    for entry in chunk:
        if entry.kind != CLOSING_KIND:
            continue
        body = json.loads(entry.leaf)["entry"]["body"]
        day = str(body["day"])
        path = directory / REPORTS_DIR / f"{day}.json"
        exported = read_export_file(path, f"report of {day}", IMPORT_REPORT_BYTES_MAX)
        check_report(exported, body)
        nights.append((day, entry.seq, exported))
    return nights
