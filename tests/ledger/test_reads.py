"""ledger.reads: each typed read, by plain SQL over the stored projections, equals what the
writer's in-memory State says for the same log (on SQLite and PostgreSQL)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest

from ledger.kinds.credit import credit_as_of
from ledger.reads import MemberView, Reads
from ledger.rows import ObligationRow
from ledger.state import State
from nodes.endorse import awaiting_region
from ops.world import entry_time, member_body
from tests.conftest import Alliance
from tests.ledger.builders import one_item_return

REGIONS = ("31", "32", "33", "34")
STATUSES = ("pending", "effective", "held", "void")


@dataclass
class Busy:
    """A log with every kind of row the reads join: members with stores and exclusions,
    returns (cross-member and own), an advance, approvals, a rejection, an upheld
    dispute, an open dispute and a penalty."""

    seller: str
    buyer: str
    fund: str
    returns: list[int]
    advance: int
    open_dispute: int


def _submit(alliance: Alliance, kind: str, signer: str, body: dict[str, Any]) -> int:
    alliance.ring.ensure(signer)
    signed = alliance.factory.signed(alliance.ring, kind, signer, body, alliance.clock())
    return alliance.sequencer.submit(signed).seq


def _enrol(alliance: Alliance, region: str, **fields: Any) -> str:
    member = alliance.new_uscc(region)
    key = alliance.ring.ensure(member).public.wire()
    _submit(
        alliance, "member.enrolled", f"region:{region}", member_body(member, region, key, **fields)
    )
    return member


def _return(
    alliance: Alliance, seller: str, acceptor: str, number: str, refund_fen: int, store: str
) -> int:
    purchased = entry_time(alliance.clock() - timedelta(days=1))
    body = one_item_return(
        seller, purchased, number=number, refund_fen=refund_fen, accepted_store=store
    )
    return _submit(alliance, "return.recorded", acceptor, body)


def _endorse(alliance: Alliance, region: str, targets: list[int], decision: str) -> None:
    body = {"targets": targets, "decision": decision, "reason": "checked"}
    _submit(alliance, "endorsement", f"region:{region}", body)


def _busy(alliance: Alliance) -> Busy:
    seller = _enrol(
        alliance, "31", stores=[("S1", "310101"), ("S2", "310104")], excluded=["toys", "shoes"]
    )
    buyer = _enrol(alliance, "32", stores=[("S1", "320101")])
    fund = _enrol(alliance, "33", kind="fund", stores=[])
    returns = [
        _return(alliance, seller, buyer, "R-1", 6_000, "S1"),
        _return(alliance, seller, buyer, "R-2", 4_000, "S1"),
        _return(alliance, seller, buyer, "R-3", 3_000, "S1"),
        _return(alliance, seller, buyer, "R-4", 2_000, "S1"),
        _return(alliance, seller, seller, "R-5", 1_000, "S2"),
    ]
    advance_body = {"liable": seller, "case": "C-1", "basis": "消法第44条", "amount_fen": 9_000}
    advance = _submit(alliance, "advance.paid", fund, advance_body)
    _endorse(alliance, "31", [*returns[:3], returns[4], advance], "approve")
    _endorse(alliance, "33", [advance], "approve")
    _endorse(alliance, "32", returns[:1], "approve")
    _endorse(alliance, "32", returns[1:2], "reject")
    upheld = _submit(alliance, "claim.disputed", seller, {"target": returns[2], "reason": "no"})
    _submit(alliance, "dispute.resolved", "region:31", {"dispute": upheld, "outcome": "upheld"})
    open_dispute = _submit(
        alliance, "claim.disputed", seller, {"target": returns[3], "reason": "no"}
    )
    alliance.clock.advance(days=1)
    penalty = {
        "member": seller,
        "rule": "overdue_settlement",
        "points": 10,
        "listing": "watch",
        "until": entry_time(alliance.clock() + timedelta(days=30)),
        "evidence": [advance],
    }
    _submit(alliance, "credit.penalty", "region:31", penalty)
    return Busy(seller, buyer, fund, returns, advance, open_dispute)


@pytest.fixture
def busy(alliance: Alliance) -> tuple[Busy, State, Reads]:
    scenario = _busy(alliance)
    return scenario, alliance.ledger.state(), alliance.ledger.reads()


def test_member_view_has_its_stores_and_exclusions(busy: tuple[Busy, State, Reads]) -> None:
    scenario, state, reads = busy
    for member in (scenario.seller, scenario.buyer, scenario.fund):
        row = state.member(member)
        assert row is not None
        stores = tuple(
            sorted((s for s in state.stores.rows() if s.member == member), key=lambda s: s.store_id)
        )
        excluded = tuple(sorted(e.category for e in state.exclusions.rows() if e.member == member))
        assert reads.member(member) == MemberView(row, stores, excluded)
    view = reads.member(scenario.seller)
    assert view is not None
    assert view.excluded == ("shoes", "toys")
    assert [store.store_id for store in view.stores] == ["S1", "S2"]
    assert reads.member(scenario.fund) == MemberView(state.member(scenario.fund), (), ())  # type: ignore[arg-type]
    assert reads.member("91310000MA00000000") is None


def test_credit_as_of_matches_the_writers_computation(
    alliance: Alliance, busy: tuple[Busy, State, Reads]
) -> None:
    scenario, state, reads = busy
    now = alliance.clock()
    moments = [now, now - timedelta(days=2), now + timedelta(days=29), now + timedelta(days=31)]
    for member in (scenario.seller, scenario.buyer, "91310000MA00000000"):
        for moment in moments:
            assert reads.credit_as_of(member, moment) == credit_as_of(state, member, moment)
    listed = reads.credit_as_of(scenario.seller, now)
    assert (listed.points, listed.listing, listed.grade) == (10, "watch", "B")
    assert listed.returns_honoured == 1  # R-1 only: R-3 was never approved by Jiangsu
    assert reads.credit_as_of(scenario.seller, now + timedelta(days=31)).grade == "A"


def test_obligations_of_a_member_by_status(busy: tuple[Busy, State, Reads]) -> None:
    scenario, state, reads = busy
    for member in (scenario.seller, scenario.buyer, scenario.fund):
        mine = sorted(
            (o for o in state.obligations.rows() if member in (o.debtor, o.creditor)),
            key=lambda o: o.seq,
        )
        assert reads.obligations(member) == mine
        for status in STATUSES:
            assert reads.obligations(member, status) == [o for o in mine if o.status == status]
    statuses = {o.seq: o.status for o in reads.obligations(scenario.seller)}
    returns = scenario.returns
    assert statuses == {
        returns[0]: "effective",
        returns[1]: "void",
        returns[2]: "void",
        returns[3]: "held",
        scenario.advance: "effective",
    }
    assert reads.obligations("91310000MA00000000") == []


def _balances(state: State, member: str) -> dict[str, tuple[int, int]]:
    status: dict[int, str] = {o.seq: o.status for o in state.obligations.rows()}
    result = dict.fromkeys(STATUSES, (0, 0))
    for posting in state.postings.rows():
        owed, owing = result[status[posting.seq]]
        if posting.account == f"{member}:payable":
            result[status[posting.seq]] = (owed - posting.amount_fen, owing)
        elif posting.account == f"{member}:receivable":
            result[status[posting.seq]] = (owed, owing + posting.amount_fen)
    return result


def test_balances_per_status_match_the_postings(busy: tuple[Busy, State, Reads]) -> None:
    scenario, state, reads = busy
    for member in (scenario.seller, scenario.buyer, scenario.fund, "91310000MA00000000"):
        assert reads.balances(member) == _balances(state, member)
    assert reads.balances(scenario.seller) == {
        "pending": (0, 0),
        "effective": (15_000, 0),
        "held": (2_000, 0),
        "void": (7_000, 0),
    }
    assert reads.balances(scenario.fund)["effective"] == (0, 9_000)


def test_awaiting_matches_the_nodes_state(busy: tuple[Busy, State, Reads]) -> None:
    scenario, state, reads = busy
    for region in REGIONS:
        assert reads.awaiting(region) == awaiting_region(state, region)
    # R-3 (voided by its upheld dispute, but still pending endorsement) and R-4 await
    # Jiangsu; the rejected R-2 and the fully decided entries await nobody.
    assert reads.awaiting("32") == [scenario.returns[2], scenario.returns[3]]
    assert reads.awaiting("31") == [scenario.returns[3]]
    assert reads.awaiting("33") == reads.awaiting("34") == []


def test_reads_follow_new_versions(alliance: Alliance, busy: tuple[Busy, State, Reads]) -> None:
    """Rows changed by later entries are read at their newest version."""
    scenario, _, reads = busy
    held = scenario.returns[3]
    _endorse(alliance, "31", [held], "approve")
    _endorse(alliance, "32", scenario.returns[2:4], "approve")
    body = {"dispute": scenario.open_dispute, "outcome": "dismissed"}
    _submit(alliance, "dispute.resolved", "region:31", body)
    state = alliance.ledger.state()
    for region in REGIONS:
        assert reads.awaiting(region) == awaiting_region(state, region) == []
    effective = reads.obligations(scenario.buyer, "effective")
    assert [o.seq for o in effective] == [scenario.returns[0], held]
    assert all(isinstance(o, ObligationRow) for o in effective)
    assert reads.balances(scenario.buyer) == _balances(state, scenario.buyer)
    assert reads.balances(scenario.buyer)["effective"] == (0, 8_000)
