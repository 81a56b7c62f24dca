"""A region's node over HTTP decides a night by its own check (issue 8 rule 5 as far as a
region's scope reaches), against a real `alliance serve` on 127.0.0.1 (both backends):
an honest night is approved by the regions' nodes, a night whose report cannot be read
is queued for a person, and a report that does not recompute to its body is rejected
as report_mismatch, which voids the night."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from ledger.audit import load_trust
from nodes.http import HttpClient
from nodes.remote import MISMATCH, RemoteEndorseNode
from ops.process import alliance_server, serve_args
from ops.service import trust_from_ledger, trust_of
from schemas.errors import NotReadyError
from tests.conftest import Alliance
from tests.nodes.support import decisions
from tests.reconciliation.nights import Town, closed, make_town


@pytest.fixture
def served(alliance: Alliance, tmp_path: Path) -> Iterator[tuple[Town, int, str, Path]]:
    """A night of one cross-region return (31 owes 32), closed and served: (town, the
    night's seq, URL, keys folder)."""
    town = make_town(alliance)
    night = closed(town)
    keys = tmp_path / "keys"
    alliance.ring.save(keys)
    trust = trust_from_ledger(alliance.ledger)
    text = json.dumps(trust_of(alliance.ledger.log_keys(), trust.log.vkey))
    (keys / "trust.json").write_text(text, encoding="utf-8")
    with alliance_server(serve_args(alliance.url, keys)) as url:
        yield town, night, url, keys


class Unreachable(HttpClient):
    def night(self, day: str) -> dict[str, Any]:
        raise NotReadyError("the report is not served today")


class Tampering(HttpClient):
    """Serves the night's report with its first instruction one fen short."""

    def night(self, day: str) -> dict[str, Any]:
        answer = super().night(day)
        answer["report"]["instructions"][0]["amount_fen"] -= 1
        return answer


def _node(alliance: Alliance, keys: Path, region: str) -> RemoteEndorseNode:
    trust = load_trust(keys / "trust.json")
    return RemoteEndorseNode(region, alliance.ring.keys[f"region:{region}"], trust)


def test_regions_check_a_night_over_http(
    alliance: Alliance, served: tuple[Town, int, str, Path]
) -> None:
    town, night, url, keys = served
    size = alliance.ledger.size()
    now = datetime.now(UTC)
    # Nothing readable: queued for a person, nothing decided.
    node = _node(alliance, keys, "31")
    with Unreachable(url, alliance.ring.keys["region:31"]) as client:
        outcome = node.run(client, now)
    assert outcome.queued == [night]
    assert decisions(alliance.ledger, size) == []
    # The honest report: regions 32 (the creditor's), 33 and 34 approve it by their check.
    for region in ("32", "33", "34"):
        with HttpClient(url, alliance.ring.keys[f"region:{region}"]) as client:
            outcome = _node(alliance, keys, region).run(client, now)
        assert (outcome.approved, outcome.rejected, outcome.queued) == (1, 0, [])
    # A report one fen short: region 31 rejects it, which voids the night.
    with Tampering(url, alliance.ring.keys["region:31"]) as client:
        outcome = node.run(client, now)
    assert (outcome.approved, outcome.rejected, outcome.queued) == (0, 1, [])
    assert "is not its recomputation" in node.mismatches[night]
    logged = decisions(alliance.ledger, size)
    assert sorted((signer, body["decision"], body["reason"]) for signer, body in logged) == [
        ("region:31", "reject", MISMATCH),
        ("region:32", "approve", ""),
        ("region:33", "approve", ""),
        ("region:34", "approve", ""),
    ]
    alliance.clock.set(datetime.now(UTC))  # the nodes logged at the server's clock
    row = alliance.ledger.state().nights.get(night)
    assert row is not None and row.day == town.day.isoformat() and row.status == "void"
