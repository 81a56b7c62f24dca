"""Canonical bytes: RFC 8785 (JSON Canonicalization Scheme).

``canonical()`` is the contract. For the values Alliance Ledger writes (objects whose keys
are ASCII, strings, integers within the IEEE-754 safe range, booleans and null; never a
float) the standard library's ``json.dumps`` with sorted keys produces the same bytes as
RFC 8785, several times faster. ``canonical()`` takes that fast path only after checking
the value is in that domain and falls back to the ``rfc8785`` package otherwise;
tests/schemas/test_canonical.py proves the two byte-identical with hypothesis.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import rfc8785

from schemas.errors import MalformedError
from schemas.limits import NESTING_DEPTH_MAX, QUOTED_TEXT_MAX

# JavaScript's Number.MAX_SAFE_INTEGER: RFC 8785 serializes numbers as IEEE-754 doubles,
# so an integer beyond it would not round-trip through a conforming verifier.
SAFE_INTEGER_MAX = 2**53 - 1

# No circular-reference tracking (a dict of ids per call, half the encoding time): the
# encoder only sees values _fast_path_ok() accepted, and a cycle never gets past its
# nesting limit.
_encoder = json.JSONEncoder(
    ensure_ascii=False,
    allow_nan=False,
    sort_keys=True,
    separators=(",", ":"),
    check_circular=False,
)


def _fast_path_ok(value: Any, depth: int) -> bool:
    """True when stdlib JSON output equals RFC 8785 output for ``value``.

    Raises MalformedError for values no entry may contain (floats, unsafe integers,
    excessive nesting), so a wrong value never reaches the slow path either.

    Every entry passes through here several times, so the common exact types (str,
    dict, list, int) are dispatched on ``type()`` first; any other value, subclasses
    included, takes the general ``isinstance`` checks in ``_other_ok``."""
    if depth > NESTING_DEPTH_MAX:
        raise MalformedError(f"nesting deeper than {NESTING_DEPTH_MAX}")
    kind = type(value)
    if kind is str:
        return True
    if kind is dict:
        return _dict_ok(value, depth)
    if kind is list:
        return _items_ok(value, depth)
    if kind is int:
        return _int_ok(value)
    return _other_ok(value, depth)


def _dict_ok(value: dict[Any, Any], depth: int) -> bool:
    ok = True
    # A string member is fine unless it sits below the nesting limit (checked above).
    strings_ok = depth < NESTING_DEPTH_MAX
    for key, item in value.items():
        if not isinstance(key, str):
            raise MalformedError("object keys must be strings")
        # Key order: RFC 8785 sorts by UTF-16 code units, Python by code points;
        # the two agree on ASCII.
        ok = ok and key.isascii()
        if strings_ok and type(item) is str:
            continue
        ok = _fast_path_ok(item, depth + 1) and ok
    return ok


def _items_ok(value: list[Any] | tuple[Any, ...], depth: int) -> bool:
    # Every item is checked (no short cut), so a bad value anywhere raises.
    return all([_fast_path_ok(item, depth + 1) for item in value])


def _int_ok(value: int) -> bool:
    if not -SAFE_INTEGER_MAX <= value <= SAFE_INTEGER_MAX:
        raise MalformedError(f"integer {value} is outside the safe range ±(2^53-1)")
    return True


def _other_ok(value: Any, depth: int) -> bool:
    if isinstance(value, str):
        return True
    if value is None or isinstance(value, bool):
        return True
    if isinstance(value, int):
        return _int_ok(value)
    if isinstance(value, float):
        raise MalformedError("floats are not allowed: money is integer fen")
    if isinstance(value, list | tuple):
        return _items_ok(value, depth)
    if isinstance(value, dict):
        return _dict_ok(value, depth)
    raise MalformedError(f"value of type {type(value).__name__} is not JSON")


def canonical(value: Any) -> bytes:
    """RFC 8785 canonical bytes of a JSON value."""
    try:
        if _fast_path_ok(value, 0):
            return _encoder.encode(value).encode("utf-8")
        return bytes(rfc8785.dumps(value))
    except UnicodeEncodeError as exc:
        raise MalformedError("strings must be valid Unicode (no lone surrogates)") from exc
    except rfc8785.CanonicalizationError as exc:
        raise MalformedError(f"not canonicalizable: {exc}") from exc


def canonical_object(members: Mapping[str, bytes]) -> bytes:
    """RFC 8785 bytes of a JSON object, given the canonical bytes of each member's value.

    JCS writes an object as its members sorted by key, each value in its own canonical
    form, so ``canonical_object({k: canonical(v), …}) == canonical({k: v, …})`` whenever
    the keys are ASCII (sorted alike by UTF-16 code units and by code points). A caller
    that already holds a member's canonical bytes (the sequencer: an entry's) builds the
    enclosing object without serializing that member again."""
    parts = []
    for key in sorted(members):
        if not key.isascii():
            raise MalformedError("canonical_object takes ASCII keys only")
        parts.append(_encoder.encode(key).encode("ascii") + b":" + members[key])
    return b"{" + b",".join(parts) + b"}"


def canonical_text(value: Any) -> str:
    """canonical() as text, for projection columns that hold JSON."""
    return canonical(value).decode("utf-8")


def canonical_validated(value: Any) -> bytes:
    """RFC 8785 bytes of a value that already passed the strict wire models
    (schemas.entry, schemas.bodies): those admit only ASCII keys, strings, booleans,
    null and integers bounded within the safe range, which is the fast path's domain,
    so the domain walk is skipped. tests/schemas/test_canonical.py checks this against
    the rfc8785 package for entries of every kind."""
    try:
        return _encoder.encode(value).encode("utf-8")
    except UnicodeEncodeError as exc:
        raise MalformedError("strings must be valid Unicode (no lone surrogates)") from exc


def canonical_reference(value: Any) -> bytes:
    """The ``rfc8785`` package's output, used by tests and the auditor's strict mode."""
    return bytes(rfc8785.dumps(value))


# The longest JSON integer literal within the safe range: 16 digits and a minus sign.
# Longer literals are refused before int() sees them (Python refuses more than 4,300
# digits with a ValueError, and converting is quadratic in the length).
INTEGER_TEXT_LENGTH_MAX = len(str(SAFE_INTEGER_MAX)) + 1


def _quoted(text: str) -> str:
    if len(text) <= QUOTED_TEXT_MAX:
        return text
    return f"{text[: QUOTED_TEXT_MAX // 2]}… ({len(text)} characters)"


def _safe_int(text: str) -> int:
    if len(text) <= INTEGER_TEXT_LENGTH_MAX:
        value = int(text)
        if -SAFE_INTEGER_MAX <= value <= SAFE_INTEGER_MAX:
            return value
    raise MalformedError(f"integer {_quoted(text)} is outside the safe range ±(2^53-1)")


def _no_float(text: str) -> Any:
    raise MalformedError(f"float {_quoted(text)} is not allowed: money is integer fen")


def _no_constant(text: str) -> Any:
    raise MalformedError(f"{text} is not JSON")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, item in pairs:
        if key in result:
            raise MalformedError(f"duplicate key {_quoted(key)!r}")
        result[key] = item
    return result


def parse_json(data: bytes | str) -> Any:
    """Parse JSON, refusing floats, NaN, Infinity, integers outside the safe range and
    duplicate keys (RFC 8785 inputs must be I-JSON)."""
    try:
        return json.loads(
            data,
            parse_int=_safe_int,
            parse_float=_no_float,
            parse_constant=_no_constant,
            object_pairs_hook=_no_duplicates,
        )
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError and any other
        raise MalformedError(f"not valid JSON: {exc}") from exc
    except RecursionError as exc:
        raise MalformedError("JSON nested too deeply") from exc
