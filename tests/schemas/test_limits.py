"""schemas/limits.py: the limits are checked against each other, at import and on demand."""

from __future__ import annotations

from pathlib import Path

import pytest

from ledger import merkle
from schemas import limits
from schemas.errors import ConfigError

LIMITS_SOURCE = Path(limits.__file__).read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("FETCH_LEAVES_MAX", 65_537, "FETCH_LEAVES_MAX must be within 1..65536"),
        ("READ_CHUNK_ENTRIES", 0, "READ_CHUNK_ENTRIES must be at least 1"),
        ("FINDINGS_MAX", 0, "FINDINGS_MAX must be at least 1"),
        ("RECORD_OVERHEAD_BYTES", 6000, "cannot fit LEAF_BYTES_MAX"),
        ("NOTE_SIGNATURES_MAX", 40, "NOTE_SIGNATURES_MAX must be at least 16"),
        ("DEMO_ENTRY_DELAY_MAX_S", 600, "DEMO_ENTRY_DELAY_MAX_S must lie within"),
        ("BENCH_RETURN_ITEMS_MAX", 201, "BENCH_RETURN_ITEMS_MAX must be within"),
    ],
)
def test_check_limits_names_a_bad_combination(
    monkeypatch: pytest.MonkeyPatch, name: str, value: int, message: str
) -> None:
    limits.check_limits()  # the shipped values pass
    monkeypatch.setattr(limits, name, value)
    with pytest.raises(ConfigError, match=message):
        limits.check_limits()


def test_a_bad_limit_fails_at_import() -> None:
    # The module as shipped, but with one limit broken: executing it (what an import does)
    # must refuse, so a bad build never starts.
    shipped = "FINDINGS_MAX = 1000"
    assert LIMITS_SOURCE.count(shipped) == 1
    broken = LIMITS_SOURCE.replace(shipped, "FINDINGS_MAX = 0")
    with pytest.raises(ConfigError, match="FINDINGS_MAX must be at least 1"):
        exec(compile(broken, "limits_broken.py", "exec"), {"__name__": "limits_broken"})


def test_the_leaf_bound_is_the_bundle_slot() -> None:
    assert limits.LEAF_BYTES_MAX == merkle.ENTRY_LENGTH_MAX
    assert limits.LINE_BYTES_MAX == limits.LEAF_BYTES_MAX
