"""schemas.canonical: the fast path is byte-identical to RFC 8785 (the ``rfc8785``
package) on every JSON value an entry may hold, and what no entry may hold is refused."""

from __future__ import annotations

import dataclasses
import datetime
import enum
import json
import uuid
from collections import OrderedDict, defaultdict, namedtuple
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
# Keys over a few characters share prefixes often and differ where UTF-16 code unit order
# and code point order do (U+E000–U+FFFF against non-BMP characters).
ORDER_SENSITIVE = "a\x7f\u00e9\ue000\uffff\U00010000\U0001f600"
order_keys = st.text(st.sampled_from(ORDER_SENSITIVE), max_size=3)
keys = st.one_of(ascii_keys, ascii_keys, text, order_keys)  # ASCII keys: the fast path
# The range's ends and their neighbours are drawn often, not left to chance.
INTEGER_EDGES = [SAFE_INTEGER_MAX, SAFE_INTEGER_MAX - 1, 2**31, 2**32, -1, 0, 1]
safe_ints = st.one_of(
    st.integers(-SAFE_INTEGER_MAX, SAFE_INTEGER_MAX),
    st.sampled_from(INTEGER_EDGES + [-n for n in INTEGER_EDGES]),
)
scalars = st.one_of(st.none(), st.booleans(), safe_ints, text)


def containers(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(st.lists(children, max_size=5), st.dictionaries(keys, children, max_size=5))


json_values = st.recursive(scalars, containers, max_leaves=16)

# Lone surrogates: a Python str holds them (json.loads('"\\ud800"') makes one), UTF-8 and
# so RFC 8785 cannot. Mixed into text so that most strings still have none.
surrogates = st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF)
# Joined by hand: st.text() with this alphabet hardly ever draws a surrogate.
text_with_surrogates = st.lists(st.one_of(characters, surrogates), min_size=1, max_size=6).map(
    "".join
)
any_text = st.one_of(text, text, text, text_with_surrogates)
any_keys = st.one_of(ascii_keys, ascii_keys, any_text)


def containers_with_tuples(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.lists(children, max_size=5),
        st.lists(children, max_size=3).map(tuple),
        st.dictionaries(keys, children, max_size=5),
    )


def hostile_containers(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.lists(children, max_size=5),
        st.lists(children, max_size=3).map(tuple),
        st.dictionaries(any_keys, children, max_size=5),
    )


# The fast path's domain and more (non-ASCII keys, tuples); and the same with lone
# surrogates anywhere, in keys too.
domain_values = st.recursive(scalars, containers_with_tuples, max_leaves=16)
values_with_surrogates = st.recursive(
    st.one_of(st.none(), st.booleans(), safe_ints, any_text), hostile_containers, max_leaves=16
)
floats = st.floats(allow_nan=True, allow_infinity=True)
values_with_floats = st.recursive(st.one_of(scalars, floats), containers, max_leaves=12)


def depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((depth(v) for v in value.values()), default=0)
    if isinstance(value, list | tuple):
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


def has_surrogate(value: Any) -> bool:
    if isinstance(value, str):
        return any(0xD800 <= ord(c) <= 0xDFFF for c in value)
    if isinstance(value, dict):
        return any(has_surrogate(k) or has_surrogate(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(has_surrogate(v) for v in value)
    return False


def reference_or_refusal(value: Any) -> bytes | None:
    """The rfc8785 package's bytes, or None when it refuses (lone surrogates: its
    CanonicalizationError, or UnicodeEncodeError from sorting keys by UTF-16)."""
    try:
        return bytes(rfc8785.dumps(value))
    except (rfc8785.CanonicalizationError, UnicodeEncodeError):
        return None


def bytes_or_refusal(encode: Any, value: Any) -> bytes | None:
    """encode(value), or None when it refuses; any other exception fails the test."""
    try:
        result: bytes = encode(value)
    except MalformedError:
        return None
    return result


def validated_containers(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.lists(children, max_size=5), st.dictionaries(ascii_keys, children, max_size=5)
    )


# What the strict wire models admit: ASCII keys, bounded integers, any Unicode text;
# and the same with lone surrogates in the text (JSON text can spell them: "\ud800").
validated_values = st.recursive(scalars, validated_containers, max_leaves=16)
validated_values_with_surrogates = st.recursive(
    st.one_of(st.none(), st.booleans(), safe_ints, any_text), validated_containers, max_leaves=16
)


@SETTINGS
@given(validated_values)
def test_canonical_validated_equals_rfc8785_on_the_models_domain(value: Any) -> None:
    assert canonical_validated(value) == bytes(rfc8785.dumps(value))


@SETTINGS
@given(validated_values_with_surrogates)
def test_canonical_validated_refuses_exactly_what_rfc8785_refuses(value: Any) -> None:
    result = bytes_or_refusal(canonical_validated, value)
    assert result == reference_or_refusal(value)
    assert (result is None) == has_surrogate(value)


@SETTINGS
@given(domain_values)
def test_canonical_equals_rfc8785(value: Any) -> None:
    assume(depth(value) <= NESTING_DEPTH_MAX)
    expected = bytes(rfc8785.dumps(value))
    assert canonical(value) == expected
    assert canonical_reference(value) == expected


@SETTINGS
@given(values_with_surrogates)
def test_canonical_refuses_exactly_what_rfc8785_refuses(value: Any) -> None:
    """Bytes equal to the reference's, or a MalformedError where it refuses too: never
    other bytes, never another exception."""
    assume(depth(value) <= NESTING_DEPTH_MAX)
    result = bytes_or_refusal(canonical, value)
    assert result == reference_or_refusal(value)
    assert (result is None) == has_surrogate(value)


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


def test_every_unicode_scalar_value_is_escaped_as_rfc8785_does() -> None:
    # Each character alone, and all in one string (orjson escapes in wide chunks).
    scalars = [chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]
    for value in (scalars, "".join(scalars)):
        expected = bytes(rfc8785.dumps(value))
        assert canonical(value) == expected
        assert canonical_validated(value) == expected
    ascii_keyed = {chr(c): c for c in range(0x80)}  # every ASCII key, on the fast path
    assert canonical(ascii_keyed) == canonical_validated(ascii_keyed)
    assert canonical(ascii_keyed) == bytes(rfc8785.dumps(ascii_keyed))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        # RFC 8785 §3.2.2.2's string: short escapes for \b \t \n \f \r only, else
        # lowercase \u00xx; "/" and U+007F as they are.
        (
            '\u20ac$\u000f\nA\'B"\\\\"/',
            b'"\xe2\x82\xac$\\u000f\\nA\'B\\"\\\\\\\\\\"/"',
        ),
        (
            "\b\t\n\x0b\f\r\x00\x1b\x1f\x7f",
            b'"\\b\\t\\n\\u000b\\f\\r\\u0000\\u001b\\u001f\x7f"',
        ),
        # U+2028/2029 (which JavaScript source would escape), the BOM and a non-BMP
        # character are written as UTF-8, not escaped.
        ("\u2028\u2029\ufeff\U0001f600", '"\u2028\u2029\ufeff\U0001f600"'.encode()),
        # ASCII keys with control characters, sorted by code unit (TAB < US < SPACE).
        ({"\x1f": 1, "\t": 2, " ": 3}, b'{"\\t":2,"\\u001f":1," ":3}'),
        # RFC 8785 §3.2.3's sorting example: UTF-16 code units, so U+1F600 (a surrogate
        # pair, 0xD83D…) sorts before U+FB33.
        (
            {
                "\u20ac": "Euro Sign",
                "\r": "Carriage Return",
                "\ufb33": "Hebrew Letter Dalet With Dagesh",
                "1": "One",
                "\U0001f600": "Emoji: Grinning Face",
                "\u0080": "Control",
                "\u00f6": "Latin Small Letter O With Diaeresis",
            },
            '{"\\r":"Carriage Return","1":"One","\u0080":"Control",'
            '"\u00f6":"Latin Small Letter O With Diaeresis","\u20ac":"Euro Sign",'
            '"\U0001f600":"Emoji: Grinning Face",'
            '"\ufb33":"Hebrew Letter Dalet With Dagesh"}'.encode(),
        ),
        (
            {"name": "杭州联华超市", "reason": "尺码不合\n已退", "qty": -SAFE_INTEGER_MAX},
            '{"name":"杭州联华超市","qty":-9007199254740991,"reason":"尺码不合\\n已退"}'.encode(),
        ),
    ],
    ids=["rfc8785-string", "controls", "unescaped", "control-keys", "rfc8785-sort", "chinese"],
)
def test_fixed_vectors(value: Any, expected: bytes) -> None:
    assert bytes(rfc8785.dumps(value)) == expected
    assert canonical(value) == expected
    if all(key.isascii() for key in (value if isinstance(value, dict) else {})):
        assert canonical_validated(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        {"b": 1, "a": 2, "é": 3, "\U0001f600": 4, "\uffff": 5, "": 6},  # UTF-16 key order
        {"\u20ac": "\u2028\u2029", "\x7f": '\x00\x1f\\"/'},
        ["\U0010ffff", "\U0001f600", -SAFE_INTEGER_MAX, SAFE_INTEGER_MAX, 0, True, None],
        {"amount_fen": 12_900, "nested": {"list": [[], {}, [{}]]}},
        ("a", (1, None), [()]),
    ],
)
def test_known_tricky_values(value: Any) -> None:
    assert canonical(value) == bytes(rfc8785.dumps(value))


class Colour(enum.StrEnum):
    RED = "red"


class Level(enum.IntEnum):
    HIGH = 3


class Plain(enum.Enum):
    A = "a"


class Text(str):
    __slots__ = ()


class Items(list[Any]):
    pass


class Members(dict[str, Any]):
    pass


Pair = namedtuple("Pair", "left right")


@dataclasses.dataclass(frozen=True)
class Point:
    x: int


# Subclasses of the JSON types, each beside the plain value it stands for: orjson would
# read them through the base type's C structures or refuse them, so canonical() gives
# them to the rfc8785 package. canonical_validated() (whose domain they are not in)
# refuses them, but for enums, which orjson writes as their value.
SUBCLASSED = [
    (Colour.RED, "red"),
    (Level.HIGH, 3),
    (Text("x\n"), "x\n"),
    (Items([1, "a"]), [1, "a"]),
    (Members(b=1, a=2), {"b": 1, "a": 2}),
    (OrderedDict(b=1, a=[Level.HIGH]), {"b": 1, "a": [3]}),
    (defaultdict(list, k=[1]), {"k": [1]}),
    (Pair(1, "x"), [1, "x"]),
    ({Text("b"): 1, "a": 2}, {"b": 1, "a": 2}),
    ({"k": (Colour.RED, Text("y"))}, {"k": ["red", "y"]}),
]


@pytest.mark.parametrize(("value", "plain"), SUBCLASSED, ids=lambda v: repr(v)[:30])
def test_subclasses_take_the_checked_path(value: Any, plain: Any) -> None:
    expected = canonical(plain)
    assert canonical(value) == bytes(rfc8785.dumps(value)) == expected
    assert bytes_or_refusal(canonical_validated, value) in (None, expected)


@FEWER
@given(values_with_floats)
def test_floats_anywhere_are_refused(value: Any) -> None:
    assume(has_float(value))
    assume(depth(value) <= NESTING_DEPTH_MAX)
    with pytest.raises(MalformedError):
        canonical(value)


unsafe_ints = st.one_of(
    st.integers(min_value=SAFE_INTEGER_MAX + 1),
    st.integers(max_value=-SAFE_INTEGER_MAX - 1),
    st.sampled_from([2**53, -(2**53), 2**63, 2**64, -(2**64), 10**30]),
)


@FEWER
@given(unsafe_ints, st.sampled_from([lambda n: n, lambda n: [n], lambda n: {"a": {"b": n}}]))
def test_unsafe_integers_anywhere_are_refused(number: int, place: Any) -> None:
    with pytest.raises(MalformedError):
        canonical(place(number))
    with pytest.raises(MalformedError):
        canonical_validated(place(number))


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
        (1, 2.5),
        OrderedDict(a=1.5),  # behind a subclass (the slow path)
        Pair(1, 2**53),
        {Text("k"): float("nan")},
        2**53,
        -(2**53),
        {"n": 2**64},
        {1: "non-string key"},
        "\ud800",  # a lone surrogate
        "\ud83d\ude00",  # a surrogate pair as two code points, not U+1F600
        {"\udfff": 1},
        {"é": "\ud800"},
        {"k": Text("\udc00")},
        b"bytes",
        {"set": {1, 2}},
        object(),
        # Types orjson would serialize natively, none of them JSON.
        Plain.A,
        uuid.UUID(int=1),
        datetime.date(2026, 11, 23),
        Point(1),
    ],
    ids=lambda value: type(value).__name__ if type(value) is object else repr(value),
)
def test_what_no_entry_may_hold_is_refused(value: Any) -> None:
    with pytest.raises(MalformedError):
        canonical(value)


@pytest.mark.parametrize(
    "value",
    [
        "\ud800",
        ["ok", {"k": "\udfff"}],
        2**53,
        -(2**53),
        {"n": 2**64},
        {1: "non-string key"},
        datetime.datetime(2026, 11, 23, tzinfo=datetime.UTC),
        Point(1),
        b"bytes",
    ],
    ids=repr,
)
def test_canonical_validated_refuses_what_orjson_can_check(value: Any) -> None:
    with pytest.raises(MalformedError):
        canonical_validated(value)


def test_nesting_beyond_the_limit_is_refused() -> None:
    value: Any = 1
    for _ in range(NESTING_DEPTH_MAX):
        value = [value]
    assert canonical(value) == bytes(rfc8785.dumps(value))
    for deeper in ([value], {"k": value}, {"é": value}, (value,)):
        with pytest.raises(MalformedError):
            canonical(deeper)


@pytest.mark.parametrize("leaf", ["s", 7, None, True])
def test_a_scalar_member_below_the_nesting_limit_is_refused(leaf: Any) -> None:
    value: Any = leaf
    for _ in range(NESTING_DEPTH_MAX):
        value = {"k": value}
    assert canonical(value) == bytes(rfc8785.dumps(value))
    with pytest.raises(MalformedError):
        canonical({"k": value})


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
