"""Publish: the operator signs a checkpoint of the integrated tree (C2SP signed note)."""

from __future__ import annotations

from datetime import datetime

from ledger.store import StoredCheckpoint
from schemas.entry import format_utc
from signing.checkpoint import Checkpoint, sign_checkpoint
from signing.keys import PrivateKey
from signing.note import NoteSigner


def publish(
    origin: str, size: int, root: bytes, operator: PrivateKey, now: datetime
) -> StoredCheckpoint:
    """A signed checkpoint note for the tree of ``size`` with ``root``. The key name is
    the origin (DESIGN §4)."""
    note = sign_checkpoint(Checkpoint(origin, size, root), NoteSigner(origin, operator))
    return StoredCheckpoint(size=size, root=root, note=note, signed=format_utc(now))
