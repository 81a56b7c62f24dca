"""The sequencer assembles each leaf from bytes it already canonicalized; they must equal
RFC 8785 of the whole record, as an outside verifier computes it."""

from __future__ import annotations

from typing import Any

import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.sequencer import record_leaf
from schemas.canonical import canonical

texts = st.text(max_size=20)
entries = st.fixed_dictionaries(
    {
        "v": st.just(1),
        "kind": st.sampled_from(["return.recorded", "endorsement"]),
        "id": st.uuids().map(str),
        "time": st.just("2026-11-23T10:00:00+08:00"),
        "signer": texts,
        "body": st.dictionaries(texts, st.one_of(texts, st.integers(0, 2**53 - 1)), max_size=4),
    }
)
signatures = st.lists(st.fixed_dictionaries({"key": texts, "sig": texts}), max_size=3)


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 2**53 - 1), entries, signatures)
def test_record_leaf_is_rfc8785_of_the_record(
    seq: int, entry: dict[str, Any], sigs: list[dict[str, str]]
) -> None:
    logged = "2026-11-23T02:00:00.000000Z"  # as format_utc() writes it
    record = {"seq": seq, "logged": logged, "entry": entry, "signatures": sigs}
    leaf = record_leaf(seq, logged, canonical(entry), canonical(sigs))
    assert leaf == bytes(rfc8785.dumps(record))
