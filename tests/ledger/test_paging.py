"""The writer pages the projections that grow with the log (issue 11: flat memory): it
holds only a batch's working set of them, reads what a batch needs from their sealed
tables, and judges exactly as a writer holding every row would."""

from __future__ import annotations

import itertools
import json
import threading
from typing import Any

import pytest
from sqlalchemy import Engine

from ledger import store
from ledger.projections import SealedRows, _pg_keyed_rows, _sqlite_keyed_rows
from ledger.rows import TABLES, row_key
from ledger.state import PAGE_PREFIXES, WRITER_PAGED_TABLES, State
from ops.world import entry_time
from schemas.errors import PolicyError
from signing.entry import submitted
from tests.conftest import Alliance
from tests.ledger.builders import one_item_return
from tests.ledger.test_trust import _fresh, _merchants

_NUMBERS = itertools.count(1)


def _held(state: State) -> int:
    """Rows of the writer's paged tables held in memory."""
    return sum(len(state.table(name).rows_by_key) for name in WRITER_PAGED_TABLES)


def _returns(alliance: Alliance, seller: str, buyer: str, count: int) -> list[dict[str, Any]]:
    """``count`` returns, each of a receipt of its own."""
    purchased = entry_time(alliance.clock())
    documents = []
    for _ in range(count):
        number = f"R-{next(_NUMBERS)}"
        body = one_item_return(seller, purchased, number=number, refund_fen=1_000)
        documents.append(
            alliance.factory.signed(alliance.ring, "return.recorded", buyer, body, alliance.clock())
        )
    return documents


def test_the_writer_holds_no_paged_rows_between_batches(alliance: Alliance) -> None:
    seller, buyer = _merchants(alliance)
    documents = _returns(alliance, seller, buyer, 5)
    alliance.sequencer.submit_many(documents)
    state = alliance.ledger.state()
    assert state.source is not None
    assert _held(state) == 0
    # Yet every row is there when asked for: read through from the sealed tables.
    receipts = {doc["entry"]["body"]["receipt"]["ref"] for doc in documents}
    assert {row.ref for row in state.receipts.rows()} == receipts
    assert len(state.obligations) == 5
    assert state.obligations == alliance.ledger.replayed_state().obligations


def test_a_started_writer_reads_no_paged_row_and_judges_from_the_stored_ones(
    alliance: Alliance,
) -> None:
    """A second return of a returned line is judged against the stored receipt line by
    a writer that never held it."""
    seller, buyer = _merchants(alliance)
    [first] = _returns(alliance, seller, buyer, 1)
    body_again = first["entry"]["body"]
    alliance.sequencer.submit(first)
    fresh = _fresh(alliance)
    state = fresh.state()
    assert _held(state) == 0
    again = alliance.factory.signed(
        alliance.ring, "return.recorded", buyer, body_again, alliance.clock()
    )
    with pytest.raises(PolicyError, match="already had 1 of"):
        fresh.submit(again)
    assert _held(fresh.state()) == 0


def test_a_started_writer_reads_no_network_link_and_judges_from_the_stored_ones(
    alliance: Alliance,
) -> None:
    """The writer pages the networks too (they grow with the members: a start that read
    them all was most of a restarted writer's first submit). A started writer holds no
    link; a return reads its one link, a network change the member's links, and a
    writer started after the change refuses what the change ruled out."""
    seller, buyer = _merchants(alliance)  # the buyer's network names the seller
    fresh = _fresh(alliance)
    state = fresh.state()
    assert not state.networks.rows_by_key and not state.network_of
    fresh.submit(_returns(alliance, seller, buyer, 1)[0])
    assert _held(fresh.state()) == 0 and not fresh.state().network_of
    leave = {"member": buyer, "network": []}
    entry = alliance.factory.entry("member.network_changed", "region:32", leave, alliance.clock())
    fresh.submit(submitted(entry, alliance.ring.keys["region:32"], alliance.ring.keys[buyer]))
    again = _fresh(alliance)
    with pytest.raises(PolicyError, match="network"):
        again.submit(_returns(alliance, seller, buyer, 1)[0])
    assert again.state().networks == alliance.ledger.replayed_state().networks
    assert _held(again.state()) == 0


def test_another_thread_reads_through_and_keeps_nothing(alliance: Alliance) -> None:
    seller, buyer = _merchants(alliance)
    alliance.sequencer.submit_many(_returns(alliance, seller, buyer, 2))
    state = alliance.ledger.state()
    found: list[object] = []
    reader = threading.Thread(target=lambda: found.extend(state.obligations.rows()))
    reader.start()
    reader.join()
    assert len(found) == 2
    key = next(iter(state.receipts.items()))
    other: list[object] = []
    reader = threading.Thread(target=lambda: other.append(state.receipts.get(*key)))
    reader.start()
    reader.join()
    assert other[0] is not None and _held(state) == 0


def test_a_paged_writer_and_a_replay_agree_on_every_projection(alliance: Alliance) -> None:
    seller, buyer = _merchants(alliance)
    for _ in range(3):
        alliance.sequencer.submit_many(_returns(alliance, seller, buyer, 3))
    replayed = alliance.ledger.replayed_state()
    for ledger in (alliance.ledger, _fresh(alliance)):
        state = ledger.state()
        for name in WRITER_PAGED_TABLES:
            assert state.table(name) == replayed.table(name), name
        assert state.unreconciled == replayed.unreconciled
        assert state.rejections == replayed.rejections


def test_a_keyed_read_probes_the_index_once_per_prefix(engine: Engine) -> None:
    """A batch's keys are read in one statement (the keys as a JSON array): the table
    must be searched on its (keys…, version) index for each, never scanned (the
    planner's choice, read back with EXPLAIN). PostgreSQL plans these empty tables with
    a scan whatever the statement, so scans are priced out there: what is checked is
    that the statement can probe the index at all (each key cast to its column's type)."""
    postgresql = engine.dialect.name == "postgresql"
    with engine.begin() as connection:
        if postgresql:
            connection.exec_driver_sql("SET LOCAL enable_seqscan = off")
        for name in WRITER_PAGED_TABLES:
            full = len(TABLES[name][1])
            for length in sorted({full, PAGE_PREFIXES.get(name, full)}):
                keys = json.dumps([[1 if postgresql else "x"] * length])
                if postgresql:
                    statement = "EXPLAIN " + _pg_keyed_rows(name, length)
                else:
                    statement = "EXPLAIN QUERY PLAN " + _sqlite_keyed_rows(name, length)
                rows = store.driver_rows(connection, statement, [keys, 7])
                plan = "\n".join(str(row[-1] if not postgresql else row[0]) for row in rows)
                if postgresql:
                    assert "Seq Scan" not in plan and "Index" in plan, (name, plan)
                else:
                    assert "SEARCH t USING" in plan and "SCAN t" not in plan, (name, plan)


def test_every_table_reads_a_row_key_as_row_key_does() -> None:
    """State's fast key readers (slices and itemgetters over the NamedTuple rows) give
    exactly ledger.rows.row_key() of a row of each table."""
    for name, (row_type, _) in TABLES.items():
        row = row_type(*(f"{name}-{field}" for field in row_type._fields))
        assert State().table(name).key_of(row) == row_key(row), name


def test_a_batch_reads_its_network_links_in_one_read(
    alliance: Alliance, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The page hints name every link a batch's enrolments and returns read, so the
    batch asks the sealed tables once for them all, not once an entry."""
    seller, buyer = _merchants(alliance)
    reads: list[int] = []
    original = SealedRows.fetch

    def counted(self: SealedRows, name: str, prefixes: Any, below: int) -> Any:
        if name == "networks":
            reads.append(len(prefixes))
        return original(self, name, prefixes, below)

    monkeypatch.setattr(SealedRows, "fetch", counted)
    fresh = _fresh(alliance)
    enrolments = [alliance.enroll_doc("33") for _ in range(4)]
    fresh.submit_many(enrolments)
    assert reads == [4]
    reads.clear()
    third = enrolments[0]["entry"]["body"]["member"]["id"]  # its network names the seller
    fresh.submit_many(_returns(alliance, seller, buyer, 2) + _returns(alliance, seller, third, 1))
    assert reads == [2]  # three returns, two links
