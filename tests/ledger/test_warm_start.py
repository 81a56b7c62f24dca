"""A new writer starts from the projection tables: the state it loads equals a replay of
the log, indexes included, and it goes on appending where the log stands."""

from __future__ import annotations

from ledger import projections, store
from ledger.app import Ledger
from ledger.sequencer import replay
from ledger.state import State
from tests.conftest import Alliance
from tests.ledger.test_cross_backend import _run


def _replayed(alliance: Alliance) -> State:
    state = State()
    with alliance.engine.connect() as connection:
        size = store.head_size(connection)
        replay(state, store.read_entries(connection, 0, size))
    return state


def test_loaded_state_equals_a_replay(alliance: Alliance) -> None:
    _run(alliance)
    with alliance.engine.connect() as connection:
        sealer = alliance.sequencer.sealer_in(connection)
        loaded = projections.load_state(connection, sealer, store.head_size(connection)).state
    replayed = _replayed(alliance)
    assert loaded.size == replayed.size == 6
    assert loaded.last_logged == replayed.last_logged
    assert loaded.all_tables() == replayed.all_tables()
    assert loaded.current_keys == replayed.current_keys
    assert loaded.member_penalties == replayed.member_penalties


def test_a_new_writer_appends_from_the_loaded_state(alliance: Alliance) -> None:
    _run(alliance)
    writer = Ledger(alliance.engine, alliance.ring.keys["operator"], alliance.clock).writer
    appended = writer.submit(alliance.enroll_doc("33"))
    assert appended.seq == 6
    assert writer.state().all_tables() == _replayed(alliance).all_tables()
