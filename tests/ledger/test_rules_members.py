"""Membership over time (issue 7 §5, §1.7, §1.8): stores open and close, commitments
change from a date and never retroactively, networks say who bills whom, and a purchase
is judged under the seller's status, store and commitment of its own local date."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest

from ledger.calendar import local_date
from ledger.kinds.members import active_on, commitment_for, honours
from ledger.rows import CommitmentRow, NetworkRow, StoreRow
from ops.world import member_body
from schemas.errors import MalformedError, PolicyError, SignatureError
from tests.ledger.builders import LedgerWorld, refused, return_body


@dataclass
class Alliance:
    world: LedgerWorld
    seller: str  # region 31, stores S1 and S2, 15-day window, excludes toys
    buyer: str  # region 32, store S1; its network holds the seller
    stranger: str  # region 33, store S1; its network is empty


@pytest.fixture
def al() -> Alliance:
    world = LedgerWorld()
    seller = world.enroll(
        "31", stores=[("S1", "310101"), ("S2", "310104")], return_days=15, excluded=["toys"]
    )
    buyer = world.enroll("32", stores=[("S1", "320101")], network=[seller])
    stranger = world.enroll("33", stores=[("S1", "330102")], network=[])
    return Alliance(world, seller, buyer, stranger)


def by_member(al: Alliance, kind: str, body: dict[str, Any], member: str | None = None) -> Any:
    """``kind`` signed by the member's region and co-signed by the member."""
    member = member or al.seller
    row = al.world.state.member(member)
    assert row is not None
    return al.world.sign_by(kind, [f"region:{row.region}", member], body)


def change(al: Alliance, kind: str, body: dict[str, Any], member: str | None = None) -> int:
    return al.world.submit(by_member(al, kind, body, member))


def sell_and_return(
    al: Alliance, days_ago: float, acceptor: str | None = None, **fields: Any
) -> Any:
    body = return_body(al.world, al.seller, purchased_days_ago=days_ago, **fields)
    return al.world.sign("return.recorded", acceptor or al.buyer, body)


def store(name: str, division: str) -> dict[str, str]:
    return {"id": name, "division": division, "name": f"store {name}"}


# --- member.stores_changed -----------------------------------------------------------------


def test_an_opened_store_sells_from_the_day_it_opens(al: Alliance) -> None:
    change(al, "member.stores_changed", {"member": al.seller, "opened": [store("S3", "310105")]})
    row = al.world.state.stores.get(al.seller, "S3")
    assert isinstance(row, StoreRow)
    assert (row.opened, row.closed) == (al.world.state.last_logged, None)
    al.world.submit(sell_and_return(al, 0, store="S3"))  # bought today: accepted


def test_a_store_did_not_sell_before_it_opened(al: Alliance) -> None:
    change(al, "member.stores_changed", {"member": al.seller, "opened": [store("S3", "310105")]})
    sub = sell_and_return(al, 2, store="S3")
    error = refused(al.world, sub, PolicyError, "store S3", "was not open on the purchase date")
    assert error.field == "body.receipt.store"


def test_a_closed_store_sold_until_the_day_it_closed(al: Alliance) -> None:
    change(al, "member.stores_changed", {"member": al.seller, "closed": ["S2"]})
    closed = al.world.state.stores.get(al.seller, "S2")
    assert closed is not None and closed.closed == al.world.state.last_logged
    # Goods bought there before it closed stay returnable, and so does the closing day's.
    al.world.submit(sell_and_return(al, 3, store="S2", number="R-before"))
    al.world.submit(sell_and_return(al, 0, store="S2", number="R-today"))
    al.world.clock.advance(days=2)
    sub = sell_and_return(al, 1, store="S2", number="R-after")
    refused(al.world, sub, PolicyError, "store S2", "was not open on the purchase date")


def test_a_closed_store_does_not_accept_returns(al: Alliance) -> None:
    change(
        al,
        "member.stores_changed",
        {"member": al.buyer, "opened": [store("S2", "320102")]},
        al.buyer,
    )
    change(al, "member.stores_changed", {"member": al.buyer, "closed": ["S1"]}, al.buyer)
    refused(al.world, sell_and_return(al, 1, accepted_store="S1"), PolicyError, "store S1")
    al.world.submit(sell_and_return(al, 1, accepted_store="S2"))


@pytest.mark.parametrize(
    ("body", "fragment", "field"),
    [
        ({}, "opens and closes no store", "body"),
        ({"closed": ["S1", "S2"]}, "keeps at least one open store", "body.closed"),
        ({"closed": ["S9"]}, "S9 is not an open store", "body.closed.0"),
        ({"closed": ["S1", "S1"]}, "closed twice", "body.closed"),
        (
            {"opened": [store("S1", "310105")]},
            "already taken (ids are never reused)",
            "body.opened",
        ),
        ({"opened": [store("S8", "320101")]}, "outside region 31", "body.opened"),
        (
            {"opened": [store("S8", "310105"), store("S8", "310106")]},
            "appears twice",
            "body.opened",
        ),
    ],
)
def test_store_changes_are_refused(
    al: Alliance, body: dict[str, Any], fragment: str, field: str
) -> None:
    sub = by_member(al, "member.stores_changed", {"member": al.seller, **body})
    assert refused(al.world, sub, PolicyError, fragment).field == field


def test_a_closed_store_id_is_never_reused(al: Alliance) -> None:
    change(al, "member.stores_changed", {"member": al.seller, "closed": ["S2"]})
    sub = by_member(
        al, "member.stores_changed", {"member": al.seller, "opened": [store("S2", "310104")]}
    )
    refused(al.world, sub, PolicyError, "store id S2 is already taken")
    sub = by_member(al, "member.stores_changed", {"member": al.seller, "closed": ["S2"]})
    refused(al.world, sub, PolicyError, "S2 is not an open store")


def test_a_store_change_needs_the_member_and_its_region(al: Alliance) -> None:
    body = {"member": al.seller, "opened": [store("S3", "310105")]}
    alone = al.world.sign("member.stores_changed", "region:31", body)
    refused(al.world, alone, SignatureError, f"must also be signed by {al.seller}")
    other = al.world.sign_by("member.stores_changed", ["region:32", al.seller], body)
    refused(al.world, other, SignatureError, "region:32", "is not a required signer")


def test_a_withdrawn_member_changes_nothing(al: Alliance) -> None:
    """Withdrawal revokes the member's keys, so it can no longer co-sign a change."""
    al.world.submit(
        al.world.sign(
            "member.withdrawn", "region:31", {"member": al.seller, "reason": "member_request"}
        )
    )
    sub = by_member(
        al, "member.stores_changed", {"member": al.seller, "opened": [store("S3", "310105")]}
    )
    refused(al.world, sub, SignatureError, "was replaced")


# --- member.commitment_changed -------------------------------------------------------------


def today(al: Alliance, days: int = 0) -> str:
    return (local_date(al.world.now) + timedelta(days=days)).isoformat()


def commit(al: Alliance, return_days: int, excluded: list[str], effective: str) -> dict[str, Any]:
    body = {
        "member": al.seller,
        "commitment": {"return_days": return_days, "excluded": excluded},
        "effective": effective,
    }
    return by_member(al, "member.commitment_changed", body)


def test_a_narrower_commitment_binds_only_later_purchases(al: Alliance) -> None:
    seq = al.world.submit(commit(al, 7, ["toys"], today(al, 1)))
    state = al.world.state
    assert state.commitments_of[al.seller][-1] == CommitmentRow(al.seller, seq, today(al, 1), 7)
    # A purchase of 10 days ago was made under the 15-day commitment: still returnable.
    al.world.submit(sell_and_return(al, 10, number="R-old"))
    al.world.clock.advance(days=12)
    # Bought on the new commitment's first day, 11 days ago: beyond its 7 days.
    late = sell_and_return(al, 11, number="R-new")
    refused(al.world, late, PolicyError, "7-day return window")


def test_a_newly_excluded_category_binds_only_later_purchases(al: Alliance) -> None:
    al.world.submit(commit(al, 15, ["toys", "shoes"], today(al, 1)))
    al.world.submit(sell_and_return(al, 1, categories=("shoes",), number="R-old"))
    al.world.clock.advance(days=2)
    later = sell_and_return(al, 0, categories=("shoes",), number="R-new")
    refused(al.world, later, PolicyError, "category shoes is excluded by seller")


def test_a_wider_commitment_may_take_effect_today(al: Alliance) -> None:
    al.world.submit(commit(al, 30, [], today(al)))
    row = commitment_for(al.world.state, al.seller, local_date(al.world.now))
    assert row is not None and row.return_days == 30
    al.world.submit(sell_and_return(al, 0, categories=("toys",)))  # no longer excluded


@pytest.mark.parametrize(
    ("days", "excluded", "offset", "fragment"),
    [
        (7, ["toys"], 0, "a narrower commitment takes effect from tomorrow"),
        (15, ["toys", "shoes"], 0, "a narrower commitment takes effect from tomorrow"),
        (30, [], -1, "before the day it is logged"),
        (30, [], 366, "within 365 days"),
        (3, [], 1, "below the policy floor"),
    ],
)
def test_commitment_changes_are_refused(
    al: Alliance, days: int, excluded: list[str], offset: int, fragment: str
) -> None:
    error = refused(al.world, commit(al, days, excluded, today(al, offset)), PolicyError, fragment)
    assert error.field is not None and error.field.startswith("body.")


def test_a_commitment_may_take_effect_a_year_ahead(al: Alliance) -> None:
    al.world.submit(commit(al, 7, [], today(al, 365)))


# --- networks -----------------------------------------------------------------------------


def test_a_seller_outside_the_network_is_refused(al: Alliance) -> None:
    sub = sell_and_return(al, 1, acceptor=al.stranger)
    error = refused(al.world, sub, PolicyError, "outside accepting merchant", "network")
    assert error.field == "body.receipt.merchant"


def test_the_network_grows_and_shrinks(al: Alliance) -> None:
    seq = change(
        al, "member.network_changed", {"member": al.stranger, "network": [al.seller]}, al.stranger
    )
    state = al.world.state
    assert honours(state, al.stranger, al.seller)
    assert NetworkRow(al.stranger, al.seller, seq, None) in state.networks.rows()
    al.world.submit(sell_and_return(al, 1, acceptor=al.stranger, number="R-in"))
    change(al, "member.network_changed", {"member": al.stranger, "network": []}, al.stranger)
    assert not honours(al.world.state, al.stranger, al.seller)
    refused(
        al.world,
        sell_and_return(al, 1, acceptor=al.stranger, number="R-out"),
        PolicyError,
        "network",
    )


def test_the_network_is_one_way(al: Alliance) -> None:
    """The buyer honours the seller's receipts; the seller does not honour the buyer's."""
    assert honours(al.world.state, al.buyer, al.seller)
    assert not honours(al.world.state, al.seller, al.buyer)


def test_a_return_within_one_member_needs_no_network(al: Alliance) -> None:
    al.world.submit(sell_and_return(al, 1, acceptor=al.seller, accepted_store="S2"))


@pytest.mark.parametrize(
    ("network", "error", "fragment"),
    [
        (lambda al: [al.seller], PolicyError, "the network is unchanged"),
        (lambda al: [al.seller, al.seller], PolicyError, "listed twice"),
        (lambda al: [al.buyer], PolicyError, "does not list itself"),
        (lambda al: ["91310000MA1FL1234X"], MalformedError, ""),
    ],
)
def test_network_changes_are_refused(
    al: Alliance, network: Any, error: type[Exception], fragment: str
) -> None:
    sub = by_member(
        al, "member.network_changed", {"member": al.buyer, "network": network(al)}, al.buyer
    )
    refused(al.world, sub, error, fragment)  # type: ignore[arg-type]


def test_an_enrolment_may_list_peers_not_enrolled_yet(al: Alliance) -> None:
    future = al.world.new_uscc("34")
    member = al.world.enroll("34", stores=[("S1", "340102")], network=[future])
    assert honours(al.world.state, member, future)


# --- the seller's status on the purchase date -------------------------------------------------


REASONS = {"suspended": "inspection", "reinstated": "inspection_passed"}


def status(al: Alliance, kind: str) -> None:
    body = {"member": al.seller, "reason": REASONS[kind]}
    al.world.submit(al.world.sign(f"member.{kind}", "region:31", body))


@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        ("member.suspended", "inspection_passed"),  # a reinstatement's code
        ("member.reinstated", "inspection"),
        ("member.withdrawn", "credit_measure"),
    ],
)
def test_a_status_reason_comes_from_its_own_list(al: Alliance, kind: str, reason: str) -> None:
    if kind == "member.reinstated":
        status(al, "suspended")
    sub = al.world.sign(kind, "region:31", {"member": al.seller, "reason": reason})
    error = refused(al.world, sub, PolicyError, f"reason {reason} is not one of")
    assert error.field == "body.reason"


def test_a_status_reason_is_never_free_text(al: Alliance) -> None:
    body = {"member": al.seller, "reason": "门店停业整改"}
    refused(al.world, al.world.sign("member.suspended", "region:31", body), MalformedError)


def test_a_status_change_may_point_to_a_note_kept_off_the_log(al: Alliance) -> None:
    body = {"member": al.seller, "reason": "inspection", "note_hash": "ab" * 32}
    al.world.submit(al.world.sign("member.suspended", "region:31", body))


def test_goods_bought_before_a_suspension_stay_returnable(al: Alliance) -> None:
    status(al, "suspended")
    al.world.submit(sell_and_return(al, 2, number="R-before"))
    al.world.submit(sell_and_return(al, 0, number="R-same-day"))  # any moment of that day


def test_goods_bought_while_suspended_are_refused(al: Alliance) -> None:
    status(al, "suspended")
    al.world.clock.advance(days=2)
    sub = sell_and_return(al, 1)
    error = refused(al.world, sub, PolicyError, "was not an active member on the purchase date")
    assert error.field == "body.receipt.purchased"
    assert not active_on(al.world.state, al.seller, local_date(al.world.now - timedelta(days=1)))


def test_goods_bought_after_reinstatement_are_returnable(al: Alliance) -> None:
    status(al, "suspended")
    al.world.clock.advance(days=2)
    status(al, "reinstated")
    al.world.submit(sell_and_return(al, 0))


def test_goods_bought_before_enrolment_are_refused(al: Alliance) -> None:
    member = al.world.new_uscc("31")
    network = {"member": al.buyer, "network": [al.seller, member]}
    change(al, "member.network_changed", network, al.buyer)  # logged now: setup is over
    al.world.enroll("31", stores=[("S1", "310101")], member_id=member)
    body = return_body(al.world, member, purchased_days_ago=1)
    sub = al.world.sign("return.recorded", al.buyer, body)
    refused(al.world, sub, PolicyError, "was not an active member on the purchase date")
    al.world.submit(
        al.world.sign(
            "return.recorded", al.buyer, return_body(al.world, member, purchased_days_ago=0)
        )
    )


# --- re-enrolment --------------------------------------------------------------------------


def withdraw(al: Alliance) -> int:
    body = {"member": al.seller, "reason": "member_request"}
    return al.world.submit(al.world.sign("member.withdrawn", "region:31", body))


def reenrol(al: Alliance, **fields: Any) -> dict[str, Any]:
    """A new enrolment of the seller (new keys: its old ones were revoked)."""
    al.world.ring.rotate(al.seller, 2)
    key = al.world.ring.keys[al.seller].public.wire()
    fields.setdefault("stores", [("S3", "310105")])
    body = member_body(al.seller, fields.pop("region", "31"), key, **fields)
    return al.world.sign("member.enrolled", "region:31", body)


def test_withdrawal_closes_the_stores(al: Alliance) -> None:
    withdraw(al)
    state = al.world.state
    closed = [state.stores.get(al.seller, store_id) for store_id in ("S1", "S2")]
    assert [row.closed if row else None for row in closed] == [state.last_logged] * 2


def test_a_withdrawn_member_enrols_again_and_keeps_its_history(al: Alliance) -> None:
    sold = al.world.submit(sell_and_return(al, 1, number="R-before"))
    first = al.world.state.member(al.seller)
    assert first is not None
    withdraw(al)
    credit_before = al.world.state.credit.get(al.seller)
    al.world.clock.advance(days=3)
    seq = al.world.submit(reenrol(al))
    state = al.world.state
    row = state.member(al.seller)
    assert row is not None
    assert (row.status, row.enrolled_seq, row.changed_seq) == ("active", first.enrolled_seq, seq)
    assert state.obligations.get(sold) is not None  # its history stays
    assert state.credit.get(al.seller) == credit_before  # and so does its credit record
    assert [status.status for status in state.statuses_of[al.seller]] == [
        "active",
        "withdrawn",
        "active",
    ]
    al.world.submit(sell_and_return(al, 0, store="S3", number="R-again"))
    # Nothing bought while it was out of the alliance is returnable under its commitment.
    refused(
        al.world,
        sell_and_return(al, 2, store="S3", number="R-gap"),
        PolicyError,
        "was not an active member on the purchase date",
    )


def test_a_reenrolment_replaces_the_network_it_had(al: Alliance) -> None:
    """A re-enrolling member had links: its enrolment reads them (a first enrolment
    skips the read, as it has none) and ends those its new network leaves out."""
    linked = change(
        al, "member.network_changed", {"member": al.seller, "network": [al.buyer]}, al.seller
    )
    withdraw(al)
    seq = al.world.submit(reenrol(al, network=[al.stranger]))
    state = al.world.state
    assert state.networks.get(al.seller, al.buyer) == NetworkRow(al.seller, al.buyer, linked, seq)
    assert state.networks.get(al.seller, al.stranger) == NetworkRow(
        al.seller, al.stranger, seq, None
    )
    assert state.network_peers(al.seller) == {al.stranger}


@pytest.mark.parametrize(
    ("fields", "error", "fragment", "field"),
    [
        ({"stores": [("S1", "310101")]}, PolicyError, "already taken", "body.member.stores"),
        ({"kind": "fund", "stores": []}, PolicyError, "re-enrols as one", "body.member.kind"),
    ],
)
def test_reenrolment_refusals(
    al: Alliance, fields: dict[str, Any], error: type[Exception], fragment: str, field: str
) -> None:
    withdraw(al)
    caught = refused(al.world, reenrol(al, **fields), error, fragment)  # type: ignore[arg-type]
    assert caught.field == field


def test_an_enrolled_member_does_not_enrol_again(al: Alliance) -> None:
    refused(al.world, reenrol(al), PolicyError, "is already enrolled")
    al.world.submit(
        al.world.sign(
            "member.suspended", "region:31", {"member": al.seller, "reason": "inspection"}
        )
    )
    refused(al.world, reenrol(al), PolicyError, "is already enrolled")


def test_a_reenrolment_keeps_no_old_key(al: Alliance) -> None:
    withdraw(al)
    old = al.world.ring.keys[al.seller].public.wire()
    body = member_body(al.seller, "31", old, stores=[("S3", "310105")])
    sub = al.world.sign("member.enrolled", "region:31", body)
    refused(al.world, sub, PolicyError, "is already registered")
