"""HTTP Message Signatures (RFC 9421) with Ed25519, in the one profile the API speaks.

Both sides live here so that they cannot drift: ``sign_request`` (the client: nodes,
auditors, tests) and ``parse_signed`` + ``SignedRequest.signature_base`` (the server,
through ledger.access.authenticate). Pure functions over bytes and strings: no HTTP
framework, no clock.

The profile (docs/PROTOCOL.md §6):

* exactly one signature per request (one ``Signature-Input`` member and its
  ``Signature``), so there is never a question of which one was checked;
* covered components: ``@method`` and either ``@target-uri`` or both ``@path`` and
  ``@query``; plus ``content-digest`` (RFC 9530, ``sha-256``) whenever there is a body;
* parameters ``created`` (integer seconds), ``keyid`` (a key id the log holds),
  ``alg`` (``"ed25519"``, RFC 9421 §3.3.6) and ``nonce``; nothing else.

The ``http-message-signatures`` package was not installed in this environment and its
verifier reads the wall clock; the profile is small enough to implement from the RFC.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from schemas.errors import SignatureError
from schemas.limits import HTTP_NONCE_LENGTH_MAX, HTTP_SIGNATURE_HEADER_BYTES_MAX
from signing.keys import SIGNATURE_SIZE, PrivateKey

ALG = "ed25519"
LABEL = "sig1"
PARAM_ORDER = ("created", "keyid", "alg", "nonce")
DERIVED = ("@method", "@target-uri", "@authority", "@path", "@query")
# RFC 8941 §3.3.3 sf-string characters (printable ASCII), and §3.1.2 keys (our labels,
# parameter names and field names, lowercase).
_KEY = re.compile(r"[a-z*][a-z0-9_\-.*]*")
_STRING_BODY = re.compile(r'(?:[\x20\x21\x23-\x5b\x5d-\x7e]|\\["\\])*')
_INTEGER = re.compile(r"-?[0-9]{1,15}")
_NONCE = re.compile(rf"[A-Za-z0-9_\-.~+/=]{{1,{HTTP_NONCE_LENGTH_MAX}}}")


@dataclass(frozen=True, slots=True)
class HttpRequest:
    """What the signature covers: the method, the target URI as the client sent it
    (scheme://authority/path?query), the header fields (names lowercase, repeated
    fields joined by ", " as RFC 9421 §2.1 says) and the body."""

    method: str
    target_uri: str
    headers: Mapping[str, str]
    body: bytes = b""


@dataclass(frozen=True, slots=True)
class SignedRequest:
    """A parsed signature: its covered components, parameters and bytes."""

    request: HttpRequest
    components: tuple[str, ...]
    created: int
    keyid: str
    alg: str
    nonce: str
    signature: bytes

    def params_value(self) -> str:
        """The ``@signature-params`` value: the inner list re-serialized (RFC 9421 §2.3,
        RFC 8941 §4.1.1.1) in the profile's parameter order."""
        inner = " ".join(_sf_string(name) for name in self.components)
        return (
            f"({inner});created={self.created};keyid={_sf_string(self.keyid)}"
            f";alg={_sf_string(self.alg)};nonce={_sf_string(self.nonce)}"
        )

    def signature_base(self) -> bytes:
        """RFC 9421 §2.5: one line per covered component, ``"name": value``, then the
        ``"@signature-params"`` line, joined by LF with no trailing LF."""
        return signature_base(self.request, self.components, self.params_value())


def content_digest(body: bytes) -> str:
    """RFC 9530 §2: the ``Content-Digest`` field of ``body`` with ``sha-256``."""
    return f"sha-256=:{base64.b64encode(hashlib.sha256(body).digest()).decode()}:"


def component_value(request: HttpRequest, name: str) -> str:
    """The value of one covered component (RFC 9421 §2.1 fields, §2.2 derived)."""
    parts = urlsplit(request.target_uri)
    if name == "@method":  # §2.2.1: as sent, case preserved
        return request.method
    if name == "@target-uri":  # §2.2.2: the full target URI
        return request.target_uri
    if name == "@authority":  # §2.2.3: host[:port], lowercased
        return parts.netloc.lower()
    if name == "@path":  # §2.2.6: the absolute path, "/" when empty
        return parts.path or "/"
    if name == "@query":  # §2.2.7: "?" and the query, or just "?" when there is none
        return "?" + parts.query
    value = request.headers.get(name)
    if name.startswith("@") or value is None:
        raise SignatureError(f"the signature covers {name}, which the request lacks")
    return value.strip()  # §2.1: leading and trailing whitespace removed


def signature_base(request: HttpRequest, components: tuple[str, ...], params: str) -> bytes:
    """RFC 9421 §2.5 for ``components`` and the serialized ``params`` (checked against
    the RFC's own Ed25519 example, B.2.6, in tests/signing/test_http.py)."""
    lines = []
    for name in components:
        value = component_value(request, name)
        if "\n" in value or "\r" in value:  # §2.5 step 2.4: a line per component
            raise SignatureError(f"covered component {name} holds a line break")
        lines.append(f"{_sf_string(name)}: {value}")
    lines.append(f'"@signature-params": {params}')
    try:
        return "\n".join(lines).encode("ascii")
    except UnicodeEncodeError as exc:  # §2.5: the base is ASCII
        raise SignatureError("a covered component is not ASCII") from exc


def sign_request(
    request: HttpRequest,
    key: PrivateKey,
    *,
    created: int,
    nonce: str,
    components: tuple[str, ...] = ("@method", "@path", "@query"),
) -> dict[str, str]:
    """The header fields that sign ``request`` with ``key`` (its key id as ``keyid``):
    ``Signature-Input``, ``Signature`` and, with a body, ``Content-Digest`` (which is then
    covered too). The caller adds them to the request it sends."""
    added: dict[str, str] = {}
    headers = dict(request.headers)
    if request.body:
        added["content-digest"] = headers["content-digest"] = content_digest(request.body)
        if "content-digest" not in components:
            components = (*components, "content-digest")
    signed = SignedRequest(
        HttpRequest(request.method, request.target_uri, headers, request.body),
        components,
        created,
        key.key_id,
        ALG,
        nonce,
        b"",
    )
    signature = key.sign(signed.signature_base())
    added["signature-input"] = f"{LABEL}={signed.params_value()}"
    added["signature"] = f"{LABEL}=:{base64.b64encode(signature).decode()}:"
    return added


def signed_headers(
    method: str,
    url: str,
    key: PrivateKey,
    *,
    created: int,
    body: bytes = b"",
    nonce: str | None = None,
) -> dict[str, str]:
    """The client's one call: the fields to add to a request of ``method`` to the full
    ``url`` (``scheme://host/path?query``, percent-encoded as it will be sent), signed
    by ``key`` at ``created`` (Unix seconds) with a fresh random nonce."""
    request = HttpRequest(method.upper(), url, {}, body)
    return sign_request(request, key, created=created, nonce=nonce or secrets.token_urlsafe(18))


def is_signed(headers: Mapping[str, str]) -> bool:
    return "signature-input" in headers or "signature" in headers


def parse_signed(request: HttpRequest) -> SignedRequest:
    """The one signature of ``request``, parsed and held to the profile (SignatureError,
    401, for anything else). Its bytes are not verified here: see ledger.access."""
    signature_input = _header(request, "signature-input")
    label, rest = _label(signature_input)
    components, params = _inner_list(rest)
    sig_label, sig_rest = _label(_header(request, "signature"))
    if sig_label != label:
        raise SignatureError(f"Signature is labelled {sig_label}, Signature-Input {label}")
    signature = _byte_sequence(sig_rest)
    _check_components(request, components)
    for name in PARAM_ORDER:
        if name not in params:
            raise SignatureError(f"Signature-Input lacks the {name} parameter")
    created, keyid, alg, nonce = (params[name] for name in PARAM_ORDER)
    if not isinstance(created, int) or isinstance(keyid, int) or isinstance(nonce, int):
        raise SignatureError("created is an integer; keyid and nonce are strings")
    if alg != ALG:
        raise SignatureError(f"alg must be {ALG!r}")
    if not _NONCE.fullmatch(str(nonce)):
        raise SignatureError(f"the nonce must be 1..{HTTP_NONCE_LENGTH_MAX} token characters")
    _check_digest(request, components)
    return SignedRequest(request, components, created, str(keyid), ALG, str(nonce), signature)


def _header(request: HttpRequest, name: str) -> str:
    value = request.headers.get(name)
    if value is None:
        raise SignatureError(f"the request has no {name} field")
    if len(value) > HTTP_SIGNATURE_HEADER_BYTES_MAX:
        raise SignatureError(f"{name} is longer than {HTTP_SIGNATURE_HEADER_BYTES_MAX} bytes")
    return value.strip()


def _label(value: str) -> tuple[str, str]:
    """RFC 8941 dictionary of one member: ``label=rest``; a second member is refused."""
    match = _KEY.match(value)
    if match is None or value[match.end() : match.end() + 1] != "=":
        raise SignatureError("a signature field must be one label=value member")
    rest = value[match.end() + 1 :]
    # No item of the profile holds a comma (nonces and key ids are tokens), so a comma
    # can only start a second member.
    if "," in rest:
        raise SignatureError("exactly one signature per request")
    return match.group(), rest


def _inner_list(text: str) -> tuple[tuple[str, ...], dict[str, int | str]]:
    """RFC 8941 §3.1.1 inner list of sf-strings, then ;key=value parameters."""
    if not text.startswith("("):
        raise SignatureError("Signature-Input must be an inner list")
    close = text.find(")")
    if close < 0:
        raise SignatureError("Signature-Input's inner list is not closed")
    inner, rest = text[1:close], text[close + 1 :]
    items = inner.split(" ") if inner else []
    components = tuple(_parse_string(item, "component") for item in items)
    if len(set(components)) != len(components):
        raise SignatureError("a component is covered twice")  # RFC 9421 §2.5 step 2.1
    params: dict[str, int | str] = {}
    for part in rest.split(";")[1:] if rest else []:
        name, _, raw = part.partition("=")
        if name not in PARAM_ORDER or name in params:
            raise SignatureError(f"Signature-Input parameter {name!r} is not in the profile")
        params[name] = int(raw) if _INTEGER.fullmatch(raw) else _parse_string(raw, name)
    if rest and not rest.startswith(";"):
        raise SignatureError("Signature-Input has text after its inner list")
    return components, params


def _parse_string(raw: str, what: str) -> str:
    if len(raw) < 2 or raw[0] != '"' or raw[-1] != '"' or not _STRING_BODY.fullmatch(raw[1:-1]):
        raise SignatureError(f"Signature-Input {what} is not a structured-field string")
    return raw[1:-1].replace('\\"', '"').replace("\\\\", "\\")


def _sf_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _byte_sequence(text: str) -> bytes:
    """RFC 8941 §3.3.5 ``:base64:`` holding the 64-byte Ed25519 signature."""
    if len(text) < 2 or text[0] != ":" or text[-1] != ":":
        raise SignatureError("Signature must be a byte sequence :base64:")
    try:
        raw = base64.b64decode(text[1:-1], validate=True)
    except (binascii.Error, ValueError) as exc:
        raise SignatureError("Signature is not base64") from exc
    if len(raw) != SIGNATURE_SIZE:
        raise SignatureError(f"an Ed25519 signature is {SIGNATURE_SIZE} bytes")
    return raw


def _check_components(request: HttpRequest, components: tuple[str, ...]) -> None:
    """The profile's coverage: the method and the whole target (the URI, or its path and
    query), so that no part of what is asked for can be changed under the signature."""
    covered = set(components)
    if "@method" not in covered:
        raise SignatureError("the signature must cover @method")
    if "@target-uri" not in covered and not {"@path", "@query"} <= covered:
        raise SignatureError("the signature must cover @target-uri, or @path and @query")
    for name in components:
        if name.startswith("@") and name not in DERIVED:
            raise SignatureError(f"derived component {name} is not in the profile")
        if not name.startswith("@") and not _KEY.fullmatch(name):
            raise SignatureError(f"component {name!r} is not a lowercase field name")
    if request.body and "content-digest" not in covered:
        raise SignatureError("a request with a body must cover content-digest")


def _check_digest(request: HttpRequest, components: tuple[str, ...]) -> None:
    """RFC 9530: a covered Content-Digest must be the digest of the body received (the
    signature covers the field; only this check ties the field to the bytes)."""
    if "content-digest" not in components:
        return
    stated = [part.strip() for part in request.headers.get("content-digest", "").split(",")]
    if content_digest(request.body) not in stated:
        raise SignatureError("Content-Digest is not the sha-256 of the body")


__all__ = [
    "ALG",
    "HttpRequest",
    "SignedRequest",
    "content_digest",
    "is_signed",
    "parse_signed",
    "sign_request",
    "signature_base",
    "signed_headers",
]
