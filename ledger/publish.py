"""Publish: the operator signs a checkpoint of the integrated tree (C2SP signed note)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from ledger.store import StoredCheckpoint
from schemas.entry import format_utc
from schemas.errors import AllianceError
from signing.checkpoint import Checkpoint, open_checkpoint, sign_checkpoint
from signing.keys import PrivateKey
from signing.note import NoteSigner, NoteVerifier


def publish(
    origin: str, size: int, root: bytes, operator: PrivateKey, now: datetime
) -> StoredCheckpoint:
    """A signed checkpoint note for the tree of ``size`` with ``root``. The key name is
    the origin (DESIGN §4)."""
    note = sign_checkpoint(Checkpoint(origin, size, root), NoteSigner(origin, operator))
    return StoredCheckpoint(size=size, root=root, note=note, signed=format_utc(now))


def signed_by(
    note: str, verifiers: Iterable[NoteVerifier]
) -> tuple[NoteVerifier, Checkpoint] | None:
    """The verifier among ``verifiers`` (the log's operator keys) that signed the
    checkpoint ``note``, and the checkpoint it opens to; None if none did. The one check
    behind the writer's trusted frontier, the readers' checkpoints and the doctor's."""
    for verifier in verifiers:
        try:
            return verifier, open_checkpoint(note, verifier)
        except AllianceError:
            continue
    return None
