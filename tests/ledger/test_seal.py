"""Projection seals (ledger/seal.py): a keyed MAC over a row's values and version."""

from __future__ import annotations

import hashlib

import orjson
import pytest

from ledger.projections import _sealed
from ledger.rows import ObligationRow
from ledger.seal import _ROW_PREFIX, SEAL_SIZE, Sealer

SECRET = bytes(range(32))


@pytest.fixture
def sealer() -> Sealer:
    return Sealer(SECRET)


def test_a_seal_binds_the_table_the_values_and_the_version(sealer: Sealer) -> None:
    values = ("91310000MA1FL0001X", "S1", 12_345, None)
    seal = sealer.row("receipts", values, 7)
    assert sealer.row_ok("receipts", values, 7, seal)
    assert not sealer.row_ok("receipts", values, 8, seal)
    assert not sealer.row_ok("obligations", values, 7, seal)
    assert not sealer.row_ok("receipts", (*values[:2], 0, None), 7, seal)
    assert not Sealer(bytes(32)).row_ok("receipts", values, 7, seal)


def test_values_json_cannot_carry_are_sealed_over_their_repr(sealer: Sealer) -> None:
    # A lone surrogate and an integer past 64 bits take the repr() encoding: still
    # deterministic, and distinct from every neighbour.
    for odd, neighbour in (("\ud800", "\\ud800"), (2**70, str(2**70))):
        seal = sealer.row("members", ("a", odd), 1)
        assert seal == sealer.row("members", ("a", odd), 1)
        assert sealer.row_ok("members", ("a", odd), 1, seal)
        assert seal != sealer.row("members", ("a", neighbour), 1)


def test_none_and_text_and_numbers_never_collide(sealer: Sealer) -> None:
    rows = [("1",), (1,), (None,), ("None",), ("null",), ("",)]
    seals = {sealer.row("meta", (*row, "x"), 0) for row in rows}
    assert len(seals) == len(rows)


def test_a_row_is_sealed_over_the_json_of_its_values(sealer: Sealer) -> None:
    # Rows are NamedTuples, which orjson refuses: the writer must hand the sealer a
    # plain tuple, or every seal would take the slow repr() path (other bytes too).
    row = ObligationRow(
        9,
        "return",
        "91310000MA1FL0001X",
        "91310000MA1FL0002X",
        12_345,
        "pending",
        None,
        "2026-11-23T02:00:00Z",
        None,
    )
    with pytest.raises(TypeError):
        orjson.dumps((row, 7))
    (stored,) = _sealed(sealer, "obligations", [(row, 7)])
    assert stored[:-1] == (*row, 7)
    assert all(type(value) in {str, int, type(None)} for value in stored[:-1])
    keyed = hashlib.blake2b(
        _ROW_PREFIX + b"obligations\n" + orjson.dumps([list(row), 7]),
        key=SECRET,
        digest_size=SEAL_SIZE,
    )
    assert stored[-1] == keyed.digest()
    assert sealer.row_ok("obligations", tuple(row), 7, stored[-1])
