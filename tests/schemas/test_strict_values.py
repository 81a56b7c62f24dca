"""Strict values: what the wire models and parse_json refuse, refused the same way on both
backends before a seq is given, and never at the cost of the good entries of a batch.

* no bool (nor float) where an integer belongs, the entry version included;
* no C0 control character (U+0000-U+001F) nor DEL in any string of an entry: PostgreSQL
  text cannot hold NUL, so SQLite logged what failed a whole PostgreSQL batch;
* no integer literal beyond the safe range, however long, and no NaN or Infinity.
"""

from __future__ import annotations

import copy
import re
import typing
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

import ledger.kinds  # noqa: F401  (registers the kinds)
from ledger.sequencer import Appended
from ledger.state import KINDS as REGISTERED
from schemas.bodies import BODY_MODELS, validate_body
from schemas.canonical import SAFE_INTEGER_MAX, parse_json
from schemas.entry import KINDS as WIRE_KINDS
from schemas.entry import SUBMITTED, Kind, validate_submitted
from schemas.errors import MalformedError
from signing.entry import sign_entry
from tests.conftest import Alliance
from tests.dbtools import snapshot

CONTROL_CHARACTERS = [chr(code) for code in range(0x20)] + ["\x7f"]
BAD_CHARACTERS = ["\x00", "\x01", "\t", "\n", "\x1f", "\x7f"]


# --- every string of every model ---------------------------------------------------------


def _nodes(schema: Any, path: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every sub-schema of a pydantic core schema, with a readable path."""
    if isinstance(schema, dict):
        if "type" in schema and isinstance(schema["type"], str):
            yield path, schema
        for key, value in schema.items():
            if key not in {"metadata", "config", "cls", "ref"}:
                yield from _nodes(value, f"{path}.{key}")
    elif isinstance(schema, list):
        for index, value in enumerate(schema):
            yield from _nodes(value, f"{path}[{index}]")


ROOT_MODELS: list[type[BaseModel]] = list(BODY_MODELS.values())
# Every root schema: the envelope's (typed dicts) and each body model's.
ROOT_SCHEMAS: list[tuple[str, Any]] = [
    ("SubmittedFields", SUBMITTED.core_schema),
    *((model.__name__, model.__pydantic_core_schema__) for model in ROOT_MODELS),
]
# The envelope's body is a plain dict whose keys the body models check again (extra
# fields forbidden), so its key schema alone may be a bare string.
ENVELOPE_BODY_KEYS = "fields.body.schema.keys_schema"


def _string_schemas() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for name, schema in ROOT_SCHEMAS:
        for path, node in _nodes(schema, name):
            if node["type"] == "str" and not path.endswith(ENVELOPE_BODY_KEYS):
                found.append((path, node))
    return found


STRING_SCHEMAS = _string_schemas()
PATTERNS = sorted({node.get("pattern", "") for _, node in STRING_SCHEMAS})


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_every_string_field_has_a_pattern_that_admits_no_control_character(data: Any) -> None:
    assert len(STRING_SCHEMAS) > 30  # the walk found the models' strings
    unpatterned = [path for path, node in STRING_SCHEMAS if "pattern" not in node]
    assert unpatterned == []
    pattern = data.draw(st.sampled_from(PATTERNS))
    text = data.draw(st.from_regex(pattern, fullmatch=True))
    assert not set(text) & set(CONTROL_CHARACTERS), (pattern, text)


def test_no_model_compares_integers_by_equality() -> None:
    """A Literal of integers takes True and 1.0 for 1 even in strict mode, and every
    model is strict (which refuses bool for int)."""
    kinds = set()
    for name, schema in ROOT_SCHEMAS:
        for path, node in _nodes(schema, name):
            kinds.add(node["type"])
            if node["type"] == "literal":
                assert all(type(value) is str for value in node["expected"]), path
            if node["type"] in {"model", "typed-dict"}:
                assert node["config"]["strict"] is True, path
            if node["type"] == "typed-dict":
                assert node["extra_behavior"] == "forbid", path
    assert {"model", "typed-dict"} <= kinds  # the walk saw both kinds of container


# --- the envelope and bodies -------------------------------------------------------------


def _document(entry: dict[str, Any] | None = None) -> dict[str, Any]:
    entry = entry or {
        "v": 1,
        "kind": "credit.restored",
        "id": "0b6f1c2e-8d0a-4a52-9a63-3d7c2b1e4f50",
        "time": "2026-03-01T08:00:00Z",
        "signer": "region:31",
        "body": {"penalty": 3, "reason": "cured_on_log", "cure": None},
    }
    return {"entry": entry, "signatures": [{"key": "0" * 32, "sig": "AAAA"}]}


def test_bool_and_float_are_refused_where_integers_belong() -> None:
    assert validate_submitted(_document())["entry"]["v"] == 1
    for version in (True, 1.0, 2, 0):
        document = _document()
        document["entry"]["v"] = version
        with pytest.raises(MalformedError) as caught:
            validate_submitted(document)
        assert caught.value.field == "entry.v", version
    bodies: list[tuple[str, dict[str, Any]]] = [
        ("credit.restored", {"penalty": True, "reason": "x"}),
        ("dispute.resolved", {"dispute": False, "outcome": "upheld"}),
        ("settlement.confirmed", {"reconciliation": 1, "instruction": True}),
        ("endorsement", {"targets": [1, True], "decision": "approve", "reason": ""}),
    ]
    for kind, body in bodies:
        with pytest.raises(MalformedError):
            validate_body(kind, body)


# A valid body of each kind with free text, and where its text goes.
TEXT_FIELDS: list[tuple[str, dict[str, Any], Callable[[dict[str, Any], str], None]]] = [
    (
        "credit.penalty",
        {
            "notice": 3,
            "objection": None,
            "decision_no": "沪联信〔2026〕1号",
            "member": "91310000MA1FL0000X",
            "rule": "false_claim",
            "points": 40,
            "measure": "suspension",
            "until": "2027-03-01T08:00:00Z",
        },
        lambda body, text: body.__setitem__("decision_no", text),
    ),
]


@pytest.mark.parametrize("character", BAD_CHARACTERS, ids=lambda c: f"U+{ord(c):04X}")
@pytest.mark.parametrize("kind, body, put", TEXT_FIELDS, ids=[t[0] for t in TEXT_FIELDS])
def test_free_text_refuses_control_characters(
    kind: str, body: dict[str, Any], put: Callable[[dict[str, Any], str], None], character: str
) -> None:
    for printable in ("名字 é \u0080 ok", "a" + "\u00a0" + "b"):
        fine = copy.deepcopy(body)
        put(fine, printable)
        validate_body(kind, fine)
    bad = copy.deepcopy(body)
    put(bad, f"name{character}tail")
    with pytest.raises(MalformedError) as caught:
        validate_body(kind, bad)
    assert "control characters" in str(caught.value)
    assert caught.value.field is not None and caught.value.field.startswith("body.")


# --- parse_json --------------------------------------------------------------------------


def test_parse_json_refuses_integers_beyond_the_safe_range_of_any_length() -> None:
    assert parse_json(f"[{SAFE_INTEGER_MAX}, -{SAFE_INTEGER_MAX}, 0, -0]") == [
        SAFE_INTEGER_MAX,
        -SAFE_INTEGER_MAX,
        0,
        0,
    ]
    for text in (
        str(SAFE_INTEGER_MAX + 1),
        f"-{SAFE_INTEGER_MAX + 1}",
        "1" * 17,
        '{"amount_fen": ' + "9" * 5000 + "}",  # past Python's 4,300-digit int limit
        "[" + "-" + "7" * 100_000 + "]",
        "NaN",
        "Infinity",
        '{"a": -Infinity}',
    ):
        with pytest.raises(MalformedError) as caught:
            parse_json(text)
        message = str(caught.value)
        assert len(message) < 200 and "\n" not in message  # one short line, not 5000 digits
        assert re.search(r"safe range|is not JSON", message), message


# --- on both backends: before any seq, and never at the cost of a batch ------------------


def _resigned(alliance: Alliance, document: dict[str, Any], signer: str) -> dict[str, Any]:
    document["signatures"] = [sign_entry(document["entry"], alliance.ring.keys[signer])]
    return document


def _with_member_name(alliance: Alliance, name: str) -> dict[str, Any]:
    document = alliance.enroll_doc()
    document["entry"]["body"]["member"]["name"] = name
    return _resigned(alliance, document, "region:31")


def _with_store_name(alliance: Alliance, name: str) -> dict[str, Any]:
    document = alliance.enroll_doc()
    document["entry"]["body"]["member"]["stores"][0]["name"] = name
    return _resigned(alliance, document, "region:31")


BUILDERS = {
    "member-name": (_with_member_name, "body.member.name"),
    "store-name": (_with_store_name, "body.member.stores.0.name"),
}


def _assert_nothing_logged(alliance: Alliance, document: dict[str, Any], field: str) -> int:
    """Submit ``document``, expect a MalformedError naming ``field`` and an unchanged
    log; return the log size."""
    before = snapshot(alliance.engine)
    with pytest.raises(MalformedError) as caught:
        alliance.sequencer.submit(document)
    assert caught.value.field == field
    after = snapshot(alliance.engine)
    assert (after.head, after.entries, after.checkpoints) == (
        before.head,
        before.entries,
        before.checkpoints,
    )
    return before.head


@pytest.mark.parametrize("character", ["\x00", "\x01", "\x7f"], ids=["NUL", "SOH", "DEL"])
@pytest.mark.parametrize("what", list(BUILDERS))
def test_refused_before_a_seq_is_given(alliance: Alliance, what: str, character: str) -> None:
    build, field = BUILDERS[what]
    head = _assert_nothing_logged(alliance, build(alliance, f"Shop{character}One"), field)
    # The same document without the control character takes the next seq (the reason's
    # builder enrols its member first).
    expected = head + 1 if what == "reason" else head
    assert alliance.sequencer.submit(build(alliance, "Shop One")).seq == expected


def test_version_true_is_refused_before_a_seq_is_given(alliance: Alliance) -> None:
    document = alliance.enroll_doc()
    document["entry"]["v"] = True  # signable: RFC 8785 writes it as `true`
    head = _assert_nothing_logged(alliance, _resigned(alliance, document, "region:31"), "entry.v")
    assert alliance.sequencer.submit(alliance.enroll_doc()).seq == head


def test_one_bad_entry_never_fails_a_batch_of_good_ones(alliance: Alliance) -> None:
    before = snapshot(alliance.engine)
    documents = [alliance.enroll_doc() for _ in range(5)]
    documents.insert(3, _with_member_name(alliance, "Bad\x00Name"))
    results = alliance.sequencer.submit_many(documents)

    assert isinstance(results[3], MalformedError), results[3]
    good = [result for index, result in enumerate(results) if index != 3]
    assert all(isinstance(result, Appended) for result in good), good
    assert [result.seq for result in good if isinstance(result, Appended)] == list(
        range(before.head, before.head + 5)
    )
    after = snapshot(alliance.engine)
    assert after.head == before.head + 5
    assert [c.size for c in after.checkpoints] == [c.size for c in before.checkpoints] + [
        after.head
    ]
    assert not any(b"\\u0000" in entry.leaf for entry in after.entries)


def test_every_registered_kind_is_a_wire_kind_with_a_body_model() -> None:
    """A kind the rules judge but the wire schema does not name would be refused as
    malformed at the front door (and the other way round: named, never judged)."""
    assert set(WIRE_KINDS) == set(BODY_MODELS) == set(REGISTERED)
    assert set(typing.get_args(Kind)) == set(WIRE_KINDS)
