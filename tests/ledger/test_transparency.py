"""The transparency page's reads: tree growth per local day and stored checkpoint notes."""

from __future__ import annotations

import pytest

from ledger.transparency import checkpoint_note, tree_growth
from schemas.errors import NotFoundError
from tests.api.support import busy
from tests.conftest import Alliance


def test_growth_is_the_last_checkpoint_of_each_local_day(alliance: Alliance) -> None:
    busy(alliance)  # entries over two days
    points = tree_growth(alliance.ledger)
    days = [point.day for point in points]
    sizes = [point.size for point in points]
    assert len(points) >= 2
    assert days == sorted(set(days)) and sizes == sorted(set(sizes))
    assert sizes[-1] == alliance.ledger.signed_checkpoint().size
    assert tree_growth(alliance.ledger, limit=1) == points[-1:]


def test_a_stored_note_is_served_as_signed(alliance: Alliance) -> None:
    latest = alliance.ledger.signed_checkpoint()
    note = checkpoint_note(alliance.ledger, latest.size)
    assert latest.note.startswith(note.rstrip("\n").rsplit("\n", 1)[0])
    assert f"\n{latest.size}\n" in note
    with pytest.raises(NotFoundError):
        checkpoint_note(alliance.ledger, latest.size + 1000)
