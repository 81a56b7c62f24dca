"""Arbitrary damage to valid submissions: every outcome is an acceptance or a typed
refusal (a RejectedError with a message), never another exception, and a refusal
consumes no seq and writes nothing."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger import store
from ledger.sequencer import Appended
from schemas.errors import RejectedError
from tests.conftest import Alliance

JUNK = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True),
    st.text(max_size=40),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a value inside a JSON document."""
    paths = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            paths += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            paths += _paths(item, (*prefix, index))
    return paths


def _damage(document: dict[str, Any], path: tuple[Any, ...], action: str, junk: Any) -> Any:
    if not path:
        return junk
    damaged = copy.deepcopy(document)
    parent: Any = damaged
    for part in path[:-1]:
        parent = parent[part]
    last = path[-1]
    if action == "delete" and isinstance(parent, dict):
        del parent[last]
    elif action == "extra" and isinstance(parent, dict):
        parent["unexpected"] = junk
    else:
        parent[last] = junk
    return damaged


def _valid(alliance: Alliance) -> dict[str, Any]:
    # A fixed network, so every example's document has the same shape (hypothesis
    # needs the same draws for the same choices).
    return alliance.enroll_doc("32", network=[])


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data(), action=st.sampled_from(["replace", "delete", "extra"]), junk=JUNK)
def test_damaged_submissions_are_refused_cleanly(
    alliance: Alliance, data: st.DataObject, action: str, junk: Any
) -> None:
    document = _valid(alliance)
    path = data.draw(st.sampled_from(_paths(document)))
    damaged = _damage(document, path, action, junk)
    with alliance.engine.connect() as connection:
        before = store.head_size(connection)
    result = alliance.sequencer.submit_many([damaged])[0]
    with alliance.engine.connect() as connection:
        after = store.head_size(connection)
    if isinstance(result, Appended):
        assert after == before + 1 or result.duplicate
        return
    assert isinstance(result, RejectedError), repr(result)
    assert result.detail
    assert after == before, "a refused submission consumed a seq"
