"""An audit's paged rows on disk: bounded memory for a replay of any length.

The writer pages the projections that grow with the log from its sealed tables
(ledger.projections.SealedRows). A replay from a file (`alliance audit`, and `alliance
import`, which audits first) has no database: above AUDIT_SPILL_BYTES_MIN of entries it
pages the same tables (ledger.state.PAGED_TABLES) from a private SQLite file of its own,
together with the first seq of every entry id (duplicate ids are findings). The file
holds only what the replay itself derived, each row at its newest version; it lives in
a directory only this user can enter (tempfile.mkdtemp: 0700) and is removed at the end.
"""

from __future__ import annotations

import shutil
import sqlite3
import tempfile
import weakref
from collections.abc import Iterator, Sequence
from pathlib import Path

from ledger.projections import FIELD_NAMES
from ledger.rows import TABLES, Row
from ledger.state import PAGED_TABLES, State
from schemas.errors import invariant
from schemas.limits import PAGE_READ_KEYS_MAX

SPILL_FILE = "spill.sqlite"
IDS = "entry_ids"


class Spill:
    """A RowSource (ledger.state) over a private SQLite file, and the entry-id index."""

    def __init__(self) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="alliance-spill-"))
        self.db = sqlite3.connect(self.directory / SPILL_FILE, isolation_level=None)
        # A scratch file: nothing in it must survive a crash (the audit starts over).
        self.db.execute("PRAGMA journal_mode=OFF")
        self.db.execute("PRAGMA synchronous=OFF")
        for name in PAGED_TABLES:
            fields = FIELD_NAMES[name]
            keys = ", ".join(f'"{key}"' for key in TABLES[name][1])
            columns = ", ".join(f'"{field}"' for field in (*fields, "version"))
            self.db.execute(f"CREATE TABLE {name} ({columns}, PRIMARY KEY ({keys})) WITHOUT ROWID")
        self.db.execute(f"CREATE TABLE {IDS} (id PRIMARY KEY, seq INTEGER) WITHOUT ROWID")
        self.db.execute("BEGIN")
        # Removed even if close() is never called (an audit that raised half way).
        self._finalizer = weakref.finalize(self, _remove, self.db, self.directory)

    def close(self) -> None:
        self._finalizer()

    # --- RowSource -------------------------------------------------------------------

    def caches_here(self) -> bool:
        return True  # one replay, one thread

    def fetch(
        self, name: str, prefixes: Sequence[tuple[object, ...]], below: int
    ) -> list[tuple[Row, int]]:
        row_type, keys = TABLES[name]
        found: list[tuple[Row, int]] = []
        for prefix in prefixes:
            where = " AND ".join(f'"{key}" = ?' for key in keys[: len(prefix)])
            statement = f"SELECT * FROM {name} WHERE {where}"
            for values in self.db.execute(statement, prefix):
                invariant(values[-1] < below, f"a spilled {name} row is from the future")
                found.append((row_type(*values[:-1]), values[-1]))
        return found

    def scan(self, name: str, below: int) -> Iterator[tuple[Row, int]]:
        row_type = TABLES[name][0]
        cursor = self.db.execute(f"SELECT * FROM {name}")
        while rows := cursor.fetchmany(PAGE_READ_KEYS_MAX):
            for values in rows:
                yield row_type(*values[:-1]), values[-1]

    # --- what the replay writes ------------------------------------------------------

    def store(self, state: State) -> None:
        """Write the paged rows ``state`` changed, drop its working set and forget the
        other tables' changes (a replay stores nothing else as it goes)."""
        for name in PAGED_TABLES:
            table = state.table(name)
            rows = table.take_changed()
            if rows:
                marks = ", ".join("?" * (len(FIELD_NAMES[name]) + 1))
                self.db.executemany(
                    f"INSERT OR REPLACE INTO {name} VALUES ({marks})",
                    [(*row, version) for row, version in rows],
                )
        state.forget_changes()
        state.evict_pages()

    def first_seq(self, entry_id: bytes | str, seq: int) -> int:
        """The seq ``entry_id`` was first logged at: ``seq`` if this is its first."""
        cursor = self.db.execute(f"INSERT OR IGNORE INTO {IDS} VALUES (?, ?)", (entry_id, seq))
        if cursor.rowcount == 1:
            return seq
        (first,) = self.db.execute(f"SELECT seq FROM {IDS} WHERE id = ?", (entry_id,)).fetchone()
        return int(first)


def _remove(db: sqlite3.Connection, directory: Path) -> None:
    db.close()
    shutil.rmtree(directory, ignore_errors=True)
