"""A region's witness (C2SP tlog-witness semantics): cosign the log's newest checkpoint
once it is proven consistent with the last checkpoint this witness cosigned.

It trusts the log key and its own witness name from ``trust.json``. What it cosigned
before it learns from the log's stored cosignatures, but takes only a line that verifies
under its own key (nobody else can make one), so a planted or garbage row is passed over
and cannot stop it from cosigning again.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from ledger import merkle
from ledger.audit import Trust
from nodes.client import LogClient
from schemas.errors import AllianceError, MalformedError, NotFoundError, VerificationError
from signing.checkpoint import (
    Checkpoint,
    CosignatureVerifier,
    cosign,
    open_checkpoint,
    verify_cosignature,
)
from signing.keys import PrivateKey, b64decode, b64encode
from signing.note import NoteSigner, parse_note


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
    def __init__(
        self, region: str, key: PrivateKey, trust: Trust, state_path: Path | None = None
    ) -> None:
        declared = trust.witnesses.get(region)
        if declared is None:
            raise NotFoundError(f"trust.json declares no witness for region {region}")
        if declared.public != key.public:
            raise VerificationError(f"the key given is not region {region}'s witness key")
        self.region = region
        self.trust = trust
        self.signer = NoteSigner(declared.name, key)
        self.own = CosignatureVerifier.from_public(declared.name, key.public)
        # What this witness cosigned last, kept on its own machine: a server that hides
        # or rolls back its cosignatures cannot make it skip the consistency check.
        self.state_path = state_path
        self.last: Checkpoint | None = self._load_state()

    def cosign(self, client: LogClient, now: datetime) -> Cosigned:
        """Cosign the latest checkpoint; idempotent per size."""
        checkpoint = open_checkpoint(client.checkpoint(), self.trust.log)
        if checkpoint.origin != self.trust.origin:
            raise VerificationError(f"checkpoint of {checkpoint.origin}, not {self.trust.origin}")
        previous = self._newest(self._last_cosigned(client), self.last)
        name = self.signer.name
        if previous is not None and previous.size == checkpoint.size:
            if previous.root != checkpoint.root:
                raise VerificationError(f"two roots for tree size {checkpoint.size}")
            if self.last != previous:
                self._save_state(previous)  # our own line on it verified: remember it
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
        self._save_state(checkpoint)
        # Durable on this machine: the witness now vouches for checkpoint.size.
        return Cosigned(
            self.region,
            name,
            None if previous is None else previous.size,
            checkpoint.size,
            timestamp_s,
        )

    @staticmethod
    def _newest(served: Checkpoint | None, kept: Checkpoint | None) -> Checkpoint | None:
        """The later of what the server proves and what this witness kept; the same size
        with two roots is a fork."""
        if served is None or kept is None:
            return served or kept
        if served.size == kept.size and served.root != kept.root:
            raise VerificationError(f"two roots for tree size {kept.size}")
        return served if served.size > kept.size else kept

    def _load_state(self) -> Checkpoint | None:
        if self.state_path is None or not self.state_path.exists():
            return None
        try:
            raw = json.loads(self.state_path.read_text(encoding="utf-8"))
            return Checkpoint(self.trust.origin, int(raw["size"]), b64decode(raw["root"]))
        except (OSError, ValueError, KeyError, TypeError, AllianceError) as exc:
            raise MalformedError(f"witness state {self.state_path} unreadable: {exc}") from exc

    def _save_state(self, checkpoint: Checkpoint) -> None:
        self.last = checkpoint
        if self.state_path is None:
            return
        data = json.dumps({"size": checkpoint.size, "root": b64encode(checkpoint.root)}) + "\n"
        handle, temporary = tempfile.mkstemp(dir=self.state_path.parent, prefix=".witness-")
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, self.state_path)

    def _last_cosigned(self, client: LogClient) -> Checkpoint | None:
        """The checkpoint of the server's note, if a line on it verifies under this
        witness's own key. Each line is judged alone: a garbage line by our name beside a
        valid one must not make the witness forget what it cosigned (and so skip the
        consistency check); with no valid line it is as if it had cosigned nothing."""
        note = client.cosigned(self.region)
        if note is None:
            return None
        try:
            checkpoint = open_checkpoint(note, self.trust.log)
            _, lines = parse_note(note)
        except AllianceError:
            return None
        for line in lines:
            try:
                verify_cosignature(checkpoint, line, self.own)
            except AllianceError:
                continue
            return checkpoint
        return None
