"""Issue 8 rule 7 on a real log, on both backends: the credit process for an overdue
settlement cites the night that lists the debtor overdue, and its penalty is restored
only citing the confirmation that discharged the overdue instruction. Every refusal:
class, message, field, state unchanged."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest

from ledger import projections, store
from ledger.calendar import local_date
from ledger.kinds.credit import reconciliation_proves_overdue, settlement_cures
from ledger.rows import PenaltyRow
from ops.world import entry_time
from reconciliation.nightly import close_due
from schemas.entry import parse_time
from schemas.errors import PolicyError, RejectedError
from signing.entry import submitted
from tests.conftest import Alliance
from tests.ledger.builders import snapshot
from tests.reconciliation.nights import (
    FIRST_PART_FEN,
    INSTRUCTION_FEN,
    Town,
    approve,
    approve_night,
    confirm,
    overdue_story,
    pay,
    sale,
    to_next_day,
)

RULE = "overdue_settlement"


@dataclass
class Overdue:
    town: Town
    night: int  # the first night: its instruction 0 is the seller's debt to the buyer
    early: int  # a later night closed before the due date: it lists nothing overdue
    listing: int  # the night after the due date: it lists instruction 0 overdue


def document(town: Town, kind: str, signer: str, body: dict[str, Any]) -> dict[str, Any]:
    alliance = town.alliance
    entry = alliance.factory.entry(kind, signer, body, alliance.clock())
    return submitted(entry, alliance.ring.keys[signer])


def logged(town: Town, kind: str, signer: str, body: dict[str, Any]) -> int:
    return town.alliance.sequencer.submit(document(town, kind, signer, body)).seq


def refused(town: Town, sub: dict[str, Any], *fragments: str) -> RejectedError:
    """Submit ``sub``: a PolicyError naming every fragment, and nothing changed."""
    ledger = town.alliance.ledger
    size, before = ledger.size(), snapshot(ledger.state())
    with pytest.raises(PolicyError) as caught:
        ledger.submit(sub)
    for fragment in fragments:
        assert fragment in caught.value.detail, caught.value.detail
    assert ledger.size() == size and snapshot(ledger.state()) == before
    return caught.value


def notice_body(town: Town, evidence: int, member: str | None = None) -> dict[str, Any]:
    deadline = local_date(town.alliance.clock()) + timedelta(days=3)
    return {
        "member": member or town.seller,
        "rule": RULE,
        "points": 10,
        "measure": "warning",
        "evidence": [evidence],
        "deadline": deadline.isoformat(),
    }


@pytest.fixture
def overdue(alliance: Alliance) -> Overdue:
    story = overdue_story(alliance)
    return Overdue(story.town, story.night, story.after_due[0], story.after_due[-1])


def test_the_night_listing_the_payer_overdue_is_the_evidence(overdue: Overdue) -> None:
    town = overdue.town
    state = town.alliance.ledger.state()
    assert state.overdue_listed[(overdue.listing, town.seller)] == {(overdue.night, 0)}
    notice = logged(town, "credit.notice", "region:31", notice_body(town, overdue.listing))
    row = town.alliance.ledger.state().credit_notices.get(notice)
    assert row is not None and row.rule == RULE and row.member == town.seller


def test_one_unpaid_instruction_is_one_notice_whichever_night_lists_it(
    overdue: Overdue,
) -> None:
    """Every later night lists the instruction again: citing another of them for the same
    unpaid instruction is the same fact, refused."""
    town = overdue.town
    first = logged(town, "credit.notice", "region:31", notice_body(town, overdue.listing))
    to_next_day(town.alliance)
    [later] = close_due(town.alliance.ledger)
    approve_night(town, later.seq)
    assert later.body["totals"]["overdue"] == 1
    sub = document(town, "credit.notice", "region:31", notice_body(town, later.seq))
    error = refused(town, sub, f"instruction 0 of night {overdue.night}", f"notice {first}")
    assert error.field == "body.evidence.0"


def test_a_night_that_does_not_list_the_member_is_refused(overdue: Overdue) -> None:
    town = overdue.town
    sub = document(town, "credit.notice", "region:31", notice_body(town, overdue.early))
    error = refused(town, sub, f"evidence seq {overdue.early}: ", "lists no overdue instruction")
    assert error.field == "body.evidence.0"
    # The payee of the overdue instruction is listed too, but not as its payer.
    body = notice_body(town, overdue.listing, member=town.buyer)
    sub = document(town, "credit.notice", "region:32", body)
    error = refused(town, sub, f"lists no overdue instruction of {town.buyer}")
    assert error.field == "body.evidence.0"


def test_a_payer_who_recorded_its_payment_is_not_penalised(overdue: Overdue) -> None:
    """Rule 6: once the payer recorded paying the rest, a payee that does not confirm is
    escalated to its region; the night's listing no longer proves the payer at fault."""
    town = overdue.town
    pay(town, overdue.night, INSTRUCTION_FEN - FIRST_PART_FEN)  # paid, not confirmed
    sub = document(town, "credit.notice", "region:31", notice_body(town, overdue.listing))
    error = refused(town, sub, "has recorded payment", "escalated to its region")
    assert error.field == "body.evidence.0"


def test_a_night_not_yet_approved_by_every_region_is_refused(overdue: Overdue) -> None:
    town = overdue.town
    to_next_day(town.alliance)
    [pending] = close_due(town.alliance.ledger)
    approve(town, pending.seq, "31", "32")
    sub = document(town, "credit.notice", "region:31", notice_body(town, pending.seq))
    error = refused(town, sub, "is pending, not approved by every region")
    assert error.field == "body.evidence.0"


def penalised(overdue: Overdue) -> int:
    """Notice, the member's objection, and the decision after the objection period."""
    town = overdue.town
    notice = logged(town, "credit.notice", "region:31", notice_body(town, overdue.listing))
    objection = logged(
        town, "credit.objection", town.seller, {"notice": notice, "reason": "already_cured"}
    )
    row = town.alliance.ledger.state().credit_notices.get(notice)
    assert row is not None
    town.alliance.clock.set(parse_time(row.objection_until) + timedelta(minutes=1))
    body = {
        "notice": notice,
        "objection": objection,
        "decision_no": "长三角联信〔2026〕31-1号",
        "member": town.seller,
        "rule": RULE,
        "points": 10,
        "measure": "warning",
        "until": entry_time(town.alliance.clock() + timedelta(days=300)),
    }
    return logged(town, "credit.penalty", "region:31", body)


def restore(town: Town, penalty: int, cure: int) -> dict[str, Any]:
    body = {"penalty": penalty, "reason": "cured_on_log", "cure": cure}
    return document(town, "credit.restored", "region:31", body)


def test_restoration_needs_the_confirmation_that_discharged_the_instruction(
    overdue: Overdue,
) -> None:
    town = overdue.town
    penalty = penalised(overdue)
    night = overdue.night
    pay(town, night, 2_000)
    part = confirm(town, night, 2_000)
    error = refused(
        town,
        restore(town, penalty, part),
        f"cure seq {part}: instruction 0 of night {night} is not discharged",
        "3000 of 6000 fen confirmed",
    )
    assert error.field == "body.cure"
    pay(town, night, 3_000)
    last = confirm(town, night, 3_000)
    error = refused(
        town,
        restore(town, penalty, part),
        f"confirmation {part} confirmed a part of instruction 0 of night {night}",
        f"seq {last} discharged it",
    )
    assert error.field == "body.cure"
    town.alliance.ledger.submit(restore(town, penalty, last))
    row = town.alliance.ledger.state().penalties.get(penalty)
    assert isinstance(row, PenaltyRow) and row.restored_seq is not None


def test_a_confirmation_of_another_debt_cures_nothing(overdue: Overdue) -> None:
    """A later debt of the same payer, discharged, is not the overdue one."""
    town = overdue.town
    penalty = penalised(overdue)
    sale(town, town.seller, town.buyer, "R-2", 700)  # the seller owes the buyer 700 more
    to_next_day(town.alliance)
    other = close_due(town.alliance.ledger)[-1].seq  # the night of the sale's day
    approve_night(town, other)
    pay(town, other, 700)
    cure = confirm(town, other, 700)
    error = refused(
        town,
        restore(town, penalty, cure),
        f"cure seq {cure} discharged instruction 0 of night {other}",
        "does not list overdue",
    )
    assert error.field == "body.cure"


def test_the_hooks_name_what_they_are_not(overdue: Overdue) -> None:
    town = overdue.town
    state = town.alliance.ledger.state()
    assert not reconciliation_proves_overdue(state, 0, town.seller).of_kind
    assert not settlement_cures(state, overdue.listing, town.seller).of_kind
    pay(town, overdue.night, 5_000)
    cure = confirm(town, overdue.night, 5_000)
    state = town.alliance.ledger.state()
    assert settlement_cures(state, cure, town.seller).refusal is None
    assert "which" in str(settlement_cures(state, cure, town.buyer).refusal)


def test_a_loaded_state_has_the_overdue_indexes(overdue: Overdue) -> None:
    """A writer starting from the sealed projections judges overdue evidence and cures as
    the writer that wrote them: the indexes come out as a replay builds them."""
    town = overdue.town
    pay(town, overdue.night, 5_000)
    confirm(town, overdue.night, 5_000)
    alliance = town.alliance
    state = alliance.ledger.state()
    with alliance.engine.connect() as connection:
        sealer = alliance.sequencer.sealer_in(connection)
        size = store.head_size(connection)
        loaded = projections.load_state(connection, sealer, size).state
    assert loaded.overdue_listed and loaded.last_confirmation
    assert loaded.overdue_listed == state.overdue_listed
    assert loaded.last_confirmation == state.last_confirmation
