"""Leaves and a checkpoint made exactly as the writer makes them, for a log that was never
appended: the benches' generated exports (ops/bench/generate.py), which `alliance audit`
and `alliance import` then judge under every rule.

The writer's own steps, nothing else: ``Sequencer.prepare`` (schemas, signatures' form,
RFC 8785 bytes), ``record_leaf`` at the given seq and time (through the sequencer's
``_stored``), RFC 6962 integration onto a frontier, and ``publish`` for the checkpoint.
What is skipped is admission (the rules against the state): this module never writes a
log, so the front door's guarantee (only ``ledger/`` builds a sequencer or signs a
checkpoint) holds, and whoever uses its output must audit it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import create_engine

from ledger import merkle
from ledger.publish import publish
from ledger.sequencer import Sequencer, _frontier_after, _stored, prepared_context
from ledger.store import StoredCheckpoint
from schemas.entry import format_utc
from schemas.limits import HASH_SIZE
from signing.entry import submitted
from signing.keys import PrivateKey

# The sequencer only prepares: it never opens a connection to this in-memory database.
_NO_DATABASE = "sqlite://"

Submission = tuple[str, dict[str, Any]]  # (signer, unsigned entry)


class LeafMaker:
    """The writer's leaves of submissions at chosen seqs and time (never appended)."""

    def __init__(self, operator: PrivateKey, now: datetime) -> None:
        self.now = now
        self._sequencer = Sequencer(create_engine(_NO_DATABASE), operator, clock=lambda: now)

    def leaves(
        self, keys: dict[str, PrivateKey], first_seq: int, submissions: Sequence[Submission]
    ) -> tuple[bytes, bytes]:
        """The leaves of ``submissions`` (each signed by its signer's key in ``keys``) at
        seqs ``first_seq``…: (the lines of entries.jsonl, their leaf hashes joined)."""
        logged = format_utc(self.now)
        lines: list[bytes] = []
        hashes: list[bytes] = []
        for seq, (signer, entry) in enumerate(submissions, first_seq):
            item = self._sequencer.prepare(submitted(entry, keys[signer]))
            stored = _stored(prepared_context(item, seq, self.now, logged), item)
            lines.append(stored.leaf)
            hashes.append(stored.leaf_hash)
        lines.append(b"")
        return b"\n".join(lines), b"".join(hashes)


@dataclass
class Frontier:
    """A tree grown leaf hash by leaf hash, holding only its frontier tiles (bounded
    however many leaves), as the writer holds it."""

    size: int = 0
    root: bytes = merkle.EMPTY_ROOT
    tiles: dict[merkle.TileKey, bytes] = field(default_factory=dict)

    def add(self, hashes: bytes) -> None:
        """Integrate the leaf hashes ``hashes`` (joined, HASH_SIZE bytes each)."""
        leaf_hashes = [hashes[i : i + HASH_SIZE] for i in range(0, len(hashes), HASH_SIZE)]
        integration = merkle.integrate(self.size, self.tiles, leaf_hashes)
        self.tiles, self.size = _frontier_after(self.size, self.tiles, integration)
        self.root = integration.root


def checkpoint(
    origin: str, tree: Frontier, operator: PrivateKey, now: datetime
) -> StoredCheckpoint:
    """The operator's signed checkpoint of ``tree``, as the writer publishes it."""
    return publish(origin, tree.size, tree.root, operator, now)
