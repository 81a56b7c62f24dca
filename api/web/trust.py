"""The trust root the pages are served with: the log's trust.json, as the export writes it
(origin, the key of the newest checkpoint's signer, every region's witness key), and its
fingerprint (SHA-256 of exactly those bytes, which the browser recomputes)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from ledger.app import Ledger, operator_verifier
from schemas.errors import invariant


@dataclass(frozen=True, slots=True)
class TrustRoot:
    text: str  # canonical JSON: sorted keys, no spaces
    fingerprint: str  # SHA-256 of ``text`` (UTF-8), hex

    @property
    def short(self) -> str:
        """The first 32 hex digits in groups of four, as the footer shows them."""
        head = self.fingerprint[:32]
        return " ".join(head[i : i + 4] for i in range(0, len(head), 4))


def trust_root(ledger: Ledger) -> TrustRoot:
    keys = ledger.log_keys()
    verifier = operator_verifier(keys, ledger.signed_checkpoint().note)
    invariant(verifier is not None, "the newest verified checkpoint has no declared signer")
    assert verifier is not None
    document = {
        "origin": keys.origin,
        "log_key": verifier.vkey,
        "witness_keys": {code: v.vkey for code, v in sorted(keys.witnesses.items())},
    }
    text = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    # Embedded verbatim in every page (its fingerprint is over these bytes): key names
    # and base64 never hold "<", so nothing can close the script element.
    invariant("<" not in text, "the trust root holds '<'")
    return TrustRoot(text, hashlib.sha256(text.encode("utf-8")).hexdigest())
