"""C2SP signed notes, checked against the vectors published with the spec and Go's sumdb/note.

Vectors:
* golang/mod sumdb/note/note_test.go (TestNewVerifier, TestSign, TestOpen): the
  PeterNeumann and EnochRoot keys, the PeterNeumann signer key and their signatures.
* C2SP/C2SP signed-note.md: the quasimodo.example/salvatore example note.
"""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from schemas.errors import MalformedError, VerificationError
from schemas.limits import NOTE_SIGNATURES_MAX
from signing.keys import PrivateKey
from signing.note import (
    NoteSignature,
    NoteSigner,
    NoteVerifier,
    parse_note,
    sign_note,
    verify_note,
)

PETER_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
PETER_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
ENOCH_VKEY = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop"
TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
PETER_SIG = (
    "— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgY"
    "N1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
)
ENOCH_SIG = (
    "— EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1a"
    "GrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n"
)
PETER_NOTE = TEXT + "\n" + PETER_SIG

# C2SP signed-note.md, the example at the top of the spec (no public key is given).
QUASIMODO_NOTE = (
    "Ognuno sta solo sul cuor della terra\n"
    "trafitto da un raggio di sole:\n"
    "\n"
    "ed è subito sera.\n"
    "\n"
    "— quasimodo.example/salvatore NnugSzTjtVAewIS+Z/iJhUPeFDkO/5QQ2i5ddnGITLlC+"
    "EhfLW9oJKONrMouFSQU0xMcXxj99ihAQwaqP3ZekRwNtIc=\n"
)


def peter_signer() -> NoteSigner:
    """The Go test's signer key: PRIVATE+KEY+<name>+<hash>+base64(0x01 || seed)."""
    encoded = base64.b64decode(PETER_SKEY.split("+", 4)[4])
    assert encoded[0] == 0x01
    return NoteSigner("PeterNeumann", PrivateKey(Ed25519PrivateKey.from_private_bytes(encoded[1:])))


def peter() -> NoteVerifier:
    return NoteVerifier.from_vkey(PETER_VKEY)


def enoch() -> NoteVerifier:
    return NoteVerifier.from_vkey(ENOCH_VKEY)


# --- vkeys -----------------------------------------------------------------------------


def test_vkey_vector_parses_and_round_trips() -> None:
    verifier = peter()
    assert verifier.name == "PeterNeumann"
    assert verifier.key_hash == bytes.fromhex("c74f20a3")
    assert verifier.vkey == PETER_VKEY
    assert NoteVerifier.from_public(verifier.name, verifier.public) == verifier


def test_every_mangled_vkey_is_rejected() -> None:
    """Go's TestNewVerifier: every proper substring and every one-character change fails."""
    for i in range(len(PETER_VKEY) + 1):
        for j in range(i + 1, len(PETER_VKEY) + 1):
            if (i, j) != (0, len(PETER_VKEY)):
                with pytest.raises(MalformedError):
                    NoteVerifier.from_vkey(PETER_VKEY[i:j])
    for i, ch in enumerate(PETER_VKEY):
        with pytest.raises(MalformedError):
            NoteVerifier.from_vkey(PETER_VKEY[:i] + chr(ord(ch) + 1) + PETER_VKEY[i + 1 :])


@pytest.mark.parametrize(
    "vkey",
    [
        # Go's TestNewVerifier: wrong key length and unknown algorithm, key hashes adjusted.
        "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==",
        "PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        # transparency-dev/formats note_cosigv1_test.go: a type 0x04 (cosignature) vkey.
        "remora.n621.de+da77ade7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2",
        PETER_VKEY + " ",
        "Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
    ],
)
def test_bad_vkeys_are_rejected(vkey: str) -> None:
    with pytest.raises(MalformedError):
        NoteVerifier.from_vkey(vkey)


# --- signing ---------------------------------------------------------------------------


def test_sign_reproduces_the_go_vector() -> None:
    signer = peter_signer()
    assert signer.vkey == PETER_VKEY
    assert signer.key_hash == bytes.fromhex("c74f20a3")
    assert sign_note(TEXT, [signer]) == PETER_NOTE


def test_signer_repr_hides_the_secret() -> None:
    signer = peter_signer()
    assert repr(signer) == "NoteSigner(name='PeterNeumann', key_hash=c74f20a3)"


@pytest.mark.parametrize("name", ["", "a+b", "bad name", "tab\tname", "nbsp\u00a0name"])
def test_signer_names_must_be_valid(name: str) -> None:
    with pytest.raises(MalformedError):
        NoteSigner(name, PrivateKey.from_seed(b"k"))


@pytest.mark.parametrize("text", ["", "abc", "line\r\n", "tab\there\n", "nul\x00\n", "\udcff\n"])
def test_sign_rejects_bad_text(text: str) -> None:
    with pytest.raises(MalformedError):
        sign_note(text, [peter_signer()])


def test_sign_needs_distinct_signers() -> None:
    with pytest.raises(MalformedError):
        sign_note(TEXT, [])
    with pytest.raises(MalformedError):
        sign_note(TEXT, [peter_signer(), peter_signer()])


def test_text_may_end_with_a_blank_line() -> None:
    """The last blank line separates, so text may end in one (torchwood signs "Note\\n\\n")."""
    signer = NoteSigner("example.com/key", PrivateKey.from_seed(b"blank"))
    note = sign_note("Note\n\n", [signer])
    assert verify_note(note, [signer.verifier])[0] == "Note\n\n"


# --- opening ---------------------------------------------------------------------------


def test_open_the_go_vector() -> None:
    text, verified = verify_note(PETER_NOTE, [peter()])
    assert text == TEXT
    assert verified == [
        NoteSignature("PeterNeumann", bytes.fromhex("c74f20a3"), verified[0].signature)
    ]
    assert verified[0].line == PETER_SIG


def test_unknown_signature_is_ignored() -> None:
    note = TEXT + "\n" + PETER_SIG + ENOCH_SIG
    text, verified = verify_note(note, [peter()])
    assert text == TEXT
    assert [sig.name for sig in verified] == ["PeterNeumann"]
    _, parsed = parse_note(note)
    assert [(sig.name, sig.key_hash.hex()) for sig in parsed] == [
        ("PeterNeumann", "c74f20a3"),
        ("EnochRoot", "af0cfe78"),
    ]


def test_both_known_signatures_verify() -> None:
    _, verified = verify_note(TEXT + "\n" + PETER_SIG + ENOCH_SIG, [peter(), enoch()])
    assert [sig.name for sig in verified] == ["PeterNeumann", "EnochRoot"]


def test_no_known_signature_is_rejected() -> None:
    with pytest.raises(VerificationError):
        verify_note(TEXT + "\n" + PETER_SIG + ENOCH_SIG, [])
    with pytest.raises(VerificationError):
        verify_note(PETER_NOTE, [enoch()])


def test_same_name_other_key_is_unknown() -> None:
    """A key with the right name but another hash is not a known key: ignored, so rejected."""
    impostor = NoteSigner("PeterNeumann", PrivateKey.from_seed(b"impostor")).verifier
    with pytest.raises(VerificationError, match="no signature by a trusted key"):
        verify_note(PETER_NOTE, [impostor])


def test_invalid_signature_by_known_key_is_rejected() -> None:
    """Go's TestOpen: 'ABCD' spliced into the signature of a known key."""
    bad = TEXT + "\n" + PETER_SIG[:60] + "ABCD" + PETER_SIG[60:]
    with pytest.raises(VerificationError, match="invalid signature"):
        verify_note(bad, [peter()])
    # The valid Enoch signature does not rescue a note with a bad known signature.
    with pytest.raises(VerificationError):
        verify_note(bad + ENOCH_SIG, [peter(), enoch()])


def test_known_key_signing_twice_is_rejected() -> None:
    """Go drops repeated signatures; we refuse them (no conforming signer writes them)."""
    with pytest.raises(VerificationError, match="twice"):
        verify_note(TEXT + "\n" + PETER_SIG + PETER_SIG, [peter()])


def test_signature_limits() -> None:
    many_unknown = ENOCH_SIG * (NOTE_SIGNATURES_MAX - 1)
    _, verified = verify_note(TEXT + "\n" + many_unknown + PETER_SIG, [peter()])
    assert len(verified) == 1
    with pytest.raises(MalformedError):
        parse_note(TEXT + "\n" + PETER_SIG * (NOTE_SIGNATURES_MAX + 1))
    with pytest.raises(MalformedError):
        verify_note(TEXT + "\n" + PETER_SIG * 101, [peter()])


@pytest.mark.parametrize(
    "note",
    [
        # Go's TestOpen bad messages ("\xff" there is an invalid byte: a lone surrogate here).
        TEXT,
        TEXT + "\n",
        TEXT + "\n" + PETER_SIG[:-1],
        "\x01" + TEXT + "\n" + PETER_SIG,
        "\udcff" + TEXT + "\n" + PETER_SIG,
        TEXT + "\n" + "— Bad Name " + PETER_SIG.split(" ")[2],
        TEXT + "\n" + PETER_SIG + "Unexpected line.\n",
        # Ours: a hyphen instead of the em dash, CRLF, trailing blank line, non-canonical
        # base64, a signature that is only a key hash.
        TEXT + "\n" + "-" + PETER_SIG[1:],
        PETER_NOTE.replace("\n", "\r\n"),
        PETER_NOTE + "\n",
        TEXT + "\n" + PETER_SIG.replace("AM=", "AN="),
        TEXT + "\n" + "— PeterNeumann x08gow==\n",
        TEXT + "\n" + "— PeterNeumann \n",
        TEXT + "\n" + "— PeterNeumann\n",
    ],
)
def test_malformed_notes_are_rejected(note: str) -> None:
    with pytest.raises(MalformedError):
        parse_note(note)
    with pytest.raises(MalformedError):
        verify_note(note, [peter()])


def test_spec_example_splits_at_the_last_blank_line() -> None:
    text, signatures = parse_note(QUASIMODO_NOTE)
    assert text == (
        "Ognuno sta solo sul cuor della terra\ntrafitto da un raggio di sole:\n\n"
        "ed è subito sera.\n"
    )
    assert [sig.name for sig in signatures] == ["quasimodo.example/salvatore"]
    assert len(signatures[0].signature) == 64
    assert signatures[0].line == QUASIMODO_NOTE.rsplit("\n\n", maxsplit=1)[-1]


# --- tampering -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "tampered",
    [
        PETER_NOTE.replace("cryptography", "cryptographY"),  # one byte of the text
        PETER_NOTE.replace("problem,\nthen", "problem,\n\nthen"),  # blank line in the text
        "then you don't know what your problem is.\n"
        "If you think cryptography is the answer to your problem,\n\n" + PETER_SIG,  # reordered
        TEXT + "\n\n" + PETER_SIG,  # extra blank line before the signatures
        "\n" + PETER_NOTE,  # blank line before the text
    ],
)
def test_tampered_notes_fail_verification(tampered: str) -> None:
    with pytest.raises(VerificationError):
        verify_note(tampered, [peter()])


def test_flipped_signature_bit_fails() -> None:
    _, [sig] = parse_note(PETER_NOTE)
    flipped = bytearray(sig.signature)
    flipped[10] ^= 0x01
    note = TEXT + "\n" + NoteSignature(sig.name, sig.key_hash, bytes(flipped)).line
    with pytest.raises(VerificationError):
        verify_note(note, [peter()])


def test_ambiguous_verifiers_are_rejected() -> None:
    """Two trusted keys with one name+hash cannot be told apart (Go: 'ambiguous key')."""
    other = NoteSigner("PeterNeumann", PrivateKey.from_seed(b"other")).verifier
    clash = NoteVerifier.__new__(NoteVerifier)
    object.__setattr__(clash, "name", "PeterNeumann")
    object.__setattr__(clash, "public", other.public)
    object.__setattr__(clash, "key_hash", peter().key_hash)
    with pytest.raises(VerificationError, match="ambiguous"):
        verify_note(PETER_NOTE, [peter(), clash])
    # A verifier built normally cannot carry a key hash that is not its own.
    with pytest.raises(MalformedError):
        NoteVerifier("PeterNeumann", other.public, peter().key_hash)
