"""Ed25519 keys: generation, PKCS#8 PEM files, key ids and the wire form of a key.

Public keys are checked where they are made: a small-order key (one of the 8 torsion
points) lets anyone sign as its holder, so it is refused along with non-canonical
encodings and bytes that are no point of the prime-order subgroup. Signatures are
verified by libsodium (PyNaCl), which also refuses a non-canonical S and a small-order R
("Taming the many EdDSAs", Chalkias et al. 2020).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import stat
import threading
import warnings
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import nacl.bindings
import nacl.exceptions
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from schemas.errors import KeyFileError, MalformedError, SignatureError
from schemas.files import FileRefused, open_regular, read_at_most, write_new
from schemas.limits import CHECKED_PUBLIC_KEYS_CACHED, KEY_FILE_BYTES_MAX

PUBLIC_KEY_SIZE = 32
SIGNATURE_SIZE = 64
KEY_ID_SIZE = 16  # bytes of SHA-256(pub) kept in a KEYID (DESIGN §3)
KEY_FILE_MODE = 0o600
KEY_FOLDER_MODE = 0o700

_FIELD_PRIME = 2**255 - 19
_Y_MASK = (1 << 255) - 1  # the top bit of an encoding is the sign of x
# libsodium's ge25519_has_small_order blocklist, as y with the sign bit cleared: the y of
# the 8 torsion points (0, 1, p-1 and the two order-8 values) and the non-canonical
# encodings p and p+1 of 0 and 1. Either sign bit is refused.
_SMALL_ORDER_Y = frozenset(
    {
        0,
        1,
        _FIELD_PRIME - 1,
        2707385501144840649318225287225658788936804267575313519463743609750303402022,
        55188659117513257062467267217118295137698188065244968500265048394206261417927,
        _FIELD_PRIME,
        _FIELD_PRIME + 1,
    }
)


class KeyFilePermissionWarning(UserWarning):
    """A private key file that its group or other users may read or write."""


def key_id(public_raw: bytes) -> str:
    """KEYID = lowercase hex of SHA-256(raw 32-byte public key)[:16 bytes]."""
    if len(public_raw) != PUBLIC_KEY_SIZE:
        raise MalformedError(f"an Ed25519 public key is {PUBLIC_KEY_SIZE} bytes")
    return hashlib.sha256(public_raw).digest()[:KEY_ID_SIZE].hex()


def b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def b64decode(text: str, *, size: int | None = None, what: str = "value") -> bytes:
    """Strict standard base64 (with padding); optionally of an exact decoded size.
    binascii's strict mode refuses what ``base64.b64decode(validate=True)`` refuses
    (characters outside the alphabet, misplaced or excess padding) without its regular
    expression, several times faster: every signature and declared key passes here."""
    try:
        data = binascii.a2b_base64(text.encode("ascii"), strict_mode=True)
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise MalformedError(f"{what} is not standard base64") from exc
    if size is not None and len(data) != size:
        raise MalformedError(f"{what} must be {size} bytes, got {len(data)}")
    if binascii.b2a_base64(data, newline=False).decode("ascii") != text:
        raise MalformedError(f"{what} is not in canonical base64")
    return data


# Keys that passed _check_point(), oldest first; only keys that pass are kept. Bounded
# by CHECKED_PUBLIC_KEYS_CACHED. An OrderedDict, not a dict: evicting the oldest key is
# popitem(last=False), O(1), where a dict's next(iter()) walks over every slot its
# earlier deletions left empty (a batch of enrolments evicts thousands in a row).
_checked: OrderedDict[bytes, None] = OrderedDict()
_checked_lock = threading.Lock()


def _check_point(raw: bytes) -> None:
    """Raise MalformedError unless ``raw`` is a usable Ed25519 public key (cached)."""
    if raw not in _checked:
        _check_new_point(raw)
        remember_usable((raw,))


def usable_keys(pubs: Iterable[str]) -> list[bytes]:
    """The raw keys of those wire public keys (``pub``: canonical base64 of 32 bytes)
    that are usable, as PublicKey.from_wire() decodes and checks them; the others are
    left out. The verification worker checks the keys a batch declares with this."""
    usable = []
    for pub in pubs:
        try:
            raw = b64decode(pub, size=PUBLIC_KEY_SIZE, what="public key")
            _check_point(raw)
        except MalformedError:
            continue
        usable.append(raw)
    return usable


def remember_usable(raws: Iterable[bytes]) -> None:
    """Take ``raws`` as checked: each passed _check_point() here or in this program's
    own verification worker (ledger/verifying.py), so their next use is a cache hit;
    the oldest keys go once the cache passes CHECKED_PUBLIC_KEYS_CACHED."""
    with _checked_lock:
        for raw in raws:
            if len(raw) == PUBLIC_KEY_SIZE:
                _checked[bytes(raw)] = None
        while len(_checked) > CHECKED_PUBLIC_KEYS_CACHED:
            _checked.popitem(last=False)


def _check_new_point(raw: bytes) -> None:
    y = int.from_bytes(raw, "little") & _Y_MASK
    if y in _SMALL_ORDER_Y:
        raise MalformedError("small-order Ed25519 public key refused")
    if y >= _FIELD_PRIME:
        raise MalformedError("non-canonical encoding of an Ed25519 public key (y >= 2^255-19)")
    # On the curve: libsodium decodes the point (a square root of (y^2-1)/(d y^2+1)) and
    # refuses it when there is none; adding the point to itself is the cheapest binding
    # that decodes, about 18 us against 130 us for Euler's criterion in Python (every
    # enrolment brings a new key). tests/signing/test_weak_keys.py checks it against
    # Euler's criterion. A key with a torsion component added is not refused here:
    # verify() (libsodium's strict crypto_sign_open) refuses small-order R and A, and no
    # one can sign under such a key without its scalar.
    try:
        nacl.bindings.crypto_core_ed25519_add(raw, raw)
    except nacl.exceptions.RuntimeError as exc:
        raise MalformedError("Ed25519 public key does not decode to a curve point") from exc


@dataclass(frozen=True, slots=True)
class PublicKey:
    """A verifying key. ``raw`` is the 32-byte Ed25519 public key."""

    raw: bytes

    def __post_init__(self) -> None:
        if len(self.raw) != PUBLIC_KEY_SIZE:
            raise MalformedError(f"an Ed25519 public key is {PUBLIC_KEY_SIZE} bytes")
        _check_point(bytes(self.raw))

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
        """Raise SignatureError unless ``signature`` is valid for ``message``: libsodium's
        crypto_sign_open, strict like crypto_sign_verify_detached (S < L, R not of small
        order, the key canonical and not of small order)."""
        # The length first: crypto_sign_open splits signature+message at 64 bytes.
        if len(signature) != SIGNATURE_SIZE:
            raise SignatureError(f"signature by key {self.key_id} is not {SIGNATURE_SIZE} bytes")
        try:
            nacl.bindings.crypto_sign_open(bytes(signature) + bytes(message), self.raw)
        except nacl.exceptions.BadSignatureError as exc:
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

    def derive_secret(self, label: bytes) -> bytes:
        """A 32-byte secret for ``label``, derived from this key (HMAC-SHA256 keyed by the
        raw private key): the writer seals its projection rows with one, so only a holder
        of the operator key can write rows the writer will trust."""
        raw = self._key.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
        return hmac.new(raw, b"alliance-ledger/v1/derive\n" + label, hashlib.sha256).digest()

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

    def save(
        self, path: Path, passphrase: bytes | None = None, *, sync_folder: bool = True
    ) -> None:
        """Write the key as PKCS#8 PEM into a new file, readable by its owner only.

        Never overwrites: an existing file or link at ``path`` is KeyFileError. The folder
        is fsynced too unless ``sync_folder`` is False (a caller saving many keys syncs
        it once)."""
        try:
            path.parent.mkdir(mode=KEY_FOLDER_MODE, parents=True, exist_ok=True)
        except OSError as exc:
            raise KeyFileError(f"cannot create key folder {path.parent}: {exc}") from exc
        _write_new_file(path, self.to_pem(passphrase))
        if sync_folder:
            fsync_key_folder(path.parent)

    @classmethod
    def load(cls, path: Path, passphrase: bytes | None = None) -> PrivateKey:
        """Read a key file; KeyFilePermissionWarning if others may read or write it."""
        return cls.from_pem(_read_key_file(path), passphrase)


def _write_new_file(path: Path, data: bytes) -> None:
    """Create the key file ``path`` (schemas.files.write_new: mode 0600 from the start,
    never a link followed, never an existing file, removed again on any failure)."""
    try:
        write_new(path, data, KEY_FILE_MODE)
    except FileRefused as exc:
        if exc.exists:
            raise KeyFileError(f"{exc.reason}; a key file is never overwritten") from exc
        raise KeyFileError(f"key file: {exc.reason}") from exc


def fsync_key_folder(folder: Path) -> None:
    """Make the new names in ``folder`` durable (the keys go to disk before the genesis)."""
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as exc:
        raise KeyFileError(f"cannot sync key folder {folder}: {exc.strerror}") from exc


def _read_key_file(path: Path) -> bytes:
    """At most KEY_FILE_BYTES_MAX bytes of a regular file (schemas.files: a FIFO or a
    device planted at ``path`` is refused at once, never waited on or read)."""
    try:
        fd, info = open_regular(path)
    except FileRefused as exc:
        raise KeyFileError(f"key file: {exc.reason}") from exc
    try:
        if info.st_size > KEY_FILE_BYTES_MAX:
            raise KeyFileError(f"key file {path} is over {KEY_FILE_BYTES_MAX} bytes")
        if info.st_mode & 0o077:
            warnings.warn(
                KeyFilePermissionWarning(
                    f"key file {path} has mode {stat.S_IMODE(info.st_mode):04o}: other "
                    f"users may read it; chmod 600 {path}"
                ),
                stacklevel=3,
            )
        data = read_at_most(fd, KEY_FILE_BYTES_MAX + 1)
    except FileRefused as exc:
        raise KeyFileError(f"cannot read key file {path}: {exc.reason}") from exc
    finally:
        os.close(fd)
    if len(data) > KEY_FILE_BYTES_MAX:
        raise KeyFileError(f"key file {path} is over {KEY_FILE_BYTES_MAX} bytes")
    return data


def principal_file_name(principal: str) -> str:
    """DESIGN §7: `:` in a principal is written `-` (region:31 -> region-31.pem)."""
    return principal.replace(":", "-") + ".pem"


def witness_file_name(region_code: str) -> str:
    return f"region-{region_code}.witness.pem"
