"""signing.http against RFC 9421's own Ed25519 example, and its profile round trip."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
    load_pem_public_key,
)

from schemas.errors import SignatureError
from signing.http import (
    HttpRequest,
    content_digest,
    parse_signed,
    signature_base,
    signed_headers,
)
from signing.keys import PrivateKey, PublicKey

# RFC 9421 Appendix B.1.4 (test-key-ed25519) and B.2.6 (signing a request using ed25519).
RFC_PUBLIC_PEM = b"""-----BEGIN PUBLIC KEY-----
MCowBQYDK2VwAyEAJrQLj5P/89iXES9+vFgrIy29clF9CC/oPPsw3c5D0bs=
-----END PUBLIC KEY-----
"""
RFC_SIGNATURE = (
    "wqcAqbmYJ2ji2glfAMaRy4gruYYnx2nEFN2HN6jrnDnQCK1u02Gb04v9EDgwUPiu4A0w6vuQv5lIp5WPpBKRCw=="
)
RFC_REQUEST = HttpRequest(
    "POST",
    "https://example.com/foo?param=Value&Pet=dog",
    {
        "host": "example.com",
        "date": "Tue, 20 Apr 2021 02:07:55 GMT",
        "content-type": "application/json",
        "content-length": "18",
    },
    b'{"hello": "world"}',
)
RFC_COMPONENTS = ("date", "@method", "@path", "@authority", "content-type", "content-length")
RFC_PARAMS = (
    '("date" "@method" "@path" "@authority" "content-type" "content-length")'
    ';created=1618884473;keyid="test-key-ed25519"'
)
RFC_BASE = (
    '"date": Tue, 20 Apr 2021 02:07:55 GMT\n'
    '"@method": POST\n'
    '"@path": /foo\n'
    '"@authority": example.com\n'
    '"content-type": application/json\n'
    '"content-length": 18\n'
    f'"@signature-params": {RFC_PARAMS}'
)


def test_the_signature_base_is_the_rfcs_and_its_signature_verifies() -> None:
    base = signature_base(RFC_REQUEST, RFC_COMPONENTS, RFC_PARAMS)
    assert base.decode() == RFC_BASE
    raw = load_pem_public_key(RFC_PUBLIC_PEM).public_bytes(Encoding.Raw, PublicFormat.Raw)
    PublicKey(raw).verify(base64.b64decode(RFC_SIGNATURE), base)


def test_the_rfc_9530_digest() -> None:
    # RFC 9530 Appendix B.2: {"hello": "world"} under sha-256.
    expected = "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:"
    assert content_digest(b'{"hello": "world"}') == expected


def _signed(body: bytes = b"", **replace: str) -> HttpRequest:
    key = PrivateKey.from_seed(bytes(32))
    url = "http://h/v1/x?a=1"
    headers = signed_headers("GET", url, key, created=1_800_000_000, body=body, nonce="abc")
    return HttpRequest("GET", url, {**headers, **replace}, body)


def test_a_signed_request_parses_and_verifies() -> None:
    key = PrivateKey.from_seed(bytes(32))
    parsed = parse_signed(_signed(b"{}"))
    assert (parsed.keyid, parsed.created, parsed.nonce, parsed.alg) == (
        key.key_id,
        1_800_000_000,
        "abc",
        "ed25519",
    )
    assert parsed.components == ("@method", "@path", "@query", "content-digest")
    key.public.verify(parsed.signature, parsed.signature_base())


TARGET = 'sig1=("@method" "@target-uri");created=1;keyid="k"'


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("signature-input", 'sig1=("@path" "@query");created=1;keyid="k";alg="ed25519";nonce="n"'),
        ("signature-input", 'sig1=("@method" "@path");created=1;keyid="k";alg="ed25519";nonce="n"'),
        ("signature-input", TARGET + ';alg="rsa";nonce="n"'),
        ("signature-input", TARGET + ';alg="ed25519"'),
        ("signature-input", TARGET + ';alg="ed25519";nonce="n";tag="t"'),
        ("signature-input", TARGET + ';alg="ed25519";nonce="n", sig2=()'),
        ("signature-input", TARGET + ';alg="ed25519";nonce="n n"'),
        ("signature", "sig2=:AAAA:"),
        ("signature", "sig1=:AAAA:"),
        ("content-digest", "sha-256=:AAAA:"),
    ],
)
def test_requests_outside_the_profile_are_refused(field: str, value: str) -> None:
    with pytest.raises(SignatureError):
        parse_signed(_signed(b"{}", **{field: value}))
