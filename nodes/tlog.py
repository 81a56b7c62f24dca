"""A region's witness as a C2SP tlog-witness server's core (c2sp.org/tlog-witness):
the ``add-checkpoint`` request body, and the checks a witness makes before it cosigns.

The log (``alliance serve --witness``) sends the witness each new checkpoint with a
consistency proof from the size the witness last cosigned. The witness keeps that size
and root in its own state file (written and fsynced before it answers), so a log cannot
roll it back; the check of the old size and the update are made under one lock
(the spec's race). HTTP lives in api/witness.py; errors are the typed ones of
schemas.errors, with the statuses the spec gives:

* 400 ``malformed``: a body that is not ``old N``, proof lines, a blank line, a note; an
  old size above the checkpoint's;
* 403 ``forbidden``: no signature by the trusted log key verifies;
* 404 ``not-found``: a checkpoint of another origin;
* 409 ``stale-size``: the old size is not the size last cosigned (the body of the answer
  is that size, text/x.tlog.size); 409 ``conflict``: the same size with another root;
* 422 ``verification-failed``: the consistency proof does not verify.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from ledger import merkle
from ledger.audit import Trust
from nodes.witness import WitnessNode
from schemas.errors import (
    ConflictError,
    ForbiddenError,
    MalformedError,
    NotFoundError,
    StaleSizeError,
    VerificationError,
)
from schemas.limits import WITNESS_PROOF_LINES_MAX, WITNESS_REQUEST_BYTES_MAX
from signing.checkpoint import cosign, open_checkpoint
from signing.keys import PrivateKey, b64decode, b64encode
from signing.note import parse_note

SIZE_MEDIA_TYPE = "text/x.tlog.size"
_OLD_LINE = re.compile(r"old (0|[1-9][0-9]{0,18})")
HASH_SIZE = 32


@dataclass(frozen=True, slots=True)
class AddCheckpoint:
    """An add-checkpoint request: the old size, the consistency proof, the note."""

    old_size: int
    proof: tuple[bytes, ...]
    note: str

    def body(self) -> bytes:
        lines = [f"old {self.old_size}", *(b64encode(h) for h in self.proof)]
        return ("".join(line + "\n" for line in lines) + "\n" + self.note).encode("utf-8")

    @classmethod
    def parse(cls, body: bytes) -> AddCheckpoint:
        """The request, read strictly (MalformedError, 400, otherwise)."""
        if len(body) > WITNESS_REQUEST_BYTES_MAX:
            raise MalformedError(f"an add-checkpoint body is at most {WITNESS_REQUEST_BYTES_MAX}")
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise MalformedError("an add-checkpoint body is UTF-8 text") from exc
        head, blank, note = text.partition("\n\n")
        if not blank:
            raise MalformedError("an add-checkpoint body has a blank line before the note")
        lines = head.split("\n")
        match = _OLD_LINE.fullmatch(lines[0])
        if match is None:
            raise MalformedError("the first line is `old <size>`, decimal, no leading zeroes")
        if len(lines) - 1 > WITNESS_PROOF_LINES_MAX:
            raise MalformedError(f"at most {WITNESS_PROOF_LINES_MAX} consistency proof lines")
        proof = tuple(b64decode(line, size=HASH_SIZE, what="proof line") for line in lines[1:])
        return cls(int(match.group(1)), proof, note)


class TlogWitness(WitnessNode):
    """One region's witness, cosigning what the log sends it (`alliance witness
    --listen`)."""

    def __init__(
        self, region: str, key: PrivateKey, trust: Trust, state_path: Path | None = None
    ) -> None:
        super().__init__(region, key, trust, state_path)
        self._lock = threading.Lock()

    def add_checkpoint(self, request: AddCheckpoint, now: datetime) -> str:
        """The cosignature line(s) for the request's checkpoint, once every check of
        tlog-witness holds; the new size and root are durable before they are returned."""
        text, _ = parse_note(request.note)
        origin = text.split("\n", 1)[0]
        if origin != self.trust.origin:
            raise NotFoundError(f"this witness knows no log {origin!r}")
        try:
            checkpoint = open_checkpoint(request.note, self.trust.log)
        except VerificationError as exc:
            raise ForbiddenError(f"no signature by the log's key verifies: {exc.detail}") from exc
        if request.old_size > checkpoint.size:
            raise MalformedError(f"old size {request.old_size} is above {checkpoint.size}")
        with self._lock:
            last = self.last
            last_size = 0 if last is None else last.size
            if request.old_size != last_size:
                raise StaleSizeError(f"this witness last cosigned size {last_size}", size=last_size)
            if last is not None and last.size == checkpoint.size:
                if last.root != checkpoint.root:
                    raise ConflictError(f"another root for tree size {checkpoint.size}")
            elif last is None or last.size == 0:
                if request.proof:
                    raise VerificationError("the proof from size 0 must be empty")
            else:
                merkle.verify_consistency(
                    last.size, checkpoint.size, last.root, checkpoint.root, request.proof
                )
            line = cosign(checkpoint, self.signer, int(now.timestamp()))
            self._save_state(checkpoint)
        return line


__all__ = ["SIZE_MEDIA_TYPE", "AddCheckpoint", "TlogWitness"]
