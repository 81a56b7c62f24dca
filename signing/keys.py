"""Ed25519 keys: generation, PKCS#8 PEM files, key ids and the wire form of a key."""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from schemas.errors import KeyFileError, MalformedError, SignatureError

PUBLIC_KEY_SIZE = 32
SIGNATURE_SIZE = 64
KEY_ID_SIZE = 16  # bytes of SHA-256(pub) kept in a KEYID (DESIGN §3)


def key_id(public_raw: bytes) -> str:
    """KEYID = lowercase hex of SHA-256(raw 32-byte public key)[:16 bytes]."""
    if len(public_raw) != PUBLIC_KEY_SIZE:
        raise MalformedError(f"an Ed25519 public key is {PUBLIC_KEY_SIZE} bytes")
    return hashlib.sha256(public_raw).digest()[:KEY_ID_SIZE].hex()


def b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def b64decode(text: str, *, size: int | None = None, what: str = "value") -> bytes:
    """Strict standard base64 (with padding); optionally of an exact decoded size."""
    try:
        data = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise MalformedError(f"{what} is not standard base64") from exc
    if size is not None and len(data) != size:
        raise MalformedError(f"{what} must be {size} bytes, got {len(data)}")
    if b64encode(data) != text:
        raise MalformedError(f"{what} is not in canonical base64")
    return data


@dataclass(frozen=True, slots=True)
class PublicKey:
    """A verifying key. ``raw`` is the 32-byte Ed25519 public key."""

    raw: bytes

    def __post_init__(self) -> None:
        if len(self.raw) != PUBLIC_KEY_SIZE:
            raise MalformedError(f"an Ed25519 public key is {PUBLIC_KEY_SIZE} bytes")

    @property
    def key_id(self) -> str:
        return key_id(self.raw)

    @property
    def b64(self) -> str:
        return b64encode(self.raw)

    def wire(self) -> dict[str, str]:
        """The contract's key object: {"key": KEYID, "pub": base64(raw)}."""
        return {"key": self.key_id, "pub": self.b64}

    def verify(self, signature: bytes, message: bytes) -> None:
        """Raise SignatureError unless ``signature`` is valid for ``message``."""
        try:
            Ed25519PublicKey.from_public_bytes(self.raw).verify(signature, message)
        except InvalidSignature as exc:
            raise SignatureError(f"signature by key {self.key_id} does not verify") from exc

    @classmethod
    def from_wire(cls, wire: dict[str, str]) -> PublicKey:
        key = cls(b64decode(wire["pub"], size=PUBLIC_KEY_SIZE, what="public key"))
        if key.key_id != wire["key"]:
            raise MalformedError(f"key id {wire['key']} does not match its public key")
        return key


class PrivateKey:
    """An Ed25519 signing key. Not a dataclass: the secret must not appear in reprs."""

    __slots__ = ("_key", "public")

    def __init__(self, key: Ed25519PrivateKey) -> None:
        self._key = key
        self.public = PublicKey(
            key.public_key().public_bytes(
                serialization.Encoding.Raw, serialization.PublicFormat.Raw
            )
        )

    @classmethod
    def generate(cls) -> PrivateKey:
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_seed(cls, seed: bytes) -> PrivateKey:
        """Deterministic key from a 32-byte seed (demo and tests only)."""
        return cls(Ed25519PrivateKey.from_private_bytes(hashlib.sha256(seed).digest()))

    @property
    def key_id(self) -> str:
        return self.public.key_id

    def sign(self, message: bytes) -> bytes:
        return self._key.sign(message)

    def __repr__(self) -> str:
        return f"PrivateKey(key_id={self.key_id})"

    def to_pem(self, passphrase: bytes | None = None) -> bytes:
        encryption: serialization.KeySerializationEncryption = (
            serialization.BestAvailableEncryption(passphrase)
            if passphrase
            else serialization.NoEncryption()
        )
        return self._key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
        )

    @classmethod
    def from_pem(cls, data: bytes, passphrase: bytes | None = None) -> PrivateKey:
        try:
            key = serialization.load_pem_private_key(data, password=passphrase or None)
        except (ValueError, TypeError) as exc:
            raise KeyFileError(f"not a readable PKCS#8 PEM key: {exc}") from exc
        if not isinstance(key, Ed25519PrivateKey):
            raise KeyFileError("the key is not Ed25519")
        return cls(key)

    def save(self, path: Path, passphrase: bytes | None = None) -> None:
        """Write the key as PKCS#8 PEM, readable by its owner only."""
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(self.to_pem(passphrase))
        path.chmod(0o600)

    @classmethod
    def load(cls, path: Path, passphrase: bytes | None = None) -> PrivateKey:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise KeyFileError(f"cannot read key file {path}: {exc.strerror}") from exc
        return cls.from_pem(data, passphrase)


def principal_file_name(principal: str) -> str:
    """DESIGN §7: `:` in a principal is written `-` (region:31 -> region-31.pem)."""
    return principal.replace(":", "-") + ".pem"


def witness_file_name(region_code: str) -> str:
    return f"region-{region_code}.witness.pem"
