"""Checkpoints and cosignature/v1, against published vectors plus round-trip and tamper tests.

Vectors:
* C2SP/C2SP tlog-checkpoint.md and tlog-cosignature.md: the example.com/behind-the-sofa
  checkpoint, its witness.example.com/w1 cosignature line (timestamp 1679315147) and the
  example cosigned message.
* C2SP/C2SP tlog-witness.md: the example add-checkpoint response body (three lines by
  witnesses we do not trust).
* FiloSottile/torchwood internal/witness/witness_test.go: a log public key and three
  checkpoints of a sigsum.org log signed with it (sizes 1, 3 and 5).
* transparency-dev/formats note/note_cosigv1_test.go: a type 0x04 witness vkey
  (remora.n621.de), a type 0x01 vkey, and a cosignature whose timestamp is 1727964367.

No published cosignature vector comes with its public key, so cosignature verification is
checked by round trips, by decoding our own lines independently, and by tampering.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from schemas.errors import ConfigError, MalformedError, VerificationError
from signing.checkpoint import (
    TIMESTAMP_MAX,
    Checkpoint,
    CosignatureVerifier,
    add_cosignatures,
    cosign,
    cosignature_message,
    cosignature_timestamp,
    open_checkpoint,
    sign_checkpoint,
    verify_cosignature,
    verify_cosigned_checkpoint,
)
from signing.keys import PrivateKey, PublicKey
from signing.note import NoteSignature, NoteSigner, NoteVerifier, parse_note, sign_note

SPEC_BODY = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
SPEC_LOG_LINE = (
    "— example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN"
    "7u5/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n"
)
SPEC_WITNESS_LINE = (
    "— witness.example.com/w1 jWbPPwAAAABkGFDLEZMHwSRaJNiIDoe9DYn/zXcrtPHeolMI5OWXEhZCB9d"
    "lrDJsX3b2oyin1nPZqhf5nNo0xUe+mbIUBkBIfZ+qnA==\n"
)
SPEC_COSIGNED_NOTE = SPEC_BODY + "\n" + SPEC_LOG_LINE + SPEC_WITNESS_LINE
SPEC_MESSAGE = "cosignature/v1\ntime 1679315147\n" + SPEC_BODY
SPEC_WITNESS_RESPONSE = (
    "— witness.example/w1 CMp+6LWBU0anHGH5aNDTJkH/gj79sG+T6+iP2ThYN5krrDJbR1HDnucjL39QsZTSvVj"
    "yQLrdk3DXDqI5G2HgLatVs0pWh6Up69HVOw==\n"
    "— witness.example/w1 I7rEps0pvK2UqkS2gSpVUDhrhVtQV9lgF6pRrWAvjJHjyWpW7VcE3SiOlVlbQNt64vW"
    "hO+DlkL0+UfzuOBMh9ChdMkP1vi/lCAsmlw==\n"
    "— witness.example/w2 AWui8Sk55XjYLOijihBjhqEH6nS1ndDymE0a+6idX7pLcnoB+dhnz0854aLZgrrKbYK"
    "A7nC3HNJhm/kWl7oJlqU3rXXvpysAdyP3wQ==\n"
)

SIGSUM_ORIGIN = (
    "sigsum.org/v1/tree/4d6d8825a6bb689d459628312889dfbb0bcd41b5211d9e1ce768b0ff0309e562"
)
SIGSUM_LOG_KEY = "ffdc2d4d98e4124d3feaf788c0c2f9abfd796083d1f0495437f302ec79cf100f"
SIGSUM_CHECKPOINTS = [
    (
        1,
        "KgAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        "UgIom7fPZTqpxWWhyjWduBvTvGVqsokMbqTArsQilegKoFBJQjUFAmQ0+YeSPM3wfUQMFSzVnnNuWRTYrajXpNUbIQY=",
    ),
    (
        3,
        "RcCI1Nk56ZcSmIEfIn0SleqtV7uvrlXNccFx595Iwl0=",
        "UgIom2VbtIcdFbwFAy1n7s6IkAxIY6J/GQOTuZF2ORV39d75cbAj2aQYwyJre36kezNobZs4SUUdrcawfAB8WVrx6go=",
    ),
    (
        5,
        "QrtXrQZCCvpIgsSmOsah7HdICzMLLyDfxToMql9WTjY=",
        "UgIomw/EOJmWi0i1FQsOj+etB7F8IccFam/jgd6wzRns4QPVmyEZtdvl1U2KEmLOZ/ASRcWJi0tW90dJWAShei7sDww=",
    ),
]

REMORA_VKEY = "remora.n621.de+da77ade7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2"
TYPE1_VKEY = "TEST+7997405c+AQcC+FTVKf0jlTdHDY3rbevmnKxxPjigCXlVtGe6RIr6"
TD_COSIG_B64 = (
    "ZGhGuQAAAABm/qTPeyKXD+R2rzyQsxPiP8mXum7qq/iF0u4vanlqJyocWODBt97w9uL+8qT7S5gxEHWWOworDcF"
    "iEBYJXORmnFBOBA=="
)
TD_ED25519_B64 = (
    "eQjRQm6eSKzFoiYalgwCPXu2y3ijtg68is9M46JKxuZB+dRfTmeQeDBoXnvxZx2ugnkyV+MUMLXpWs1hPb/W/4xkNQY="
)

ORIGIN = "alliance-ledger.example/log"
ROOT = hashlib.sha256(b"root").digest()
T1, T2 = 1_700_000_000, 1_700_000_042


def raw_signature(b64: str) -> NoteSignature:
    raw = base64.b64decode(b64)
    return NoteSignature("any", raw[:4], raw[4:])


@pytest.fixture
def log() -> NoteSigner:
    return NoteSigner(ORIGIN, PrivateKey.from_seed(b"log"))


@pytest.fixture
def w1() -> NoteSigner:
    return NoteSigner("witness.example/region-31", PrivateKey.from_seed(b"w1"))


@pytest.fixture
def w2() -> NoteSigner:
    return NoteSigner("witness.example/region-32", PrivateKey.from_seed(b"w2"))


def witness_verifier(signer: NoteSigner) -> CosignatureVerifier:
    return CosignatureVerifier.from_public(signer.name, signer.key.public)


@pytest.fixture
def checkpoint() -> Checkpoint:
    return Checkpoint(ORIGIN, 42, ROOT)


# --- checkpoint bodies -----------------------------------------------------------------


def test_spec_checkpoint_parses_and_round_trips() -> None:
    text, signatures = parse_note(SPEC_COSIGNED_NOTE)
    assert text == SPEC_BODY
    checkpoint = Checkpoint.parse(text)
    assert checkpoint.origin == "example.com/behind-the-sofa"
    assert checkpoint.size == 20852163
    assert (
        base64.b64encode(checkpoint.root).decode() == "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I="
    )
    assert checkpoint.extensions == ()
    assert checkpoint.body() == SPEC_BODY
    assert [sig.name for sig in signatures] == [
        "example.com/behind-the-sofa",
        "witness.example.com/w1",
    ]


def test_extensions_round_trip() -> None:
    checkpoint = Checkpoint(ORIGIN, 0, ROOT, ("ext one", "ext two"))
    assert checkpoint.body().endswith("\next one\next two\n")
    assert Checkpoint.parse(checkpoint.body()) == checkpoint


@pytest.mark.parametrize(
    "body",
    [
        "Head\n9944\n",  # too few lines (transparency-dev/formats)
        "\n9944\n" + ROOT.hex() + "\n",  # empty origin
        f"Log\n123\n{base64.b64encode(ROOT).decode()}",  # no final newline
        f"Log\nbananas\n{base64.b64encode(ROOT).decode()}\n",
        f"Log\n-34\n{base64.b64encode(ROOT).decode()}\n",
        f"Log\n3438945738945739845734895735\n{base64.b64encode(ROOT).decode()}\n",
        f"Log\n{2**63}\n{base64.b64encode(ROOT).decode()}\n",
        f"Log\n0123\n{base64.b64encode(ROOT).decode()}\n",
        f"Log\n00\n{base64.b64encode(ROOT).decode()}\n",
        f"Log\n+1\n{base64.b64encode(ROOT).decode()}\n",
        f"Log\n 1\n{base64.b64encode(ROOT).decode()}\n",
        f"Log\n\uff11\n{base64.b64encode(ROOT).decode()}\n",  # fullwidth digit
        f"Log\n\u0661\n{base64.b64encode(ROOT).decode()}\n",  # Arabic-Indic digit
        "Log\n123\nThisIsn'tBase64\n",
        "Log\n123\nYmFuYW5hcw==\n",  # 7-byte hash (fine for transparency-dev, not for us)
        f"Log\n1\n{base64.b64encode(ROOT).decode().rstrip('=')}\n",  # unpadded
        f"Log\n1\n{base64.b64encode(ROOT).decode()}\n\n",  # empty extension line
        f"Log\n1\n{base64.b64encode(ROOT).decode()}\next\n\nmore\n",
        f"Log\r\n1\n{base64.b64encode(ROOT).decode()}\n",
        f"{'o' * 256}\n1\n{base64.b64encode(ROOT).decode()}\n",  # origin over 255 bytes
    ],
)
def test_malformed_checkpoint_bodies(body: str) -> None:
    with pytest.raises(MalformedError):
        Checkpoint.parse(body)


def test_size_bounds() -> None:
    assert Checkpoint.parse(f"Log\n0\n{base64.b64encode(ROOT).decode()}\n").size == 0
    top = Checkpoint.parse(f"Log\n{2**63 - 1}\n{base64.b64encode(ROOT).decode()}\n")
    assert top.size == 2**63 - 1
    for bad in (-1, 2**63, True):
        with pytest.raises(MalformedError):
            Checkpoint(ORIGIN, bad, ROOT)
    with pytest.raises(MalformedError):
        Checkpoint(ORIGIN, 1, ROOT[:31])
    with pytest.raises(MalformedError):
        Checkpoint(ORIGIN, 1, ROOT, ("two\nlines",))


# --- log signatures --------------------------------------------------------------------


@pytest.mark.parametrize(("size", "root_b64", "sig_b64"), SIGSUM_CHECKPOINTS)
def test_torchwood_signed_checkpoints_open(size: int, root_b64: str, sig_b64: str) -> None:
    verifier = NoteVerifier.from_public(SIGSUM_ORIGIN, PublicKey(bytes.fromhex(SIGSUM_LOG_KEY)))
    note = f"{SIGSUM_ORIGIN}\n{size}\n{root_b64}\n\n— {SIGSUM_ORIGIN} {sig_b64}\n"
    checkpoint = open_checkpoint(note, verifier)
    assert checkpoint == Checkpoint(SIGSUM_ORIGIN, size, base64.b64decode(root_b64))
    # The same signature does not cover another size.
    with pytest.raises(VerificationError):
        open_checkpoint(note.replace(f"\n{size}\n", f"\n{size + 1}\n", 1), verifier)


def test_torchwood_root_matches_its_assertion() -> None:
    _, root_b64, _ = SIGSUM_CHECKPOINTS[2]
    assert base64.b64decode(root_b64).hex() == (
        "42bb57ad06420afa4882c4a63ac6a1ec77480b330b2f20dfc53a0caa5f564e36"
    )


def test_sign_and_open(log: NoteSigner, checkpoint: Checkpoint) -> None:
    note = sign_checkpoint(checkpoint, log)
    assert note.startswith(checkpoint.body() + "\n— " + ORIGIN + " ")
    assert open_checkpoint(note, log.verifier) == checkpoint


def test_log_key_must_be_named_after_origin(checkpoint: Checkpoint) -> None:
    misnamed = NoteSigner("other.example/log", PrivateKey.from_seed(b"log"))
    with pytest.raises(ConfigError):
        sign_checkpoint(checkpoint, misnamed)


def test_open_refuses_origin_other_than_key_name(checkpoint: Checkpoint) -> None:
    signer = NoteSigner("other.example/log", PrivateKey.from_seed(b"other"))
    note = sign_note(checkpoint.body(), [signer])
    with pytest.raises(VerificationError, match="origin"):
        open_checkpoint(note, signer.verifier)


def test_open_refuses_wrong_key(log: NoteSigner, checkpoint: Checkpoint) -> None:
    note = sign_checkpoint(checkpoint, log)
    stranger = NoteSigner(ORIGIN, PrivateKey.from_seed(b"stranger"))
    with pytest.raises(VerificationError):
        open_checkpoint(note, stranger.verifier)


def test_open_refuses_signed_garbage(log: NoteSigner) -> None:
    note = sign_note("not\na checkpoint\n", [NoteSigner(ORIGIN, log.key)])
    with pytest.raises(MalformedError):
        open_checkpoint(note, log.verifier)


# --- cosignature format vectors --------------------------------------------------------


def test_spec_cosigned_message() -> None:
    checkpoint = Checkpoint.parse(SPEC_BODY)
    assert cosignature_message(checkpoint, 1679315147) == SPEC_MESSAGE.encode()


def test_spec_witness_line_timestamp() -> None:
    _, signatures = parse_note(SPEC_COSIGNED_NOTE)
    witness_sig = signatures[1]
    assert witness_sig.key_hash.hex() == "8d66cf3f"
    assert cosignature_timestamp(witness_sig) == 1679315147


def test_transparency_dev_timestamp_vectors() -> None:
    assert cosignature_timestamp(raw_signature(TD_COSIG_B64)) == 1727964367
    with pytest.raises(MalformedError):  # an ordinary Ed25519 note signature
        cosignature_timestamp(raw_signature(TD_ED25519_B64))


def test_witness_vkeys() -> None:
    remora = CosignatureVerifier.from_vkey(REMORA_VKEY)
    assert remora.name == "remora.n621.de"
    assert remora.key_hash.hex() == "da77ade7"
    assert remora.vkey == REMORA_VKEY
    with pytest.raises(MalformedError):  # type 0x01: a note key, not a witness key
        CosignatureVerifier.from_vkey(TYPE1_VKEY)
    assert NoteVerifier.from_vkey(TYPE1_VKEY).key_hash.hex() == "7997405c"


def test_cosignature_wire_format(checkpoint: Checkpoint, w1: NoteSigner) -> None:
    """Decode our line by hand: keyhash(0x04) || uint64 BE T || Ed25519 over the spec message."""
    line = cosign(checkpoint, w1, T1)
    assert line.startswith(f"— {w1.name} ") and line.endswith("\n") and line.count("\n") == 1
    raw = base64.b64decode(line.rstrip("\n").split(" ")[2], validate=True)
    assert len(raw) == 4 + 8 + 64
    pub = w1.key.public.raw
    assert raw[:4] == hashlib.sha256(w1.name.encode() + b"\n\x04" + pub).digest()[:4]
    assert raw[:4] != w1.key_hash  # not the type 0x01 key hash
    assert int.from_bytes(raw[4:12], "big") == T1
    message = f"cosignature/v1\ntime {T1}\n{checkpoint.body()}".encode()
    Ed25519PublicKey.from_public_bytes(pub).verify(raw[12:], message)
    vkey = witness_verifier(w1).vkey
    assert vkey.split("+")[1] == raw[:4].hex()
    assert base64.b64decode(vkey.split("+", 2)[2])[0] == 0x04


# --- cosigned checkpoints --------------------------------------------------------------


def cosigned(log: NoteSigner, checkpoint: Checkpoint, *cosigners: NoteSigner) -> str:
    lines = [cosign(checkpoint, w, T1 + i * 42) for i, w in enumerate(cosigners)]
    return add_cosignatures(sign_checkpoint(checkpoint, log), lines)


def test_round_trip(
    log: NoteSigner, w1: NoteSigner, w2: NoteSigner, checkpoint: Checkpoint
) -> None:
    note = cosigned(log, checkpoint, w1, w2)
    got, stamps = verify_cosigned_checkpoint(
        note, log.verifier, [witness_verifier(w1), witness_verifier(w2)]
    )
    assert got == checkpoint
    assert stamps == {w1.name: T1, w2.name: T2}
    # The cosignatures are ordinary unknown signatures to a plain note verifier.
    assert open_checkpoint(note, log.verifier) == checkpoint


def test_verify_cosignature_directly(
    log: NoteSigner, w1: NoteSigner, checkpoint: Checkpoint
) -> None:
    note = cosigned(log, checkpoint, w1)
    _, [_, sig] = parse_note(note)
    assert verify_cosignature(checkpoint, sig, witness_verifier(w1)) == T1
    with pytest.raises(VerificationError):  # another checkpoint
        verify_cosignature(Checkpoint(ORIGIN, 43, ROOT), sig, witness_verifier(w1))
    with pytest.raises(VerificationError):  # the log's own signature line
        verify_cosignature(checkpoint, parse_note(note)[1][0], witness_verifier(w1))


def test_unknown_cosignatures_are_ignored(
    log: NoteSigner, w1: NoteSigner, w2: NoteSigner, checkpoint: Checkpoint
) -> None:
    note = add_cosignatures(cosigned(log, checkpoint, w1, w2), [SPEC_WITNESS_RESPONSE])
    _, stamps = verify_cosigned_checkpoint(note, log.verifier, [witness_verifier(w1)])
    assert stamps == {w1.name: T1}
    _, stamps = verify_cosigned_checkpoint(note, log.verifier, [])
    assert stamps == {}
    assert len(parse_note(note)[1]) == 1 + 2 + 3


def test_witness_signing_as_a_plain_note_key_is_not_a_cosignature(
    log: NoteSigner, w1: NoteSigner, checkpoint: Checkpoint
) -> None:
    """A type 0x01 signature by the witness key has another key hash: ignored, not counted."""
    plain = parse_note(sign_note(checkpoint.body(), [w1]))[1][0].line
    note = add_cosignatures(sign_checkpoint(checkpoint, log), [plain])
    assert verify_cosigned_checkpoint(note, log.verifier, [witness_verifier(w1)])[1] == {}


def test_changed_timestamp_fails(log: NoteSigner, w1: NoteSigner, checkpoint: Checkpoint) -> None:
    note = cosigned(log, checkpoint, w1)
    text, [log_sig, sig] = parse_note(note)
    later = (T1 + 1).to_bytes(8, "big") + sig.signature[8:]
    forged = text + "\n" + log_sig.line + NoteSignature(sig.name, sig.key_hash, later).line
    with pytest.raises(VerificationError, match="invalid cosignature"):
        verify_cosigned_checkpoint(forged, log.verifier, [witness_verifier(w1)])


def test_timestamp_over_max_fails(log: NoteSigner, w1: NoteSigner, checkpoint: Checkpoint) -> None:
    note = cosigned(log, checkpoint, w1)
    text, [log_sig, sig] = parse_note(note)
    huge = (2**63).to_bytes(8, "big") + sig.signature[8:]
    forged = text + "\n" + log_sig.line + NoteSignature(sig.name, sig.key_hash, huge).line
    with pytest.raises(VerificationError, match="malformed cosignature"):
        verify_cosigned_checkpoint(forged, log.verifier, [witness_verifier(w1)])


def test_cosignature_over_another_checkpoint_fails(
    log: NoteSigner, w1: NoteSigner, checkpoint: Checkpoint
) -> None:
    other = Checkpoint(ORIGIN, 43, ROOT)
    note = add_cosignatures(sign_checkpoint(checkpoint, log), [cosign(other, w1, T1)])
    with pytest.raises(VerificationError):
        verify_cosigned_checkpoint(note, log.verifier, [witness_verifier(w1)])


def test_cosignature_covers_extension_lines(log: NoteSigner, w1: NoteSigner) -> None:
    with_ext = Checkpoint(ORIGIN, 42, ROOT, ("ext",))
    note = add_cosignatures(
        sign_checkpoint(with_ext, log), [cosign(Checkpoint(ORIGIN, 42, ROOT, ("EXT",)), w1, T1)]
    )
    with pytest.raises(VerificationError):
        verify_cosigned_checkpoint(note, log.verifier, [witness_verifier(w1)])


def test_wrong_witness_key_is_ignored(
    log: NoteSigner, w1: NoteSigner, checkpoint: Checkpoint
) -> None:
    impostor = NoteSigner(w1.name, PrivateKey.from_seed(b"impostor"))
    note = cosigned(log, checkpoint, impostor)
    assert verify_cosigned_checkpoint(note, log.verifier, [witness_verifier(w1)])[1] == {}


@pytest.mark.parametrize(
    "edit",
    [
        lambda note: note.replace("\n42\n", "\n43\n", 1),  # flipped byte in the body
        lambda note: note.replace(ORIGIN + "\n42\n", "42\n" + ORIGIN + "\n", 1),  # reordered
        lambda note: note.replace("\n42\n", "\n42\n\n", 1),  # extra blank line in the body
        lambda note: note.replace("\n\n", "\n\n\n", 1),  # extra blank line before signatures
    ],
)
def test_tampered_body_fails(
    log: NoteSigner, w1: NoteSigner, checkpoint: Checkpoint, edit: Callable[[str], str]
) -> None:
    note = edit(cosigned(log, checkpoint, w1))
    with pytest.raises(VerificationError):
        verify_cosigned_checkpoint(note, log.verifier, [witness_verifier(w1)])


def test_add_cosignatures_replaces_a_witness_line(
    log: NoteSigner, w1: NoteSigner, checkpoint: Checkpoint
) -> None:
    note = cosigned(log, checkpoint, w1)
    again = add_cosignatures(note, [cosign(checkpoint, w1, T2)])
    assert len(parse_note(again)[1]) == 2
    assert verify_cosigned_checkpoint(again, log.verifier, [witness_verifier(w1)])[1] == {
        w1.name: T2
    }


def test_duplicate_cosignature_lines_are_rejected(
    log: NoteSigner, w1: NoteSigner, checkpoint: Checkpoint
) -> None:
    note = cosigned(log, checkpoint, w1)
    doubled = note + cosign(checkpoint, w1, T2)
    with pytest.raises(VerificationError, match="twice"):
        verify_cosigned_checkpoint(doubled, log.verifier, [witness_verifier(w1)])
    with pytest.raises(MalformedError):
        add_cosignatures(note, [cosign(checkpoint, w1, T1), cosign(checkpoint, w1, T2)])


@pytest.mark.parametrize(
    "lines",
    [
        ["— witness.example/w1 AAAA"],  # no newline
        ["not a signature line\n"],
        ["— witness.example/w1 AAAA\n\n"],  # blank line
        ["— bad name AAAAAAAA\n"],
    ],
)
def test_add_cosignatures_rejects_bad_lines(
    log: NoteSigner, checkpoint: Checkpoint, lines: list[str]
) -> None:
    with pytest.raises(MalformedError):
        add_cosignatures(sign_checkpoint(checkpoint, log), lines)


def test_cosign_timestamp_bounds(w1: NoteSigner, checkpoint: Checkpoint) -> None:
    line = cosign(checkpoint, w1, TIMESTAMP_MAX)
    assert cosignature_timestamp(parse_note("x\n\n" + line)[1][0]) == TIMESTAMP_MAX
    for bad in (-1, TIMESTAMP_MAX + 1, True):
        with pytest.raises(MalformedError):
            cosign(checkpoint, w1, bad)


def test_witness_verifier_rejects_inconsistent_key_hash(w1: NoteSigner) -> None:
    with pytest.raises(MalformedError):
        CosignatureVerifier(w1.name, w1.key.public, w1.key_hash)  # the type 0x01 hash
    with pytest.raises(MalformedError):
        CosignatureVerifier.from_public("bad name", w1.key.public)
