"""An audit's paged rows on disk: bounded memory for a replay of any length.

The writer pages the projections that grow with the log from its sealed tables
(ledger.projections.SealedRows). A replay from a file (`alliance audit`, and `alliance
import`, which audits first) has no database: above AUDIT_SPILL_BYTES_MIN of entries it
pages the same tables (ledger.state.PAGED_TABLES) from a private SQLite file of its own,
together with the first seq of every entry id (duplicate ids are findings). The file
holds only what the replay itself derived, each row at its newest version; it lives in
a directory only this user can enter (tempfile.mkdtemp: 0700) and is removed at the end.

Most of a replay's reads are of keys the file does not hold (a receipt returned for the
first time, a new entry id), and each such read walked the file's B-tree, deeper and
less often cached as the log grew. A Bloom filter of the keys stored (KeyFilter) answers
those in memory; only a key it cannot rule out is asked of the file. Entry ids are
written with the rows, a chunk at a time, and every write is in key order (neighbouring
pages of the B-tree), not in the order the replay met the keys.

The writes run on a thread of their own (sqlite3 leaves the interpreter lock while a
statement steps, and the B-tree work of a 10 M-entry spill was about half of its write
time): store() hands a chunk's rows over and returns, the replay goes on judging the
next chunk. The filters are updated at once, by the replay's thread, so a key the
filters rule out is answered without the file; any read of the file first waits for the
write in flight (one at a time, the connection is never used by both threads at once),
and that write's error, if any, is raised there.
"""

from __future__ import annotations

import operator
import shutil
import sqlite3
import tempfile
import weakref
from collections.abc import Hashable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from ledger.projections import FIELD_NAMES
from ledger.rows import TABLES, Row
from ledger.state import PAGE_PREFIXES, PAGED_TABLES, State
from schemas.errors import invariant
from schemas.limits import (
    AUDIT_SPILL_CACHE_BYTES,
    PAGE_READ_KEYS_MAX,
    SPILL_FILTER_BITS_PER_KEY,
    SPILL_FILTER_KEYS_FIRST,
)

SPILL_FILE = "spill.sqlite"
IDS = "entry_ids"


HASH_MASK = (1 << 64) - 1
LOW_MASK = (1 << 32) - 1


class KeyFilter:
    """A Bloom filter over hashable keys, in layers: might_hold() is False only for a key
    never added (no false negative), True for every key added and for a few others.
    A layer holds SPILL_FILTER_KEYS_FIRST keys, each next one twice its predecessor's,
    so the filter grows with the spill, never needing the keys again. Keys are hashed
    with hash() (the filter lives in one process, like the spill), three bits a key
    (double hashing over the hash's two halves); written out, not looped: a few million
    keys go through here."""

    __slots__ = ("capacity", "count", "first_keys", "layers")

    def __init__(self, first_keys: int = SPILL_FILTER_KEYS_FIRST) -> None:
        invariant(first_keys & (first_keys - 1) == 0, "a filter layer of 2**n keys")
        self.first_keys = first_keys
        self.layers: list[tuple[bytearray, int]] = []  # each layer's bits and bit mask
        self.count = 0
        self.capacity = 0  # of every layer together

    def add_all(self, keys: Iterable[Hashable]) -> None:
        """File ``keys``; a key the filter already answers True for is not filed again
        (it could never be ruled out anyway), so repeats cost no capacity."""
        for key in keys:
            hashed = hash(key) & HASH_MASK
            low, step = hashed & LOW_MASK, (hashed >> 32) | 1
            if self._holds(low, step):
                continue
            if self.count >= self.capacity:
                self._grow()
            self.count += 1
            bits, mask = self.layers[-1]
            at = low & mask
            bits[at >> 3] |= 1 << (at & 7)
            at = (low + step) & mask
            bits[at >> 3] |= 1 << (at & 7)
            at = (low + 2 * step) & mask
            bits[at >> 3] |= 1 << (at & 7)

    def _grow(self) -> None:
        keys = self.first_keys << len(self.layers)
        size_bits = keys * SPILL_FILTER_BITS_PER_KEY  # a power of two
        self.layers.append((bytearray(size_bits // 8), size_bits - 1))
        self.capacity += keys

    def might_hold(self, key: Hashable) -> bool:
        hashed = hash(key) & HASH_MASK
        return self._holds(hashed & LOW_MASK, (hashed >> 32) | 1)

    def _holds(self, low: int, step: int) -> bool:
        for bits, mask in self.layers:
            at = low & mask
            if not bits[at >> 3] & (1 << (at & 7)):
                continue
            at = (low + step) & mask
            if not bits[at >> 3] & (1 << (at & 7)):
                continue
            at = (low + 2 * step) & mask
            if bits[at >> 3] & (1 << (at & 7)):
                return True
        return False


class Spill:
    """A RowSource (ledger.state) over a private SQLite file, and the entry-id index."""

    def __init__(self) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="alliance-spill-"))
        # Used by the replay's thread and the writing thread, never at once (_settled).
        self.db = sqlite3.connect(
            self.directory / SPILL_FILE, isolation_level=None, check_same_thread=False
        )
        # A scratch file: nothing in it must survive a crash (the audit starts over).
        self.db.execute("PRAGMA journal_mode=OFF")
        self.db.execute("PRAGMA synchronous=OFF")
        # SQLite's page cache (2 MB by default) would hold few of the B-trees' inner pages
        # once the file is hundreds of MB: every random write and read then reads pages
        # again from the OS. A bounded cache of its own keeps them (about 8 % of a
        # spilled 400 k audit's time, more as the file grows).
        self.db.execute(f"PRAGMA cache_size=-{AUDIT_SPILL_CACHE_BYTES // 1024}")
        for name in PAGED_TABLES:
            fields = FIELD_NAMES[name]
            keys = ", ".join(f'"{key}"' for key in TABLES[name][1])
            columns = ", ".join(f'"{field}"' for field in (*fields, "version"))
            self.db.execute(f"CREATE TABLE {name} ({columns}, PRIMARY KEY ({keys})) WITHOUT ROWID")
        self.db.execute(f"CREATE TABLE {IDS} (id PRIMARY KEY, seq INTEGER) WITHOUT ROWID")
        self.db.execute("BEGIN")
        # The key (the prefix, for a table read by key prefix) of every row stored in
        # the file, whatever its table: ONE filter for all of them, since a key one
        # table filed only makes the others ask the file for it (never a wrong answer),
        # and their keys are mostly the same few an entry (a receipt's, a return's seq):
        # about 2 keys an entry instead of 7 (at 10 M entries: about 66 MB, not 230).
        self.rows_filed = KeyFilter()
        self.ids_filed = KeyFilter()  # every entry id stored
        # The entry ids first met since the last store(), and their seqs.
        self.new_ids: dict[bytes | str, int] = {}
        # The one write in flight (store()), on the writing thread.
        self.writer = ThreadPoolExecutor(1, thread_name_prefix="alliance-spill")
        self.written: Future[None] | None = None
        # Removed even if close() is never called (an audit that raised half way).
        self._finalizer = weakref.finalize(self, _remove, self.writer, self.db, self.directory)

    def close(self) -> None:
        self._finalizer()

    def flush(self) -> None:
        """Wait for the write in flight; raise its error (the file is then incomplete,
        and so would be every read of it)."""
        self._settled()

    def _settled(self) -> sqlite3.Connection:
        """The file's connection, once no write is in flight."""
        written, self.written = self.written, None
        if written is not None:
            written.result()
        return self.db

    # --- RowSource -------------------------------------------------------------------

    def caches_here(self) -> bool:
        return True  # one replay, one thread

    def fetch(
        self, name: str, prefixes: Sequence[tuple[object, ...]], below: int
    ) -> list[tuple[Row, int]]:
        row_type, keys = TABLES[name]
        found: list[tuple[Row, int]] = []
        for prefix in prefixes:
            if not self._may_hold(name, prefix):
                continue  # surely absent: the file need not be asked
            where = " AND ".join(f'"{key}" = ?' for key in keys[: len(prefix)])
            statement = f"SELECT * FROM {name} WHERE {where}"
            for values in self._settled().execute(statement, prefix):
                invariant(values[-1] < below, f"a spilled {name} row is from the future")
                found.append((row_type(*values[:-1]), values[-1]))
        return found

    def _may_hold(self, name: str, prefix: tuple[object, ...]) -> bool:
        """Whether the file may hold a row under ``prefix``: the filter knows, for each
        table, the prefix of every stored key that the table is read by (_filed_length), so
        a prefix at least that long is ruled out or not; a shorter one is asked."""
        length = _filed_length(name)
        if len(prefix) < length:
            return True
        return self.rows_filed.might_hold(prefix[:length])

    def scan(self, name: str, below: int) -> Iterator[tuple[Row, int]]:
        row_type = TABLES[name][0]
        cursor = self._settled().execute(f"SELECT * FROM {name}")
        while rows := cursor.fetchmany(PAGE_READ_KEYS_MAX):
            for values in rows:
                yield row_type(*values[:-1]), values[-1]

    # --- what the replay writes ------------------------------------------------------

    def store(self, state: State, taken: dict[str, list[tuple[Row, int]]] | None = None) -> None:
        """Write the paged rows ``state`` changed (``taken``: the changed rows its
        tables already gave up, by table), drop its working set and forget the other
        tables' changes (a replay stores nothing else as it goes). The rows are written
        by the writing thread; the filters know them at once."""
        writes: list[tuple[str, list[tuple[object, ...]]]] = []
        for name in PAGED_TABLES:
            table = state.table(name)
            rows = table.take_changed() if taken is None else taken.get(name, [])
            if rows:
                writes.append(self._file_rows(name, [(table.key_of(r), r, v) for r, v in rows]))
        state.forget_changes()
        state.evict_pages()
        if self.new_ids:
            ids: list[tuple[object, ...]] = _in_key_order(list(self.new_ids.items()))
            writes.append((f"INSERT INTO {IDS} VALUES (?, ?)", ids))
            self.ids_filed.add_all(self.new_ids)
            self.new_ids.clear()
        if writes:
            db = self._settled()  # the previous chunk's write is done (or raises here)
            self.written = self.writer.submit(_write, db, writes)

    def _file_rows(
        self, name: str, keyed: list[tuple[tuple[object, ...], Row, int]]
    ) -> tuple[str, list[tuple[object, ...]]]:
        """The statement and parameters that write ``keyed`` (in key order), and the
        filter told of their keys."""
        keyed = _in_key_order(keyed)
        length = _filed_length(name)
        # Filed once per prefix (the rows of one receipt or one target are neighbours).
        self.rows_filed.add_all(dict.fromkeys(key[:length] for key, _, _ in keyed))
        marks = ", ".join("?" * (len(FIELD_NAMES[name]) + 1))
        statement = f"INSERT OR REPLACE INTO {name} VALUES ({marks})"
        return statement, [(*row, version) for _, row, version in keyed]

    def first_seq(self, entry_id: bytes | str, seq: int) -> int:
        """The seq ``entry_id`` was first logged at: ``seq`` if this is its first. A new
        id is written at the next store()."""
        first = self.new_ids.get(entry_id)
        if first is not None:
            return first
        if self.ids_filed.might_hold(entry_id):
            statement = f"SELECT seq FROM {IDS} WHERE id = ?"
            found = self._settled().execute(statement, (entry_id,)).fetchone()
            if found is not None:
                return int(found[0])
        self.new_ids[entry_id] = seq
        return seq


Keyed = TypeVar("Keyed", bound=tuple[Any, ...])
_FIRST = operator.itemgetter(0)


def _in_key_order(items: list[Keyed]) -> list[Keyed]:
    """``items`` sorted by their first member (a key: unique in a batch, so the rest is
    never compared), the order the file's B-tree holds them; as they are if their keys
    do not compare (the writes are then merely slower)."""
    try:
        return sorted(items, key=_FIRST)
    except TypeError:
        return items


def _filed_length(name: str) -> int:
    """How much of a key of ``name`` its filter holds: the prefix the table is read by
    (ledger.state.PAGE_PREFIXES: a whole key's read is ruled out by its prefix), else
    the whole key."""
    return PAGE_PREFIXES.get(name, len(TABLES[name][1]))


def _write(db: sqlite3.Connection, writes: list[tuple[str, list[tuple[object, ...]]]]) -> None:
    """On the writing thread: one chunk's rows, table by table."""
    for statement, parameters in writes:
        db.executemany(statement, parameters)


def _remove(writer: ThreadPoolExecutor, db: sqlite3.Connection, directory: Path) -> None:
    writer.shutdown(wait=True)  # the write in flight ends before its connection does
    db.close()
    shutil.rmtree(directory, ignore_errors=True)
