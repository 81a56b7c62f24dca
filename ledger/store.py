"""Reads and writes of the log tables. Pure SQL, no rules: the sequencer decides."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, func, select
from sqlalchemy.dialects import postgresql, sqlite

from ledger.tables import Checkpoint, Cosignature, LogEntry, MerkleTile

READ_CHUNK_ENTRIES = 4096  # leaves read per query when streaming the log


@dataclass(frozen=True, slots=True)
class StoredEntry:
    seq: int
    entry_id: str
    entry_hash: bytes
    kind: str
    signer: str
    logged: str
    leaf: bytes
    leaf_hash: bytes


@dataclass(frozen=True, slots=True)
class StoredCheckpoint:
    size: int
    root: bytes
    note: str
    signed: str


def head_size(connection: Connection) -> int:
    """The number of entries in the log (max seq + 1; seqs are gapless by trigger)."""
    value = connection.execute(select(func.max(LogEntry.seq))).scalar()
    return 0 if value is None else int(value) + 1


def find_ids(connection: Connection, ids: Sequence[str]) -> dict[str, tuple[int, bytes, bytes]]:
    """entry id -> (seq, entry hash, leaf hash) for the ids already logged."""
    if not ids:
        return {}
    rows = connection.execute(
        select(LogEntry.entry_id, LogEntry.seq, LogEntry.entry_hash, LogEntry.leaf_hash).where(
            LogEntry.entry_id.in_(list(ids))
        )
    )
    return {
        row.entry_id: (int(row.seq), bytes(row.entry_hash), bytes(row.leaf_hash)) for row in rows
    }


def insert_entries(connection: Connection, entries: Sequence[StoredEntry]) -> None:
    connection.execute(
        LogEntry.__table__.insert(),  # type: ignore[attr-defined]
        [
            {
                "seq": e.seq,
                "entry_id": e.entry_id,
                "entry_hash": e.entry_hash,
                "kind": e.kind,
                "signer": e.signer,
                "logged": e.logged,
                "leaf": e.leaf,
                "leaf_hash": e.leaf_hash,
            }
            for e in entries
        ],
    )


def read_entries(connection: Connection, start: int, end: int) -> Iterator[StoredEntry]:
    """Entries with start <= seq < end, in order, read in bounded chunks."""
    position = start
    while position < end:
        stop = min(end, position + READ_CHUNK_ENTRIES)
        rows = connection.execute(
            select(LogEntry)
            .where(LogEntry.seq >= position, LogEntry.seq < stop)
            .order_by(LogEntry.seq)
        )
        for row in rows:
            yield StoredEntry(
                int(row.seq),
                row.entry_id,
                bytes(row.entry_hash),
                row.kind,
                row.signer,
                row.logged,
                bytes(row.leaf),
                bytes(row.leaf_hash),
            )
        position = stop


def read_entry(connection: Connection, seq: int) -> StoredEntry | None:
    return next(read_entries(connection, seq, seq + 1), None)


class DbTiles:
    """TileReader over the merkle_tiles table: one query per call."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection

    def read_tiles(self, keys: Sequence[tuple[int, int]]) -> Mapping[tuple[int, int], bytes]:
        wanted = sorted(set(keys))
        if not wanted:
            return {}
        result: dict[tuple[int, int], bytes] = {}
        levels = {level for level, _ in wanted}
        for level in sorted(levels):
            indexes = [index for lvl, index in wanted if lvl == level]
            rows = self.connection.execute(
                select(MerkleTile.level, MerkleTile.idx, MerkleTile.hashes).where(
                    MerkleTile.level == level, MerkleTile.idx.in_(indexes)
                )
            )
            for row in rows:
                result[(int(row.level), int(row.idx))] = bytes(row.hashes)
        return result


def write_tiles(connection: Connection, tiles: Mapping[tuple[int, int], bytes]) -> None:
    """Insert new tiles and extend partial ones (the grow-only trigger checks prefixes)."""
    if not tiles:
        return
    table = MerkleTile.__table__
    insert = postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert
    statement = insert(table)  # type: ignore[arg-type]
    statement = statement.on_conflict_do_update(
        index_elements=["level", "idx"], set_={"hashes": statement.excluded.hashes}
    )
    connection.execute(
        statement,
        [
            {"level": level, "idx": index, "hashes": data}
            for (level, index), data in sorted(tiles.items())
        ],
    )


def insert_checkpoint(connection: Connection, checkpoint: StoredCheckpoint) -> None:
    connection.execute(
        Checkpoint.__table__.insert(),  # type: ignore[attr-defined]
        {
            "size": checkpoint.size,
            "root": checkpoint.root,
            "note": checkpoint.note,
            "signed": checkpoint.signed,
        },
    )


def latest_checkpoint(connection: Connection) -> StoredCheckpoint | None:
    row = connection.execute(select(Checkpoint).order_by(Checkpoint.size.desc()).limit(1)).first()
    if row is None:
        return None
    return StoredCheckpoint(int(row.size), bytes(row.root), row.note, row.signed)


def checkpoint_at(connection: Connection, size: int) -> StoredCheckpoint | None:
    row = connection.execute(select(Checkpoint).where(Checkpoint.size == size)).first()
    if row is None:
        return None
    return StoredCheckpoint(int(row.size), bytes(row.root), row.note, row.signed)


def insert_cosignature(
    connection: Connection, size: int, witness: str, timestamp_s: int, line: str
) -> None:
    connection.execute(
        Cosignature.__table__.insert(),  # type: ignore[attr-defined]
        {"size": size, "witness": witness, "timestamp_s": timestamp_s, "line": line},
    )


def cosignature_lines(connection: Connection, size: int) -> list[str]:
    rows = connection.execute(
        select(Cosignature.line).where(Cosignature.size == size).order_by(Cosignature.witness)
    )
    return [str(row.line) for row in rows]


def last_cosigned_size(connection: Connection, witness: str) -> int | None:
    value = connection.execute(
        select(func.max(Cosignature.size)).where(Cosignature.witness == witness)
    ).scalar()
    return None if value is None else int(value)
