"""C2SP signed notes (c2sp.org/signed-note), with Ed25519 keys and vkeys.

A signed note is a text ending in a newline, a blank line, then one or more
signature lines ``— <key name> base64(key hash || signature)``. The text is
separated from the signatures by the *last* blank line, so the text itself may
contain blank lines. This module is the one place that reads and writes that
format; checkpoints and witness cosignatures (``signing.checkpoint``) build on it.

Keys are exchanged as *vkeys* (the golang.org/x/mod/sumdb/note verifier key
format, referenced by c2sp.org/tlog-cosignature as "vkeys"):
``<name>+<hex key hash>+<base64(signature type || public key)>``, where the key
hash is ``SHA-256(name || "\\n" || signature type || public key)[:4]``.

Verifiers raise ``VerificationError``; malformed input raises ``MalformedError``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from schemas.errors import MalformedError, SignatureError, VerificationError
from schemas.limits import NOTE_BYTES_MAX, NOTE_SIGNATURES_MAX
from signing.keys import PUBLIC_KEY_SIZE, PrivateKey, PublicKey, b64decode, b64encode

# Signature type bytes assigned by c2sp.org/signed-note ("Signature types").
SIG_TYPE_ED25519 = 0x01
SIG_TYPE_COSIGNATURE_V1 = 0x04  # timestamped Ed25519 witness cosignature

KEY_HASH_SIZE = 4
SIGNATURE_LINE_PREFIX = "\u2014 "  # em dash, space

_HEX_KEY_HASH = re.compile(r"[0-9a-fA-F]{8}")


def is_valid_key_name(name: str) -> bool:
    """Key names are non-empty, valid UTF-8, and free of Unicode spaces and ``+``.

    ``str.isspace`` covers every Unicode White_Space character (and a few more
    control characters, which a note may not contain anyway). Control characters
    are refused too because they may not appear anywhere in a note.
    """
    if not name or "+" in name:
        return False
    if any(ch.isspace() or ord(ch) < 0x20 for ch in name):
        return False
    return _is_utf8(name)


def _is_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates
        return False
    return True


def _check_key_name(name: str) -> None:
    if not isinstance(name, str) or not is_valid_key_name(name):
        raise MalformedError(f"invalid note key name {name!r}")


def key_hash(name: str, sig_type: int, public: PublicKey) -> bytes:
    """The 4-byte key ID: SHA-256(name || 0x0A || type || 32-byte public key)[:4]."""
    material = name.encode("utf-8") + b"\n" + bytes([sig_type]) + public.raw
    return hashlib.sha256(material).digest()[:KEY_HASH_SIZE]


def encode_vkey(name: str, sig_type: int, public: PublicKey) -> str:
    """``<name>+<lowercase hex key hash>+<base64(type || public key)>``."""
    _check_key_name(name)
    digest = key_hash(name, sig_type, public).hex()
    return f"{name}+{digest}+{b64encode(bytes([sig_type]) + public.raw)}"


def parse_vkey(vkey: str, sig_type: int) -> tuple[str, PublicKey, bytes]:
    """Parse a vkey whose type byte must be ``sig_type``: (name, public, key hash).

    Strict like Go's ``note.NewVerifier``: exactly three ``+``-separated parts
    (the base64 part may itself contain ``+``), 8 hex digits, canonical base64
    of the type byte and a 32-byte key, and a key hash that matches the name and
    key. Other key types are refused rather than ignored: a trust file naming a
    key this code cannot check is a configuration mistake.
    """
    if not isinstance(vkey, str):
        raise MalformedError("a vkey must be a string")
    name, _, rest = vkey.partition("+")
    hash_hex, _, key_b64 = rest.partition("+")
    _check_key_name(name)
    if not _HEX_KEY_HASH.fullmatch(hash_hex):
        raise MalformedError(f"vkey {name}: the key hash must be 8 hex digits")
    encoded = b64decode(key_b64, what=f"vkey {name} key")
    if len(encoded) != 1 + PUBLIC_KEY_SIZE:
        raise MalformedError(f"vkey {name}: an Ed25519 key is 1 + {PUBLIC_KEY_SIZE} bytes")
    if encoded[0] != sig_type:
        raise MalformedError(
            f"vkey {name}: signature type 0x{encoded[0]:02x}, expected 0x{sig_type:02x}"
        )
    public = PublicKey(encoded[1:])
    digest = key_hash(name, sig_type, public)
    if digest != bytes.fromhex(hash_hex):
        raise MalformedError(f"vkey {name}: key hash {hash_hex} does not match the key")
    return name, public, digest


@dataclass(frozen=True, slots=True)
class NoteVerifier:
    """A trusted Ed25519 note key (signature type 0x01), e.g. the log's key.

    ``key_hash`` must be the one computed from ``name`` and ``public``; it is
    stored so that signature lines can be matched without rehashing.
    """

    name: str
    public: PublicKey
    key_hash: bytes

    def __post_init__(self) -> None:
        _check_key_name(self.name)
        if self.key_hash != key_hash(self.name, SIG_TYPE_ED25519, self.public):
            raise MalformedError(f"key hash does not match note key {self.name}")

    @classmethod
    def from_public(cls, name: str, public: PublicKey) -> NoteVerifier:
        _check_key_name(name)
        return cls(name, public, key_hash(name, SIG_TYPE_ED25519, public))

    @classmethod
    def from_vkey(cls, vkey: str) -> NoteVerifier:
        """Parse an Ed25519 (type 0x01) vkey; any other type is MalformedError."""
        return cls(*parse_vkey(vkey, SIG_TYPE_ED25519))

    @property
    def vkey(self) -> str:
        return encode_vkey(self.name, SIG_TYPE_ED25519, self.public)


class NoteSigner:
    """A named Ed25519 signing key. Not a dataclass: the secret stays out of reprs."""

    __slots__ = ("_key_hash", "key", "name")

    def __init__(self, name: str, key: PrivateKey) -> None:
        _check_key_name(name)
        self.name = name
        self.key = key
        self._key_hash = key_hash(name, SIG_TYPE_ED25519, key.public)

    @property
    def key_hash(self) -> bytes:
        return self._key_hash

    @property
    def verifier(self) -> NoteVerifier:
        return NoteVerifier(self.name, self.key.public, self._key_hash)

    @property
    def vkey(self) -> str:
        return self.verifier.vkey

    def __repr__(self) -> str:
        return f"NoteSigner(name={self.name!r}, key_hash={self._key_hash.hex()})"


@dataclass(frozen=True, slots=True)
class NoteSignature:
    """One signature line: ``signature`` is the bytes after the 4-byte key hash."""

    name: str
    key_hash: bytes
    signature: bytes

    @property
    def line(self) -> str:
        """The signature line as it appears in a note, newline included."""
        encoded = b64encode(self.key_hash + self.signature)
        return f"{SIGNATURE_LINE_PREFIX}{self.name} {encoded}\n"


def _check_note_chars(text: str, what: str) -> None:
    """Notes are UTF-8 with no ASCII control characters other than newline."""
    if not _is_utf8(text):
        raise MalformedError(f"{what} is not valid UTF-8")
    for ch in text:
        if ord(ch) < 0x20 and ch != "\n":
            raise MalformedError(f"{what} contains control character U+{ord(ch):04X}")


def _check_note_size(note: str) -> None:
    """Checked before anything else walks the note, to bound the work."""
    if len(note) > NOTE_BYTES_MAX:  # characters <= bytes: cheap early refusal
        raise MalformedError(f"a note may be at most {NOTE_BYTES_MAX} bytes")
    try:
        size = len(note.encode("utf-8"))
    except UnicodeEncodeError as exc:
        raise MalformedError("note is not valid UTF-8") from exc
    if size > NOTE_BYTES_MAX:
        raise MalformedError(f"a note may be at most {NOTE_BYTES_MAX} bytes")


def parse_signature_line(line: str) -> NoteSignature:
    """Parse one signature line, without its trailing newline."""
    if not line.startswith(SIGNATURE_LINE_PREFIX):
        raise MalformedError("a note signature line must start with an em dash and a space")
    name, sep, encoded = line[len(SIGNATURE_LINE_PREFIX) :].partition(" ")
    _check_key_name(name)
    if not sep or not encoded:
        raise MalformedError(f"signature line of {name} has no signature")
    raw = b64decode(encoded, what=f"signature of {name}")
    if len(raw) <= KEY_HASH_SIZE:
        raise MalformedError(f"signature of {name} is too short")
    return NoteSignature(name, raw[:KEY_HASH_SIZE], raw[KEY_HASH_SIZE:])


def parse_note(note: str) -> tuple[str, list[NoteSignature]]:
    """Split a signed note into its text and signatures; nothing is verified.

    The text is everything up to and including the newline before the *last*
    blank line; the rest must be 1..NOTE_SIGNATURES_MAX signature lines, each
    ending in a newline. Every signature is returned, known key or not.
    """
    if not isinstance(note, str):
        raise MalformedError("a note must be a string")
    _check_note_size(note)
    _check_note_chars(note, "note")
    split = note.rfind("\n\n")
    if split < 0:
        raise MalformedError("a note needs a blank line before its signatures")
    text, block = note[: split + 1], note[split + 2 :]
    if not block.endswith("\n"):
        raise MalformedError("a note must end with a newline after its last signature")
    lines = block[:-1].split("\n")
    if len(lines) > NOTE_SIGNATURES_MAX:
        raise MalformedError(f"a note may carry at most {NOTE_SIGNATURES_MAX} signatures")
    return text, [parse_signature_line(line) for line in lines]


def _check_text(text: str) -> None:
    if not isinstance(text, str) or not text:
        raise MalformedError("note text must be a non-empty string")
    if not text.endswith("\n"):
        raise MalformedError("note text must end with a newline")
    _check_note_chars(text, "note text")


def render_note(text: str, signatures: Iterable[NoteSignature]) -> str:
    """Text, blank line, signature lines; checked to parse back within the limits."""
    _check_text(text)
    lines = [sig.line for sig in signatures]
    if not lines:
        raise MalformedError("a note needs at least one signature")
    if len(lines) > NOTE_SIGNATURES_MAX:
        raise MalformedError(f"a note may carry at most {NOTE_SIGNATURES_MAX} signatures")
    note = text + "\n" + "".join(lines)
    _check_note_size(note)
    return note


def sign_note(text: str, signers: Sequence[NoteSigner]) -> str:
    """Sign ``text`` with every signer (type 0x01 Ed25519) and return the note.

    Two signers with the same name and key hash are refused: the second line
    would be a duplicate that verifiers reject.
    """
    _check_text(text)
    if not signers:
        raise MalformedError("a note needs at least one signer")
    seen: set[tuple[str, bytes]] = set()
    signatures: list[NoteSignature] = []
    message = text.encode("utf-8")
    for signer in signers:
        ident = (signer.name, signer.key_hash)
        if ident in seen:
            raise MalformedError(f"key {signer.name}+{signer.key_hash.hex()} is given twice")
        seen.add(ident)
        signatures.append(NoteSignature(signer.name, signer.key_hash, signer.key.sign(message)))
    return render_note(text, signatures)


def _index(verifiers: Sequence[NoteVerifier]) -> dict[tuple[str, bytes], NoteVerifier]:
    index: dict[tuple[str, bytes], NoteVerifier] = {}
    for verifier in verifiers:
        ident = (verifier.name, verifier.key_hash)
        other = index.setdefault(ident, verifier)
        if other.public != verifier.public:
            raise VerificationError(f"ambiguous key {verifier.name}+{verifier.key_hash.hex()}")
    return index


def verify_note(note: str, verifiers: Sequence[NoteVerifier]) -> tuple[str, list[NoteSignature]]:
    """Verify ``note`` against trusted keys: (text, signatures that verified).

    Per c2sp.org/signed-note, a signature is by a known key only if both its
    name and key hash match; others are ignored (``parse_note`` still lists
    them). Every signature by a known key must verify (the spec says a client
    SHOULD reject the whole note otherwise), a known key may sign only once, and
    at least one known key must have signed.
    """
    text, signatures = parse_note(note)
    index = _index(verifiers)
    message = text.encode("utf-8")
    verified: list[NoteSignature] = []
    seen: set[tuple[str, bytes]] = set()
    for sig in signatures:
        verifier = index.get((sig.name, sig.key_hash))
        if verifier is None:
            continue
        if (sig.name, sig.key_hash) in seen:
            raise VerificationError(f"key {sig.name}+{sig.key_hash.hex()} signed the note twice")
        seen.add((sig.name, sig.key_hash))
        try:
            verifier.public.verify(sig.signature, message)
        except SignatureError as exc:
            raise VerificationError(
                f"invalid signature for key {sig.name}+{sig.key_hash.hex()}"
            ) from exc
        verified.append(sig)
    if not verified:
        raise VerificationError("note has no signature by a trusted key")
    return text, verified
