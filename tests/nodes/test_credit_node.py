"""Issue 8 rule 7 from the region node's side, on both backends: the payer's region node
notices an overdue instruction by itself (its own key only, citing the night), once per
unpaid instruction across runs and restarts, and decides after the objection period
unless the member objected."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta

import pytest

from nodes.client import LocalClient
from nodes.credit import RULE, CreditOutcome
from nodes.endorse import EndorseNode
from ops.service import trust_from_ledger
from reconciliation.nightly import close_due
from schemas.entry import parse_time
from tests.conftest import Alliance
from tests.reconciliation.nights import (
    FIRST_PART_FEN,
    INSTRUCTION_FEN,
    Town,
    approve_night,
    overdue_story,
    pay,
    submit,
    to_next_day,
)


@dataclass
class Overdue:
    town: Town
    night: int  # its instruction 0: the seller owes the buyer
    listing: int  # the approved night that first lists it overdue


@pytest.fixture
def overdue(alliance: Alliance) -> Overdue:
    story = overdue_story(alliance)
    return Overdue(story.town, story.night, story.after_due[-1])


def node(alliance: Alliance, region: str) -> EndorseNode:
    key = alliance.ring.keys[f"region:{region}"]
    return EndorseNode(region, key, trust_from_ledger(alliance.ledger), queue_path=None)


def run(alliance: Alliance, region_node: EndorseNode) -> CreditOutcome:
    return region_node.run(LocalClient(alliance.ledger), alliance.clock()).credit


def logged_entry(alliance: Alliance, seq: int) -> dict[str, object]:
    record = json.loads(alliance.ledger.leaves(seq, seq + 1)[0])
    assert isinstance(record, dict)
    return record


def test_the_payers_region_notices_once_citing_the_night(overdue: Overdue) -> None:
    alliance, town = overdue.town.alliance, overdue.town
    size = alliance.ledger.size()
    assert run(alliance, node(alliance, "32")) == CreditOutcome()  # the payee's region
    assert alliance.ledger.size() == size
    desk = node(alliance, "31")
    assert run(alliance, desk).noticed == [overdue.listing]
    [notice] = alliance.ledger.state().credit_notices.rows()
    assert (notice.member, notice.rule, notice.region) == (town.seller, RULE, "31")
    assert [row.evidence for row in alliance.ledger.state().notice_evidence.rows()] == [
        overdue.listing
    ]
    record = logged_entry(alliance, notice.seq)
    assert record["entry"]["signer"] == "region:31"  # type: ignore[index]
    assert len(record["signatures"]) == 1  # type: ignore[arg-type]
    # Again, and from a node started afresh: the log says it is noticed.
    size = alliance.ledger.size()
    assert run(alliance, desk) == CreditOutcome()
    assert run(alliance, node(alliance, "31")) == CreditOutcome()
    assert alliance.ledger.size() == size


def test_a_later_night_listing_it_again_is_no_second_notice(overdue: Overdue) -> None:
    alliance, town = overdue.town.alliance, overdue.town
    run(alliance, node(alliance, "31"))
    to_next_day(alliance)
    [later] = close_due(alliance.ledger)
    approve_night(town, later.seq)
    assert later.body["totals"]["overdue"] == 1
    size = alliance.ledger.size()
    assert run(alliance, node(alliance, "31")) == CreditOutcome()
    assert alliance.ledger.size() == size


def test_no_notice_once_the_payer_recorded_paying(overdue: Overdue) -> None:
    alliance, town = overdue.town.alliance, overdue.town
    pay(town, overdue.night, INSTRUCTION_FEN - FIRST_PART_FEN)  # the payee has not confirmed
    assert run(alliance, node(alliance, "31")) == CreditOutcome()
    assert not alliance.ledger.state().credit_notices.rows()


def test_decided_after_the_objection_period(overdue: Overdue) -> None:
    alliance, town = overdue.town.alliance, overdue.town
    desk = node(alliance, "31")
    run(alliance, desk)
    [notice] = alliance.ledger.state().credit_notices.rows()
    assert run(alliance, desk) == CreditOutcome()  # the period is not over: no decision
    alliance.clock.set(parse_time(notice.objection_until) + timedelta(minutes=1))
    assert run(alliance, desk).decided == [notice.seq]
    state = alliance.ledger.state()
    [penalty] = state.penalties.rows()
    assert (penalty.member, penalty.rule, penalty.notice) == (town.seller, RULE, notice.seq)
    assert (penalty.points, penalty.measure) == (10, "warning")
    assert logged_entry(alliance, penalty.seq)["entry"]["signer"] == "region:31"  # type: ignore[index]
    credit = state.credit.get(town.seller)
    assert credit is not None and credit.measure == "warning"
    size = alliance.ledger.size()
    assert run(alliance, node(alliance, "31")) == CreditOutcome()
    assert alliance.ledger.size() == size


def test_an_objection_is_left_to_a_person(overdue: Overdue) -> None:
    alliance, town = overdue.town.alliance, overdue.town
    desk = node(alliance, "31")
    run(alliance, desk)
    [notice] = alliance.ledger.state().credit_notices.rows()
    submit(town, "credit.objection", town.seller, {"notice": notice.seq, "reason": "already_cured"})
    alliance.clock.set(parse_time(notice.objection_until) + timedelta(minutes=1))
    assert run(alliance, desk) == CreditOutcome(objected=[notice.seq])
    assert not alliance.ledger.state().penalties.rows()


def test_a_node_without_its_desk_logs_no_credit_entry(overdue: Overdue) -> None:
    alliance = overdue.town.alliance
    quiet = node(alliance, "31")
    quiet.credit = None
    size = alliance.ledger.size()
    assert run(alliance, quiet) == CreditOutcome()
    assert alliance.ledger.size() == size
