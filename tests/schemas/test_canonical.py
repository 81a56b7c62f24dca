"""schemas.canonical: the fast path is byte-identical to RFC 8785 (the ``rfc8785``
package) on every JSON value an entry may hold, and what no entry may hold is refused."""

from __future__ import annotations

import json
from typing import Any

import pytest
import rfc8785
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from schemas.canonical import (
    SAFE_INTEGER_MAX,
    canonical,
    canonical_reference,
    canonical_validated,
    parse_json,
)
from schemas.errors import MalformedError
from schemas.limits import NESTING_DEPTH_MAX

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FEWER = settings(SETTINGS, max_examples=100)

# Every code point but lone surrogates (not Unicode scalar values: no JSON text can hold
# them as UTF-8), with the awkward ones drawn often: C0 controls, DEL, quotes and
# backslashes, U+2028/2029, BMP characters above the surrogates (where UTF-16 and code
# point order differ from non-BMP ones), non-BMP characters.
AWKWARD = "".join(chr(c) for c in range(0x20)) + '\x7f"\\/\u2028\u2029\ufeff\uffff\ue000'
characters = st.one_of(
    st.characters(exclude_categories=("Cs",)),
    st.sampled_from(AWKWARD),
    st.characters(min_codepoint=0x10000, max_codepoint=0x10FFFF),
    st.characters(min_codepoint=0xE000, max_codepoint=0xFFFF),
)
text = st.text(characters, max_size=12)
ascii_keys = st.text(st.characters(max_codepoint=0x7F), max_size=8)
keys = st.one_of(ascii_keys, ascii_keys, text)  # ASCII keys keep values on the fast path
safe_ints = st.integers(-SAFE_INTEGER_MAX, SAFE_INTEGER_MAX)
scalars = st.one_of(st.none(), st.booleans(), safe_ints, text)


def containers(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(st.lists(children, max_size=5), st.dictionaries(keys, children, max_size=5))


json_values = st.recursive(scalars, containers, max_leaves=16)
floats = st.floats(allow_nan=True, allow_infinity=True)
values_with_floats = st.recursive(st.one_of(scalars, floats), containers, max_leaves=12)


def depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((depth(v) for v in value), default=0)
    return 0


def has_float(value: Any) -> bool:
    if isinstance(value, float):
        return True
    if isinstance(value, dict):
        return any(has_float(v) for v in value.values())
    if isinstance(value, list):
        return any(has_float(v) for v in value)
    return False


def validated_containers(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.lists(children, max_size=5), st.dictionaries(ascii_keys, children, max_size=5)
    )


# What the strict wire models admit: ASCII keys, bounded integers, any Unicode text.
validated_values = st.recursive(scalars, validated_containers, max_leaves=16)


@SETTINGS
@given(validated_values)
def test_canonical_validated_equals_rfc8785_on_the_models_domain(value: Any) -> None:
    assert canonical_validated(value) == bytes(rfc8785.dumps(value))


@SETTINGS
@given(json_values)
def test_canonical_equals_rfc8785(value: Any) -> None:
    assume(depth(value) <= NESTING_DEPTH_MAX)
    expected = bytes(rfc8785.dumps(value))
    assert canonical(value) == expected
    assert canonical_reference(value) == expected


@FEWER
@given(st.dictionaries(text, json_values, min_size=1, max_size=4))
def test_canonical_objects_with_any_keys_equal_rfc8785(value: dict[str, Any]) -> None:
    assume(depth(value) <= NESTING_DEPTH_MAX)
    assert canonical(value) == bytes(rfc8785.dumps(value))


@FEWER
@given(json_values)
def test_canonical_bytes_parse_back_to_the_value(value: Any) -> None:
    assume(depth(value) <= NESTING_DEPTH_MAX)
    data = canonical(value)
    assert parse_json(data) == value
    assert canonical(parse_json(data)) == data


@pytest.mark.parametrize(
    "value",
    [
        {"b": 1, "a": 2, "é": 3, "\U0001f600": 4, "\uffff": 5, "": 6},  # UTF-16 key order
        {"\u20ac": "\u2028\u2029", "\x7f": '\x00\x1f\\"/'},
        ["\U0010ffff", "\U0001f600", -SAFE_INTEGER_MAX, SAFE_INTEGER_MAX, 0, True, None],
        {"amount_fen": 12_900, "nested": {"list": [[], {}, [{}]]}},
    ],
)
def test_known_tricky_values(value: Any) -> None:
    assert canonical(value) == bytes(rfc8785.dumps(value))


@FEWER
@given(values_with_floats)
def test_floats_anywhere_are_refused(value: Any) -> None:
    assume(has_float(value))
    assume(depth(value) <= NESTING_DEPTH_MAX)
    with pytest.raises(MalformedError):
        canonical(value)


@pytest.mark.parametrize(
    "value",
    [
        1.0,
        0.5,
        -0.0,
        float("nan"),
        float("inf"),
        {"amount_fen": 100.0},
        {"a": "x", "é": [1, 2.5]},  # a float behind a non-ASCII key (the slow path)
        [1, [2, [3, 1e300]]],
        2**53,
        -(2**53),
        {"n": 2**64},
        {1: "non-string key"},
        "\ud800",  # a lone surrogate
        {"\udfff": 1},
        {"é": "\ud800"},
        b"bytes",
        {"set": {1, 2}},
        object(),
    ],
    ids=lambda value: type(value).__name__ if type(value) is object else repr(value),
)
def test_what_no_entry_may_hold_is_refused(value: Any) -> None:
    with pytest.raises(MalformedError):
        canonical(value)


def test_nesting_beyond_the_limit_is_refused() -> None:
    value: Any = 1
    for _ in range(NESTING_DEPTH_MAX):
        value = [value]
    assert canonical(value) == bytes(rfc8785.dumps(value))
    for deeper in ([value], {"k": value}, {"é": value}):
        with pytest.raises(MalformedError):
            canonical(deeper)


# --- parse_json ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        "1.0",
        "1e5",
        "1E-2",
        "-0.5",
        '{"amount_fen": 100.00}',
        '[1, [2, {"x": 3.25}]]',
        "NaN",
        "Infinity",
        "-Infinity",
        '{"a": NaN}',
        '{"a": 1, "a": 1}',
        '{"a": 1, "b": {"c": 1, "c": 2}}',
        '[{"k": 1, "k": 1}]',
        "",
        "{",
        '{"a": 1} trailing',
        b"\xff\xfe{}",
        b'{"a": "\xc3"}',
        "[" * 100_000,
    ],
    ids=lambda data: repr(data)[:40],
)
def test_parse_json_refuses_floats_constants_duplicates_and_garbage(data: str | bytes) -> None:
    with pytest.raises(MalformedError):
        parse_json(data)


@FEWER
@given(st.dictionaries(keys, json_values, min_size=1, max_size=4), st.data())
def test_parse_json_refuses_a_duplicated_key_anywhere(value: dict[str, Any], data: Any) -> None:
    assume(depth(value) <= NESTING_DEPTH_MAX)
    key = data.draw(st.sampled_from(sorted(value)))
    body = json.dumps(value, ensure_ascii=False)[1:-1]
    duplicated = "{" + body + ", " + json.dumps(key) + ": 0}"
    with pytest.raises(MalformedError):
        parse_json(duplicated)
    with pytest.raises(MalformedError):
        parse_json("[" + duplicated + "]")


@FEWER
@given(json_values)
def test_parse_json_accepts_what_json_writes(value: Any) -> None:
    assume(depth(value) <= NESTING_DEPTH_MAX)
    for text_form in (
        json.dumps(value),
        json.dumps(value, ensure_ascii=False, indent=2),
    ):
        assert parse_json(text_form) == value
        assert parse_json(text_form.encode("utf-8")) == value
