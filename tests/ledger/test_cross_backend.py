"""The same entries give the same log on SQLite and PostgreSQL: same leaves, same root,
same checkpoints (byte for byte), same projections."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine

from ledger import projections, store
from ledger.db import make_engine
from ledger.schema import migrate
from ops.world import entry_time
from tests.conftest import Alliance, make_alliance
from tests.ledger.builders import one_item_return


def _script(alliance: Alliance) -> list[dict[str, Any]]:
    """Enrol merchants in two regions, record a cross-region return, endorse it."""
    ring, factory, now = alliance.ring, alliance.factory, alliance.clock()
    seller_doc = alliance.enroll_doc("31")
    buyer_doc = alliance.enroll_doc("32")
    seller = seller_doc["entry"]["body"]["member"]["id"]
    buyer = buyer_doc["entry"]["body"]["member"]["id"]
    seller_store = seller_doc["entry"]["body"]["member"]["stores"][0]["id"]
    buyer_store = buyer_doc["entry"]["body"]["member"]["stores"][0]["id"]
    return_body = one_item_return(
        seller,
        entry_time(now),
        number="POS-0001",
        amount_fen=39_900,
        refund_fen=39_900,
        store=seller_store,
        accepted_store=buyer_store,
        sku="UQ-431",
    )
    return [
        seller_doc,
        buyer_doc,
        factory.signed(ring, "return.recorded", buyer, return_body, now),
    ]


def _run(alliance: Alliance) -> None:
    seller_doc, buyer_doc, return_doc = _script(alliance)
    alliance.sequencer.submit_many([seller_doc, buyer_doc])
    seq = alliance.sequencer.submit(return_doc).seq
    for region in ("31", "32"):
        body = {"targets": [seq], "decision": "approve", "reason": ""}
        doc = alliance.factory.signed(
            alliance.ring, "endorsement", f"region:{region}", body, alliance.clock()
        )
        alliance.sequencer.submit(doc)
    alliance.cosign()


def _log(engine: Engine) -> tuple[Any, ...]:
    with engine.connect() as connection:
        size = store.head_size(connection)
        leaves = [entry.leaf for entry in store.read_entries(connection, 0, size)]
        latest = store.latest_checkpoint(connection)
        rows = projections.read_all(connection)
    assert latest is not None
    return leaves, latest.note, latest.root, rows


def test_same_entries_same_root_on_both_backends(sqlite_url: str, pg_url: str) -> None:
    logs = []
    for url in (sqlite_url, pg_url):
        engine = make_engine(url)
        if engine.dialect.name == "sqlite":
            migrate(engine)
        _run(make_alliance(url, engine))
        logs.append(_log(engine))
        engine.dispose()
    sqlite_log, pg_log = logs
    assert len(sqlite_log[0]) == 6  # genesis, two members, a return, two endorsements
    assert sqlite_log == pg_log
