"""Weak Ed25519 keys and malleable signatures are refused wherever they enter.

A small-order public key (one of the 8 torsion points) lets anyone sign as its holder:
with A the identity, R = identity and S = 0 verify for every message under a cofactorless
verifier such as OpenSSL. ``PublicKey`` refuses such keys at construction, so genesis,
enrolment, keys_changed, vkeys and key files all refuse them; verification is libsodium's
strict one ("Taming the many EdDSAs", Chalkias, Garillot and Nikolaenko, 2020).
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.errors import MalformedError, SignatureError
from schemas.limits import CHECKED_PUBLIC_KEYS_CACHED
from signing import keys as keys_module
from signing.keys import PrivateKey, PublicKey, b64encode, key_id
from signing.note import SIG_TYPE_ED25519, NoteVerifier

P = 2**255 - 19
L = 2**252 + 27742317777372353535851937790883648493  # the prime order of the base point

# libsodium src/libsodium/crypto_core/ed25519/ref10/ed25519_ref10.c, ge25519_has_small_order:
# the blocklist, copied byte for byte. libsodium ignores the top (sign) bit when matching.
LIBSODIUM_SMALL_ORDER_BLOCKLIST = [
    "0000000000000000000000000000000000000000000000000000000000000000",  # 0, order 4
    "0100000000000000000000000000000000000000000000000000000000000000",  # 1, order 1
    "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",  # order 8
    "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",  # order 8
    "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",  # p-1, order 2
    "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",  # p (= 0)
    "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",  # p+1 (= 1)
]


def with_sign_bit(raw: bytes) -> bytes:
    return raw[:31] + bytes([raw[31] | 0x80])


SMALL_ORDER_ENCODINGS = [
    pytest.param(encoding, id=f"{index}{'-signed' if signed else ''}")
    for index, hex_ in enumerate(LIBSODIUM_SMALL_ORDER_BLOCKLIST)
    for signed in (False, True)
    for encoding in [with_sign_bit(bytes.fromhex(hex_)) if signed else bytes.fromhex(hex_)]
]


def wire(raw: bytes) -> dict[str, str]:
    return {"key": key_id(raw), "pub": b64encode(raw)}


def y_encoding(y: int, *, negative_x: bool = False) -> bytes:
    return (y | (int(negative_x) << 255)).to_bytes(32, "little")


@pytest.mark.parametrize("encoding", SMALL_ORDER_ENCODINGS)
def test_every_small_order_encoding_is_refused(encoding: bytes) -> None:
    with pytest.raises(MalformedError, match="small-order Ed25519 public key refused"):
        PublicKey(encoding)
    with pytest.raises(MalformedError, match="small-order Ed25519 public key refused"):
        PublicKey.from_wire(wire(encoding))


def test_the_identity_key_would_let_anyone_sign() -> None:
    """Why: OpenSSL accepts R = identity, S = 0 for any message under the identity key."""
    identity = bytes.fromhex(LIBSODIUM_SMALL_ORDER_BLOCKLIST[1])
    forged = identity + bytes(32)
    Ed25519PublicKey.from_public_bytes(identity).verify(forged, b"any entry at all")
    with pytest.raises(MalformedError, match="small-order"):
        PublicKey(identity)


def test_a_vkey_with_a_small_order_key_is_refused() -> None:
    identity = bytes.fromhex(LIBSODIUM_SMALL_ORDER_BLOCKLIST[1])
    name = "example.com/log"
    material = name.encode() + b"\n" + bytes([SIG_TYPE_ED25519]) + identity
    digest = hashlib.sha256(material).digest()[:4].hex()
    vkey = f"{name}+{digest}+{b64encode(bytes([SIG_TYPE_ED25519]) + identity)}"
    with pytest.raises(MalformedError, match="small-order"):
        NoteVerifier.from_vkey(vkey)


@pytest.mark.parametrize("negative_x", [False, True])
def test_a_non_canonical_encoding_is_refused(negative_x: bool) -> None:
    # p + 3 encodes y = 3, a point on the curve, in a form a canonical encoder never makes.
    encoding = y_encoding(P + 3, negative_x=negative_x)
    with pytest.raises(MalformedError, match="non-canonical encoding"):
        PublicKey(encoding)
    with pytest.raises(MalformedError, match="non-canonical encoding"):
        PublicKey.from_wire(wire(encoding))


def test_every_encoding_of_y_at_or_above_p_is_refused() -> None:
    for y in range(P, 2**255):
        for negative_x in (False, True):
            with pytest.raises(MalformedError):
                PublicKey(y_encoding(y, negative_x=negative_x))


def test_bytes_that_are_no_curve_point_are_refused() -> None:
    # y = 2: (y^2 - 1) / (d y^2 + 1) is not a square mod p, so there is no x.
    with pytest.raises(MalformedError, match="does not decode to a curve point"):
        PublicKey(y_encoding(2))


@settings(max_examples=300)
@given(st.integers(min_value=0, max_value=2**255 - 20), st.booleans())
def test_the_curve_check_agrees_with_eulers_criterion(y: int, sign: bool) -> None:
    """PublicKey accepts exactly the canonical encodings whose y has a curve point:
    x^2 = (y^2 - 1) / (d y^2 + 1) must be a square mod p (Euler's criterion), the
    small-order encodings aside, which are refused by the blocklist."""
    prime = 2**255 - 19
    d = (-121665 * pow(121666, prime - 2, prime)) % prime
    raw = (y | (int(sign) << 255)).to_bytes(32, "little")
    blocked = {
        int.from_bytes(bytes.fromhex(h), "little") & ((1 << 255) - 1)
        for h in LIBSODIUM_SMALL_ORDER_BLOCKLIST
    }
    if y in blocked:
        return
    u, v = (y * y - 1) % prime, (d * y * y + 1) % prime
    on_curve = pow(u * v % prime, (prime - 1) // 2, prime) <= 1
    try:
        PublicKey(raw)
        accepted = True
    except MalformedError:
        accepted = False
    if sign and u == 0:
        return  # x = 0 with the sign bit set: a non-canonical encoding either way
    assert accepted == on_curve


def test_honest_keys_are_accepted() -> None:
    for _ in range(50):
        key = PrivateKey.generate()
        assert PublicKey(key.public.raw) == key.public


def test_a_signature_with_s_plus_l_is_refused() -> None:
    """S is malleable by L unless the verifier checks S < L. OpenSSL 3+ checks it as
    well; this pins that PublicKey.verify (libsodium) keeps refusing it."""
    key = PrivateKey.generate()
    message = b"alliance-ledger/v1/entry\n{}"
    signature = key.sign(message)
    key.public.verify(signature, message)
    s = int.from_bytes(signature[32:], "little")
    malleated = signature[:32] + (s + L).to_bytes(32, "little")
    with pytest.raises(SignatureError):
        key.public.verify(malleated, message)


def test_a_signature_with_a_small_order_r_is_refused() -> None:
    """A key holder can sign with R = identity and S = k*a (k = H(R || A || M)): OpenSSL
    accepts it, libsodium refuses a small-order R like crypto_sign_verify_detached."""
    seed = bytes(range(32))
    key = PrivateKey(Ed25519PrivateKey.from_private_bytes(seed))
    digest = hashlib.sha512(seed).digest()
    a = int.from_bytes(digest[:32], "little") & ((1 << 254) - 8) | (1 << 254)
    message = b"alliance-ledger/v1/entry\n{}"
    r = bytes.fromhex(LIBSODIUM_SMALL_ORDER_BLOCKLIST[1])
    k = int.from_bytes(hashlib.sha512(r + key.public.raw + message).digest(), "little") % L
    signature = r + (k * a % L).to_bytes(32, "little")
    Ed25519PublicKey.from_public_bytes(key.public.raw).verify(signature, message)
    with pytest.raises(SignatureError):
        key.public.verify(signature, message)


def test_a_signature_of_the_wrong_length_is_refused() -> None:
    key = PrivateKey.generate()
    message = b"entry bytes"
    signature = key.sign(message)
    # Moving one byte from the message to the signature keeps signature + message equal.
    with pytest.raises(SignatureError, match="not 64 bytes"):
        key.public.verify(signature + message[:1], message[1:])
    with pytest.raises(SignatureError):
        key.public.verify(signature[:63], signature[63:] + message)


def test_the_cache_of_checked_keys_keeps_the_newest_and_stays_bounded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The cache of keys that passed the curve check holds at most
    CHECKED_PUBLIC_KEYS_CACHED keys and drops the oldest first (a whole batch of
    enrolments at once, too); a dropped key is checked again on its next use."""
    cache: OrderedDict[bytes, None] = OrderedDict()
    monkeypatch.setattr(keys_module, "_checked", cache)  # this test's own, not the process's
    fresh = PrivateKey.from_seed(b"cache-fresh").public.raw
    filler = [n.to_bytes(32, "big") for n in range(CHECKED_PUBLIC_KEYS_CACHED)]
    publics = [PrivateKey.from_seed(b"cache-%d" % n).public.raw for n in range(40)]
    keys_module.remember_usable(filler)
    keys_module.remember_usable(publics)
    assert len(cache) == CHECKED_PUBLIC_KEYS_CACHED
    assert list(cache)[-len(publics) :] == publics  # the newest, in order
    assert filler[0] not in cache and filler[len(publics)] in cache  # the oldest went first
    # One key checked afresh (_check_point) evicts the oldest too, and is kept.
    assert fresh not in cache  # the first in, so the first out
    oldest = next(iter(cache))
    assert PublicKey(fresh).raw == fresh
    assert len(cache) == CHECKED_PUBLIC_KEYS_CACHED
    assert oldest not in cache and next(reversed(cache)) == fresh
    cache.clear()
    assert PublicKey(publics[0]).raw == publics[0]  # checked again, and remembered
    assert list(cache) == [publics[0]]
