"""A region's witness: cosign the newest checkpoint once it is consistent with the last
one this witness cosigned (C2SP tlog-witness semantics, run against the log database)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, Engine, select

from ledger import merkle, store
from ledger.projections import PROJECTION_TABLES
from schemas.errors import NotFoundError, VerificationError
from signing.checkpoint import (
    Checkpoint,
    CosignatureVerifier,
    add_cosignatures,
    cosign,
    open_checkpoint,
    verify_cosigned_checkpoint,
)
from signing.keys import PrivateKey
from signing.note import NoteSigner, NoteVerifier


@dataclass(frozen=True, slots=True)
class Cosigned:
    region: str
    witness: str
    old_size: int | None
    size: int
    timestamp_s: int


def cosign_latest(
    engine: Engine, region: str, witness_key: PrivateKey, log_verifier: NoteVerifier, now: datetime
) -> Cosigned:
    """Cosign the latest checkpoint as ``region``'s witness; idempotent per size."""
    with engine.begin() as connection:
        regions = PROJECTION_TABLES["regions"]
        row = connection.execute(select(regions).where(regions.c.code == region)).first()
        if row is None:
            raise NotFoundError(f"region {region} is not in this log")
        name = str(row.witness_name)
        signer = NoteSigner(name, witness_key)
        if signer.key.public.b64 != row.witness_pub:
            raise VerificationError(f"the key given is not region {region}'s witness key")
        latest = store.latest_checkpoint(connection)
        if latest is None:
            raise NotFoundError("the log has no checkpoint yet")
        checkpoint = open_checkpoint(latest.note, log_verifier)
        previous = store.last_cosigned_size(connection, name)
        if previous == latest.size:
            return Cosigned(region, name, previous, latest.size, 0)
        if previous is not None:
            _check_consistent(connection, previous, checkpoint, signer, log_verifier)
        timestamp_s = int(now.timestamp())
        line = cosign(checkpoint, signer, timestamp_s)
        store.insert_cosignature(connection, latest.size, name, timestamp_s, line)
        # Committed with the transaction: this witness now vouches for latest.size.
    return Cosigned(region, name, previous, latest.size, timestamp_s)


def _check_consistent(
    connection: Connection,
    previous: int,
    checkpoint: Checkpoint,
    signer: NoteSigner,
    log_verifier: NoteVerifier,
) -> None:
    """The new checkpoint must extend the one this witness cosigned before. The old
    root is taken from a checkpoint carrying this witness's own valid cosignature."""
    old = store.checkpoint_at(connection, previous)
    if old is None:
        raise VerificationError(f"checkpoint {previous} this witness cosigned is missing")
    lines = store.cosignature_lines(connection, previous)
    own = CosignatureVerifier.from_public(signer.name, signer.key.public)
    _, cosigned = verify_cosigned_checkpoint(add_cosignatures(old.note, lines), log_verifier, [own])
    if signer.name not in cosigned:
        raise VerificationError(f"no valid cosignature of ours on checkpoint {previous}")
    if checkpoint.size < previous:
        raise VerificationError(f"checkpoint {checkpoint.size} is smaller than {previous}")
    proof = merkle.consistency_proof(previous, checkpoint.size, store.DbTiles(connection))
    merkle.verify_consistency(previous, checkpoint.size, old.root, checkpoint.root, proof)
