"""Seals on projection rows: a keyed BLAKE2b MAC under a secret derived from the operator key.

Why: projections are caches in tables that more roles can write than the log's keys
cover. The writer builds on them (at start-up, and per batch once issue 11 fetches rows
on demand), so it must never take a row it did not write itself. Each stored row version
carries ``seal = BLAKE2b-256(key=secret, table ‖ values ‖ version)``; the writer ignores, and
`alliance doctor` reports, every row whose seal does not verify. Rows are never updated
(a change is a new version, and triggers refuse UPDATE and DELETE), so an attacker cannot
roll a row back to an older sealed version either: the newest valid version wins.

A head marker, sealed the same way, names the log size the projections were written for
in each batch; the writer loads the state of the newest valid marker and replays (with
every signature verified) whatever the log holds beyond it.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Iterable, Sequence

import orjson

from signing.keys import PrivateKey

SEAL_LABEL = b"projection-seal"
SEAL_SIZE = 32
_ROW_PREFIX = b"alliance-ledger/v1/projection\n"
_HEAD_PREFIX = b"alliance-ledger/v1/projection-head\n"


class Sealer:
    """Seals and checks projection rows with the operator's derived secret."""

    __slots__ = ("_secret",)

    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    @classmethod
    def for_log(cls, operator: PrivateKey, genesis_leaf_hash: bytes) -> Sealer:
        """The sealer of one log: the secret is bound to the operator key and to the
        log's genesis leaf, so rows sealed for another log under the same operator key
        (a staging copy, an older log) are not this log's."""
        return cls(operator.derive_secret(SEAL_LABEL + b"\n" + genesis_leaf_hash))

    def sealer(self, table: str) -> Callable[[tuple[object, ...], int], bytes]:
        """The seal of a row of ``table``: one function per table, with the per-call
        work hoisted, since a batch seals several rows per entry and a start-up checks
        every stored version."""
        # Keyed BLAKE2b is a MAC by design and costs one pass, about half an HMAC-SHA256
        # here. The key block and the table's prefix are hashed once, here; each seal
        # continues from a copy of that state.
        keyed = hashlib.blake2b(
            _ROW_PREFIX + table.encode("ascii") + b"\n", key=self._secret, digest_size=SEAL_SIZE
        )
        dumps = orjson.dumps

        def seal(values: tuple[object, ...], version: int) -> bytes:
            # A row's values are str, int and None: the JSON array [values, version]
            # (orjson, one call in C) is unambiguous and about twice as fast as the
            # tuple's repr(). A value JSON cannot carry (a lone surrogate, an integer
            # past 64 bits) is sealed over the repr() instead, which starts "(" where
            # JSON starts "[", so the two encodings never meet. Only this writer ever
            # reads a seal: were the encoding to change, seals would fail and the writer
            # would replay the log instead of loading them (slower, never wrong).
            try:
                data = dumps((values, version))
            except (TypeError, orjson.JSONEncodeError):
                data = tuple.__repr__((values, version)).encode("utf-8", "surrogatepass")
            state = keyed.copy()
            state.update(data)
            return state.digest()

        return seal

    def row(self, table: str, values: Sequence[object], version: int) -> bytes:
        return self.sealer(table)(tuple(values), version)

    def rows(
        self, table: str, rows: Iterable[tuple[tuple[object, ...], int]]
    ) -> list[tuple[object, ...]]:
        """(values…, version, seal) for each (values, version) of ``table``."""
        seal = self.sealer(table)
        return [(*values, version, seal(values, version)) for values, version in rows]

    def checker(self, table: str) -> Callable[[tuple[object, ...], int, bytes], bool]:
        """row_ok() for one table, for loading many rows."""
        seal, compare = self.sealer(table), hmac.compare_digest
        return lambda values, version, stored: compare(seal(values, version), stored)

    def row_ok(self, table: str, values: Sequence[object], version: int, seal: bytes) -> bool:
        return hmac.compare_digest(self.row(table, values, version), seal)

    def head(self, size: int) -> bytes:
        message = _HEAD_PREFIX + str(size).encode()
        return hashlib.blake2b(message, key=self._secret, digest_size=SEAL_SIZE).digest()

    def head_ok(self, size: int, seal: bytes) -> bool:
        return hmac.compare_digest(self.head(size), seal)
