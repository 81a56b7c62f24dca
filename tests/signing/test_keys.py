"""Ed25519 keys: PKCS#8 PEM files with and without a passphrase, key ids, the wire form
of a key, and entry signatures with their domain prefix."""

from __future__ import annotations

import base64
import hashlib
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from schemas.canonical import canonical
from schemas.errors import KeyFileError, MalformedError, SignatureError
from signing.entry import ENTRY_SIGNATURE_PREFIX, sign_entry, verify_entry_signature
from signing.keys import (
    PrivateKey,
    PublicKey,
    key_id,
    principal_file_name,
    witness_file_name,
)

# RFC 8032 §7.1 TEST 1: secret and public key.
RFC8032_SECRET = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
RFC8032_PUBLIC = bytes.fromhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")


def test_key_id_is_the_first_16_bytes_of_sha256_in_lowercase_hex() -> None:
    expected = hashlib.sha256(RFC8032_PUBLIC).hexdigest()[:32]
    assert key_id(RFC8032_PUBLIC) == expected
    assert PublicKey(RFC8032_PUBLIC).wire() == {
        "key": expected,
        "pub": base64.b64encode(RFC8032_PUBLIC).decode(),
    }


def test_pem_round_trip_keeps_the_rfc8032_key(tmp_path: Path) -> None:
    key = PrivateKey(Ed25519PrivateKey.from_private_bytes(RFC8032_SECRET))
    assert key.public.raw == RFC8032_PUBLIC
    path = tmp_path / "keys" / "operator.pem"
    key.save(path)
    assert path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert PrivateKey.load(path).public == key.public


def test_passphrase_protects_the_key_file(tmp_path: Path) -> None:
    key = PrivateKey.generate()
    path = tmp_path / "region-31.pem"
    key.save(path, passphrase=b"correct horse")
    assert b"ENCRYPTED PRIVATE KEY" in path.read_bytes()
    assert PrivateKey.load(path, passphrase=b"correct horse").public == key.public
    with pytest.raises(KeyFileError):
        PrivateKey.load(path, passphrase=b"wrong")
    with pytest.raises(KeyFileError):
        PrivateKey.load(path)


def test_unreadable_key_files_are_typed_errors(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError):
        PrivateKey.load(tmp_path / "missing.pem")
    (tmp_path / "junk.pem").write_text("not a key")
    with pytest.raises(KeyFileError):
        PrivateKey.load(tmp_path / "junk.pem")


def test_the_secret_stays_out_of_reprs() -> None:
    key = PrivateKey.generate()
    assert repr(key) == f"PrivateKey(key_id={key.key_id})"


def test_wire_keys_must_match_their_id() -> None:
    wire = PublicKey(RFC8032_PUBLIC).wire()
    assert PublicKey.from_wire(wire).raw == RFC8032_PUBLIC
    with pytest.raises(MalformedError):
        PublicKey.from_wire({"key": "0" * 32, "pub": wire["pub"]})
    with pytest.raises(MalformedError):
        PublicKey.from_wire({"key": wire["key"], "pub": wire["pub"] + "A"})


def test_entry_signature_covers_the_prefix_and_the_canonical_entry() -> None:
    key = PrivateKey.generate()
    entry = {"v": 1, "kind": "endorsement", "body": {"b": 1, "a": "上海"}}
    signature = sign_entry(entry, key)
    assert signature["key"] == key.key_id
    raw = base64.b64decode(signature["sig"])
    # An independent verifier: the domain prefix and RFC 8785 bytes, nothing else.
    Ed25519PublicKey.from_public_bytes(key.public.raw).verify(
        raw, ENTRY_SIGNATURE_PREFIX + canonical(entry)
    )
    verify_entry_signature(canonical(entry), signature, key.public)
    with pytest.raises(SignatureError):
        verify_entry_signature(canonical({**entry, "v": 2}), signature, key.public)
    with pytest.raises(SignatureError):
        verify_entry_signature(canonical(entry), signature, PrivateKey.generate().public)


def test_key_file_names_follow_the_contract() -> None:
    assert principal_file_name("region:31") == "region-31.pem"
    assert principal_file_name("operator") == "operator.pem"
    assert principal_file_name("91310000MA1FL1234Q") == "91310000MA1FL1234Q.pem"
    assert witness_file_name("31") == "region-31.witness.pem"
