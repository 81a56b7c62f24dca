r"""Canonical bytes: RFC 8785 (JSON Canonicalization Scheme).

``canonical()`` is the contract. For the values Alliance Ledger writes (objects whose keys
are ASCII, strings, integers within the IEEE-754 safe range, booleans and null; never a
float) ``orjson`` with sorted keys produces the same bytes as RFC 8785, far faster than the
``rfc8785`` package. ``canonical()`` takes that fast path only after ``_fast_path_ok()``
has checked the value is in that domain and falls back to the ``rfc8785`` package
otherwise; tests/schemas/test_canonical.py checks the two byte-identical with hypothesis
and on every Unicode scalar value.

Why orjson equals RFC 8785 on the domain (exact ``dict`` with exact ASCII ``str`` keys,
exact ``list`` or ``tuple``, exact ``str``, ``int`` within ±(2^53-1), ``True``, ``False``,
``None``; at most NESTING_DEPTH_MAX deep):

- Strings (RFC 8785 §3.2.2.2): both write UTF-8 and escape exactly ``"``, ``\`` and
  U+0000–U+001F, the latter as ``\b \t \n \f \r`` or else ``\u00xx`` in lowercase hex;
  everything else (``/``, U+007F, U+2028/U+2029, non-BMP characters) is written as is.
- Lone surrogates (a Python ``str`` can hold them, from ``"\ud800"`` in JSON text) have
  no UTF-8 form: orjson raises ``JSONEncodeError``, ``rfc8785`` ``CanonicalizationError``
  (or ``UnicodeEncodeError`` while sorting keys); ``canonical()`` turns each into a
  MalformedError, so neither path yields bytes for them.
- Key order (§3.2.3): RFC 8785 sorts by UTF-16 code units, orjson by UTF-8 bytes, i.e. by
  code points. The two disagree only between a non-BMP character and one in
  U+E000–U+FFFF, so they agree on ASCII keys; other keys take the ``rfc8785`` path.
- Integers (§3.2.2.3): within ±(2^53-1) an integer is its own shortest double form, the
  plain decimal digits both write. Floats, which orjson would format its own way (and
  NaN as ``null``), never get there: ``_fast_path_ok()`` refuses them and integers
  beyond the safe range, and OPT_STRICT_INTEGER refuses the latter again in orjson.
- ``true``, ``false``, ``null`` alike; exact tuples are arrays in both. orjson's own
  nesting limit (254) lies far beyond NESTING_DEPTH_MAX.
- Subclasses of ``str``, ``int``, ``dict``, ``list`` and ``tuple`` (enums, OrderedDict,
  namedtuple) and ``str`` subclass keys are not in the domain: orjson reads some through
  the C structures, ignoring overridden methods, and refuses others (namedtuple, subclass
  keys), so they take the ``rfc8785`` path. OPT_PASSTHROUGH_* makes orjson refuse rather
  than guess at subclasses, dataclasses and datetimes if one ever reaches it.
"""

from __future__ import annotations

import json
from typing import Any

import orjson
import rfc8785

from schemas.errors import MalformedError
from schemas.limits import NESTING_DEPTH_MAX, QUOTED_TEXT_MAX

# JavaScript's Number.MAX_SAFE_INTEGER: RFC 8785 serializes numbers as IEEE-754 doubles,
# so an integer beyond it would not round-trip through a conforming verifier.
SAFE_INTEGER_MAX = 2**53 - 1

# Sorted keys; the rest only narrow what orjson accepts (none changes a byte of output in
# the domain): integers beyond ±(2^53-1), and subclasses, dataclasses and datetimes,
# which orjson would otherwise serialize in a form of its own, raise JSONEncodeError.
_ORJSON_OPTIONS = (
    orjson.OPT_SORT_KEYS
    | orjson.OPT_STRICT_INTEGER
    | orjson.OPT_PASSTHROUGH_SUBCLASS
    | orjson.OPT_PASSTHROUGH_DATACLASS
    | orjson.OPT_PASSTHROUGH_DATETIME
)


def _fast_path_ok(value: Any, depth: int) -> bool:
    """True when orjson output equals RFC 8785 output for ``value`` (the domain in the
    module docstring).

    Raises MalformedError for values no entry may contain (floats, unsafe integers,
    excessive nesting, non-string keys), so a wrong value never reaches the slow path
    either.

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
    # A string or safe integer member is fine unless it sits below the nesting limit
    # (checked above): those, most members, are checked here without a call.
    scalars_ok = depth < NESTING_DEPTH_MAX
    for key, item in value.items():
        if type(key) is not str:
            if not isinstance(key, str):
                raise MalformedError("object keys must be strings")
            ok = False  # orjson refuses str subclass keys
        elif ok:
            # Key order: RFC 8785 sorts by UTF-16 code units, orjson by code points; the
            # two agree on ASCII.
            ok = key.isascii()
        kind = type(item)
        if scalars_ok and (
            kind is str or (kind is int and -SAFE_INTEGER_MAX <= item <= SAFE_INTEGER_MAX)
        ):
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
    """Everything but exact str, dict, list and int. Subclasses (StrEnum, IntEnum,
    OrderedDict, namedtuple…) are checked like their base type but take the rfc8785 path:
    orjson serializes them through the base type's C structures or refuses them."""
    if value is None or isinstance(value, bool):  # bool cannot be subclassed
        return True
    if isinstance(value, str):
        return False
    if isinstance(value, int):
        _int_ok(value)  # for its refusal
        return False
    if isinstance(value, float):
        raise MalformedError("floats are not allowed: money is integer fen")
    if isinstance(value, list | tuple):
        return _items_ok(value, depth) and type(value) is tuple
    if isinstance(value, dict):
        _dict_ok(value, depth)  # for its refusals
        return False
    raise MalformedError(f"value of type {type(value).__name__} is not JSON")


def canonical(value: Any) -> bytes:
    """RFC 8785 canonical bytes of a JSON value."""
    try:
        if _fast_path_ok(value, 0):
            return canonical_validated(value)
        return bytes(rfc8785.dumps(value))
    except UnicodeEncodeError as exc:  # rfc8785 sorting keys that hold lone surrogates
        raise MalformedError("strings must be valid Unicode (no lone surrogates)") from exc
    except rfc8785.CanonicalizationError as exc:
        raise MalformedError(f"not canonicalizable: {exc}") from exc


def canonical_text(value: Any) -> str:
    """canonical() as text, for projection columns that hold JSON."""
    return canonical(value).decode("utf-8")


def canonical_validated(value: Any) -> bytes:
    """RFC 8785 bytes of a value that already passed the strict wire models
    (schemas.entry, schemas.bodies) as parsed by parse_json(): those admit only exact
    dicts with ASCII keys, lists, strings, booleans, null and integers bounded within the
    safe range, which is the fast path's domain, so the domain walk is skipped.
    tests/schemas/test_canonical.py checks this against the rfc8785 package.

    orjson still refuses lone surrogates, unsafe integers, non-string keys and
    subclasses (MalformedError). It does not refuse floats (written in orjson's own
    form, NaN as null), enums or UUIDs: keeping those out is the models' job."""
    try:
        return orjson.dumps(value, option=_ORJSON_OPTIONS)
    except orjson.JSONEncodeError as exc:
        raise MalformedError(f"not canonicalizable: {exc}") from exc


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
