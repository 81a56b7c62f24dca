"""A region's witness (C2SP tlog-witness semantics): cosign the log's newest checkpoint
once it is proven consistent with the last checkpoint this witness cosigned.

It trusts the log key and its own witness name from ``trust.json``. What it cosigned
before it learns from the log's stored cosignatures, but takes only a line that verifies
under its own key (nobody else can make one), so a planted or garbage row is passed over
and cannot stop it from cosigning again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ledger import merkle
from ledger.audit import Trust
from nodes.client import LogClient
from schemas.errors import AllianceError, NotFoundError, VerificationError
from signing.checkpoint import (
    Checkpoint,
    CosignatureVerifier,
    cosign,
    open_checkpoint,
    verify_cosigned_checkpoint,
)
from signing.keys import PrivateKey
from signing.note import NoteSigner


@dataclass(frozen=True, slots=True)
class Cosigned:
    region: str
    witness: str
    old_size: int | None
    size: int
    timestamp_s: int

    def wire(self) -> dict[str, object]:
        return {
            "region": self.region,
            "witness": self.witness,
            "size": self.size,
            "previous": self.old_size,
        }


class WitnessNode:
    def __init__(self, region: str, key: PrivateKey, trust: Trust) -> None:
        declared = trust.witnesses.get(region)
        if declared is None:
            raise NotFoundError(f"trust.json declares no witness for region {region}")
        if declared.public != key.public:
            raise VerificationError(f"the key given is not region {region}'s witness key")
        self.region = region
        self.trust = trust
        self.signer = NoteSigner(declared.name, key)
        self.own = CosignatureVerifier.from_public(declared.name, key.public)

    def cosign(self, client: LogClient, now: datetime) -> Cosigned:
        """Cosign the latest checkpoint; idempotent per size."""
        checkpoint = open_checkpoint(client.checkpoint(), self.trust.log)
        if checkpoint.origin != self.trust.origin:
            raise VerificationError(f"checkpoint of {checkpoint.origin}, not {self.trust.origin}")
        previous = self._last_cosigned(client)
        name = self.signer.name
        if previous is not None and previous.size == checkpoint.size:
            if previous.root != checkpoint.root:
                raise VerificationError(f"two roots for tree size {checkpoint.size}")
            return Cosigned(self.region, name, previous.size, checkpoint.size, 0)
        if previous is not None:
            if checkpoint.size < previous.size:
                raise VerificationError(
                    f"checkpoint {checkpoint.size} is smaller than {previous.size}"
                )
            proof = client.consistency(previous.size, checkpoint.size)
            merkle.verify_consistency(
                previous.size, checkpoint.size, previous.root, checkpoint.root, proof
            )
        timestamp_s = int(now.timestamp())
        line = cosign(checkpoint, self.signer, timestamp_s)
        client.add_cosignature(self.region, checkpoint.size, line, timestamp_s)
        return Cosigned(
            self.region,
            name,
            None if previous is None else previous.size,
            checkpoint.size,
            timestamp_s,
        )

    def _last_cosigned(self, client: LogClient) -> Checkpoint | None:
        note = client.cosigned(self.region)
        if note is None:
            return None
        try:
            checkpoint, cosigned = verify_cosigned_checkpoint(note, self.trust.log, [self.own])
        except AllianceError:
            return None  # not a note of ours: as if we had cosigned nothing
        return checkpoint if self.own.name in cosigned else None
