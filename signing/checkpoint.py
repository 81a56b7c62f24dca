"""Checkpoints (c2sp.org/tlog-checkpoint) and witness cosignatures (c2sp.org/tlog-cosignature).

A checkpoint is a signed note whose text is ``origin\\nsize\\nbase64(root)\\n`` plus
optional extension lines. The log signs it with an Ed25519 note key (type 0x01)
whose name is the origin (DESIGN §4: "key name = origin").

Region witnesses add Ed25519 *cosignature/v1* lines (signature type 0x04) to the
same note. A cosignature signs ``"cosignature/v1\\ntime <T>\\n" + checkpoint text``
and its line carries ``key hash(4) || uint64 big-endian T || Ed25519 sig(64)``.
The key hash is ``SHA-256(name || "\\n" || 0x04 || public key)[:4]``; because the
Ed25519 message does not commit to the witness name, a witness key must not be
shared by two witnesses (nor reused as a log key).

Witness keys in trust files are vkeys **with type byte 0x04**, the form
tlog-cosignature defines: ``<name>+<hex key hash>+<base64(0x04 || public key)>``,
whose key hash is the one found in the witness's signature lines. Log keys are
ordinary type 0x01 vkeys (``NoteVerifier.from_vkey``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from schemas.errors import ConfigError, MalformedError, SignatureError, VerificationError
from schemas.limits import NOTE_BYTES_MAX
from signing.keys import SIGNATURE_SIZE, PublicKey, b64decode, b64encode
from signing.note import (
    SIG_TYPE_COSIGNATURE_V1,
    NoteSignature,
    NoteSigner,
    NoteVerifier,
    encode_vkey,
    is_valid_key_name,
    key_hash,
    parse_note,
    parse_signature_line,
    parse_vkey,
    render_note,
    sign_note,
    verify_note,
)

ROOT_HASH_SIZE = 32  # an RFC 6962 SHA-256 tree head
# Sizes are int64 in every Go implementation (tlog.Tree.N); refuse what they cannot read.
CHECKPOINT_SIZE_MAX = 2**63 - 1
CHECKPOINT_SIZE_DIGITS_MAX = len(str(CHECKPOINT_SIZE_MAX))
# tlog-cosignature encodes the origin as opaque<1..2^8-1> (ML-DSA message) and
# torchwood refuses longer origins in every checkpoint; do the same.
ORIGIN_BYTES_MAX = 255

COSIGNATURE_V1_HEADER = "cosignature/v1\n"
TIMESTAMP_SIZE = 8
COSIGNATURE_SIZE = TIMESTAMP_SIZE + SIGNATURE_SIZE  # after the key hash
TIMESTAMP_MAX = 2**63 - 1  # "It MUST NOT exceed 2^63 - 1" (tlog-cosignature)

_DECIMAL = re.compile(r"0|[1-9][0-9]*")  # [0-9] is ASCII only, unlike \d


def _check_line(value: object, what: str) -> None:
    """A checkpoint line: a non-empty str, UTF-8, no newline or other control char."""
    if not isinstance(value, str) or not value:
        raise MalformedError(f"checkpoint {what} must be a non-empty string")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise MalformedError(f"checkpoint {what} is not valid UTF-8") from exc
    if any(ord(ch) < 0x20 for ch in value):
        raise MalformedError(f"checkpoint {what} contains a newline or control character")


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A tree head: origin, tree size, RFC 6962 root hash, optional extension lines.

    Extension lines are opaque and NOT RECOMMENDED by the spec (monitors cannot
    audit them); they are signed and cosigned like the rest of the body.
    """

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _check_line(self.origin, "origin")
        if len(self.origin.encode("utf-8")) > ORIGIN_BYTES_MAX:
            raise MalformedError(f"checkpoint origin may be at most {ORIGIN_BYTES_MAX} bytes")
        if not isinstance(self.size, int) or isinstance(self.size, bool):
            raise MalformedError("checkpoint size must be an integer")
        if not 0 <= self.size <= CHECKPOINT_SIZE_MAX:
            raise MalformedError(f"checkpoint size must be in 0..{CHECKPOINT_SIZE_MAX}")
        if not isinstance(self.root, bytes) or len(self.root) != ROOT_HASH_SIZE:
            raise MalformedError(f"checkpoint root hash must be {ROOT_HASH_SIZE} bytes")
        if not isinstance(self.extensions, tuple):
            raise MalformedError("checkpoint extensions must be a tuple of lines")
        for line in self.extensions:
            _check_line(line, "extension line")

    def body(self) -> str:
        """The note text: every line, extensions included, ends in a newline."""
        lines = [self.origin, str(self.size), b64encode(self.root), *self.extensions]
        return "".join(line + "\n" for line in lines)

    @classmethod
    def parse(cls, body: str) -> Checkpoint:
        """Parse a checkpoint note text strictly (MalformedError otherwise).

        At least three newline-terminated non-empty lines; the size in ASCII
        decimal without leading zeroes; the root in canonical standard base64
        of exactly 32 bytes.
        """
        if not isinstance(body, str) or not body.endswith("\n"):
            raise MalformedError("a checkpoint body must end with a newline")
        if len(body) > NOTE_BYTES_MAX:
            raise MalformedError(f"a checkpoint may be at most {NOTE_BYTES_MAX} bytes")
        lines = body[:-1].split("\n")
        if len(lines) < 3:
            raise MalformedError("a checkpoint has an origin, a size and a root hash line")
        origin, size_text, root_text, *extensions = lines
        if len(size_text) > CHECKPOINT_SIZE_DIGITS_MAX or not _DECIMAL.fullmatch(size_text):
            raise MalformedError("checkpoint size must be decimal without leading zeroes")
        root = b64decode(root_text, size=ROOT_HASH_SIZE, what="checkpoint root hash")
        return cls(origin, int(size_text), root, tuple(extensions))


def sign_checkpoint(checkpoint: Checkpoint, signer: NoteSigner) -> str:
    """The log's signed note for ``checkpoint``.

    The key name must be the origin (DESIGN §4, and tlog-checkpoint's SHOULD),
    so a mismatch is a misconfigured log key: ConfigError.
    """
    if signer.name != checkpoint.origin:
        raise ConfigError(
            f"log key {signer.name!r} is not named after origin {checkpoint.origin!r}"
        )
    return sign_note(checkpoint.body(), [signer])


def open_checkpoint(note: str, log_verifier: NoteVerifier) -> Checkpoint:
    """Verify the log's signature on ``note``, then parse it and check the origin.

    The text is parsed only after the signature verified (signed-note: the text
    MUST be ignored until then). The origin must be the log key's name, so a log
    key cannot vouch for another log's checkpoints.
    """
    text, _ = verify_note(note, [log_verifier])
    checkpoint = Checkpoint.parse(text)
    if checkpoint.origin != log_verifier.name:
        raise VerificationError(
            f"checkpoint origin {checkpoint.origin!r} is not the log key name {log_verifier.name!r}"
        )
    return checkpoint


@dataclass(frozen=True, slots=True)
class CosignatureVerifier:
    """A trusted witness key for Ed25519 cosignature/v1 (key hash with type 0x04)."""

    name: str
    public: PublicKey
    key_hash: bytes

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not is_valid_key_name(self.name):
            raise MalformedError(f"invalid witness key name {self.name!r}")
        if self.key_hash != key_hash(self.name, SIG_TYPE_COSIGNATURE_V1, self.public):
            raise MalformedError(f"key hash does not match witness key {self.name}")

    @classmethod
    def from_public(cls, name: str, public: PublicKey) -> CosignatureVerifier:
        if not isinstance(name, str) or not is_valid_key_name(name):
            raise MalformedError(f"invalid witness key name {name!r}")
        return cls(name, public, key_hash(name, SIG_TYPE_COSIGNATURE_V1, public))

    @classmethod
    def from_vkey(cls, vkey: str) -> CosignatureVerifier:
        """Parse a witness vkey with type byte 0x04 (tlog-cosignature's vkey form).

        A type 0x01 vkey is refused: its key hash is not the one in the
        witness's signature lines, and accepting it would blur log and witness keys.
        """
        return cls(*parse_vkey(vkey, SIG_TYPE_COSIGNATURE_V1))

    @property
    def vkey(self) -> str:
        return encode_vkey(self.name, SIG_TYPE_COSIGNATURE_V1, self.public)


def cosignature_message(checkpoint: Checkpoint, timestamp_s: int) -> bytes:
    """``cosignature/v1\\ntime <T>\\n`` followed by the whole checkpoint body."""
    _check_timestamp(timestamp_s)
    header = f"{COSIGNATURE_V1_HEADER}time {timestamp_s}\n"
    return (header + checkpoint.body()).encode("utf-8")


def _check_timestamp(timestamp_s: int) -> None:
    if not isinstance(timestamp_s, int) or isinstance(timestamp_s, bool):
        raise MalformedError("a cosignature timestamp must be an integer")
    if not 0 <= timestamp_s <= TIMESTAMP_MAX:
        raise MalformedError(f"a cosignature timestamp must be in 0..{TIMESTAMP_MAX}")


def cosign(checkpoint: Checkpoint, witness: NoteSigner, timestamp_s: int) -> str:
    """The witness's cosignature line (ending in a newline) for ``checkpoint`` at T.

    The caller (the witness) must first have checked the log signature and a
    consistency proof from the last size it cosigned (c2sp.org/tlog-witness).
    """
    public = witness.key.public
    digest = key_hash(witness.name, SIG_TYPE_COSIGNATURE_V1, public)
    signature = witness.key.sign(cosignature_message(checkpoint, timestamp_s))
    payload = timestamp_s.to_bytes(TIMESTAMP_SIZE, "big") + signature
    return NoteSignature(witness.name, digest, payload).line


def cosignature_timestamp(note_signature: NoteSignature) -> int:
    """The timestamp T of an Ed25519 cosignature/v1 signature, without verifying it."""
    payload = note_signature.signature
    if len(payload) != COSIGNATURE_SIZE:
        raise MalformedError(
            f"a cosignature is {COSIGNATURE_SIZE} bytes after the key hash, got {len(payload)}"
        )
    timestamp = int.from_bytes(payload[:TIMESTAMP_SIZE], "big")
    if timestamp > TIMESTAMP_MAX:
        raise MalformedError(f"cosignature timestamp exceeds {TIMESTAMP_MAX}")
    return timestamp


def verify_cosignature(
    checkpoint: Checkpoint, note_signature: NoteSignature, verifier: CosignatureVerifier
) -> int:
    """Verify one witness cosignature on ``checkpoint``; return its timestamp.

    Future timestamps are not refused here (the spec says verifiers MAY); the
    caller compares the result with its clock if it cares.
    """
    ident = f"{verifier.name}+{verifier.key_hash.hex()}"
    if (note_signature.name, note_signature.key_hash) != (verifier.name, verifier.key_hash):
        raise VerificationError(f"signature is not by witness key {ident}")
    try:
        timestamp = cosignature_timestamp(note_signature)
    except MalformedError as exc:
        raise VerificationError(f"malformed cosignature by {ident}: {exc.detail}") from exc
    message = cosignature_message(checkpoint, timestamp)
    try:
        verifier.public.verify(note_signature.signature[TIMESTAMP_SIZE:], message)
    except SignatureError as exc:
        raise VerificationError(f"invalid cosignature by witness key {ident}") from exc
    return timestamp


def _parse_lines(chunks: Sequence[str]) -> list[NoteSignature]:
    """Each chunk is one or more complete signature lines (a tlog-witness response body)."""
    parsed: list[NoteSignature] = []
    for chunk in chunks:
        if not isinstance(chunk, str) or not chunk.endswith("\n"):
            raise MalformedError("a cosignature line must end with a newline")
        parsed.extend(parse_signature_line(line) for line in chunk[:-1].split("\n"))
    return parsed


def add_cosignatures(note: str, lines: Sequence[str]) -> str:
    """Append signature lines to a signed note; nothing is verified here.

    Each element of ``lines`` holds one or more newline-terminated signature
    lines, so a tlog-witness ``add-checkpoint`` response body can be passed as
    is. As with Go's ``note.Sign``, a new line replaces an existing one with the
    same key name and key hash (a witness that cosigned again). Check the result
    with ``verify_cosigned_checkpoint``.
    """
    text, existing = parse_note(note)
    new = _parse_lines(lines)
    idents = {(sig.name, sig.key_hash) for sig in new}
    if len(idents) != len(new):
        raise MalformedError("two new signature lines are by the same key")
    kept = [sig for sig in existing if (sig.name, sig.key_hash) not in idents]
    return render_note(text, kept + new)


def _index(
    witnesses: Sequence[CosignatureVerifier],
) -> dict[tuple[str, bytes], CosignatureVerifier]:
    index: dict[tuple[str, bytes], CosignatureVerifier] = {}
    for witness in witnesses:
        other = index.setdefault((witness.name, witness.key_hash), witness)
        if other.public != witness.public:
            raise VerificationError(
                f"ambiguous witness key {witness.name}+{witness.key_hash.hex()}"
            )
    return index


def verify_cosigned_checkpoint(
    note: str, log_verifier: NoteVerifier, witnesses: Sequence[CosignatureVerifier]
) -> tuple[Checkpoint, dict[str, int]]:
    """Open a checkpoint and verify every cosignature by a trusted witness.

    Returns the checkpoint and {witness name: timestamp} for the witnesses that
    cosigned; the caller applies its quorum to the dict. Lines by unknown keys
    are ignored (signed-note); a line by a trusted witness key that does not
    verify, or a second line by the same key, raises VerificationError. If one
    witness name has two trusted keys (rotation) that both cosigned, the later
    timestamp is reported.
    """
    checkpoint = open_checkpoint(note, log_verifier)
    _, signatures = parse_note(note)
    index = _index(witnesses)
    seen: set[tuple[str, bytes]] = set()
    cosigned: dict[str, int] = {}
    for sig in signatures:
        witness = index.get((sig.name, sig.key_hash))
        if witness is None:
            continue
        if (sig.name, sig.key_hash) in seen:
            raise VerificationError(f"witness key {sig.name}+{sig.key_hash.hex()} cosigned twice")
        seen.add((sig.name, sig.key_hash))
        timestamp = verify_cosignature(checkpoint, sig, witness)
        cosigned[witness.name] = max(timestamp, cosigned.get(witness.name, timestamp))
    return checkpoint, cosigned
