"""Ed25519 keys: PKCS#8 PEM files with and without a passphrase, key ids, the wire form
of a key, and entry signatures with their domain prefix."""

from __future__ import annotations

import base64
import hashlib
import os
import stat
import threading
import warnings
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from ops.world import Keyring
from schemas.canonical import canonical
from schemas.errors import KeyFileError, MalformedError, SignatureError
from schemas.limits import KEY_FILE_BYTES_MAX
from signing.entry import ENTRY_SIGNATURE_PREFIX, sign_entry, verify_entry_signature
from signing.keys import (
    KeyFilePermissionWarning,
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
    (tmp_path / "junk.pem").chmod(0o600)
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


# --- key files: created exclusively, read carefully ----------------------------------


def test_a_key_file_is_0600_from_its_creation_whatever_the_umask(tmp_path: Path) -> None:
    old_umask = os.umask(0)
    try:
        PrivateKey.generate().save(tmp_path / "operator.pem")
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE((tmp_path / "operator.pem").stat().st_mode) == 0o600


def test_save_never_overwrites_a_file(tmp_path: Path) -> None:
    path = tmp_path / "operator.pem"
    first = PrivateKey.generate()
    first.save(path)
    with pytest.raises(KeyFileError, match="never overwritten"):
        PrivateKey.generate().save(path)
    assert PrivateKey.load(path).public == first.public


@pytest.mark.parametrize("target_exists", [True, False])
def test_save_never_follows_a_planted_link(tmp_path: Path, target_exists: bool) -> None:
    target = tmp_path / "elsewhere" / "victim.txt"
    target.parent.mkdir()
    if target_exists:
        target.write_text("untouched")
        target.chmod(0o644)
    link = tmp_path / "keys" / "operator.pem"
    link.parent.mkdir()
    link.symlink_to(target)
    with pytest.raises(KeyFileError, match="already a link"):
        PrivateKey.generate().save(link)
    assert link.is_symlink()
    if target_exists:
        assert target.read_text() == "untouched"
        assert stat.S_IMODE(target.stat().st_mode) == 0o644
    else:
        assert not target.exists()


def test_load_warns_when_others_may_read_the_key(tmp_path: Path) -> None:
    key = PrivateKey.generate()
    path = tmp_path / "operator.pem"
    key.save(path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning at 0600
        PrivateKey.load(path)
    path.chmod(0o644)
    with pytest.warns(KeyFilePermissionWarning, match="mode 0644"):
        assert PrivateKey.load(path).public == key.public


def test_load_refuses_a_fifo_without_waiting_for_a_writer(tmp_path: Path) -> None:
    fifo = tmp_path / "operator.pem"
    os.mkfifo(fifo, 0o600)
    errors: list[KeyFileError] = []

    def load() -> None:
        try:
            PrivateKey.load(fifo)
        except KeyFileError as exc:
            errors.append(exc)

    thread = threading.Thread(target=load, daemon=True)
    thread.start()
    thread.join(timeout=30)
    if thread.is_alive():
        # Blocked in open(): a writer that closes at once lets it end, then fail.
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        thread.join()
        pytest.fail("PrivateKey.load blocked on a FIFO")
    assert len(errors) == 1
    assert "not a regular file" in str(errors[0])


@pytest.mark.parametrize("special", ["/dev/zero", "directory"])
def test_load_refuses_what_is_not_a_regular_file(tmp_path: Path, special: str) -> None:
    path = tmp_path / "operator.pem"
    if special == "directory":
        path.mkdir()
    else:
        path.symlink_to(special)
    with pytest.raises(KeyFileError, match="not a regular file"):
        PrivateKey.load(path)


def test_load_refuses_an_oversized_file(tmp_path: Path) -> None:
    path = tmp_path / "operator.pem"
    PrivateKey.generate().save(path)
    with path.open("ab") as out:
        out.write(b"\n" * KEY_FILE_BYTES_MAX)
    with pytest.raises(KeyFileError, match=f"over {KEY_FILE_BYTES_MAX} bytes"):
        PrivateKey.load(path)


def sample_ring() -> Keyring:
    ring = Keyring(seed=7)
    for principal in ("operator", "region:31", "region:32", "91310000MA1FL1234Q"):
        ring.ensure(principal)
    for code in ("31", "32"):
        ring.ensure_witness(code)
    return ring


def test_keyring_save_returns_the_files_it_wrote_and_can_remove_them(tmp_path: Path) -> None:
    ring = sample_ring()
    keys = tmp_path / "keys"
    written = ring.save(keys)
    assert sorted(written) == sorted(keys.glob("*.pem"))
    assert len(written) == 6
    loaded = Keyring.load(keys)
    assert {p: k.public for p, k in loaded.keys.items()} == {
        p: k.public for p, k in ring.keys.items()
    }
    Keyring.remove_saved(written)
    assert list(keys.iterdir()) == []


def test_keyring_save_failing_part_way_leaves_no_private_key(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    keys.mkdir()
    # The last name saved is taken by a folder: every key before it was already written.
    (keys / "region-32.witness.pem").mkdir()
    with pytest.raises(KeyFileError):
        sample_ring().save(keys)
    assert [path.name for path in keys.iterdir()] == ["region-32.witness.pem"]
    assert (keys / "region-32.witness.pem").is_dir()


def test_keyring_save_leaves_an_existing_key_alone(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    keys.mkdir()
    (keys / "region-31.pem").write_text("someone else's key")
    with pytest.raises(KeyFileError, match="never overwritten"):
        sample_ring().save(keys)
    assert [path.name for path in keys.iterdir()] == ["region-31.pem"]
    assert (keys / "region-31.pem").read_text() == "someone else's key"
