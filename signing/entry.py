"""Entry signatures (DESIGN §3): Ed25519 over a domain prefix and the entry's JCS bytes."""

from __future__ import annotations

from typing import Any

from schemas.canonical import canonical
from signing.keys import SIGNATURE_SIZE, PrivateKey, PublicKey, b64decode, b64encode

ENTRY_SIGNATURE_PREFIX = b"alliance-ledger/v1/entry\n"


def signed_message(entry_bytes: bytes) -> bytes:
    return ENTRY_SIGNATURE_PREFIX + entry_bytes


def sign_entry(entry: dict[str, Any], key: PrivateKey) -> dict[str, str]:
    """The contract's signature object for ``entry``."""
    return {"key": key.key_id, "sig": b64encode(key.sign(signed_message(canonical(entry))))}


def submitted(entry: dict[str, Any], *keys: PrivateKey) -> dict[str, Any]:
    """A `submitted` document with one signature per key, in the given order."""
    return {"entry": entry, "signatures": [sign_entry(entry, key) for key in keys]}


def verify_entry_signature(entry_bytes: bytes, signature: dict[str, str], key: PublicKey) -> None:
    """Raise SignatureError unless ``signature`` is ``key``'s over ``entry_bytes``."""
    raw = b64decode(signature["sig"], size=SIGNATURE_SIZE, what="signature")
    key.verify(raw, signed_message(entry_bytes))
