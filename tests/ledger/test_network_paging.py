"""The writer's paged network links (issue 11: it pages the networks), judged as a full
replay judges them: after a batch that caught up entries nobody sealed yet appended
nothing of its own (its indexes over paged rows must still hold the rows it kept), with
a link read alone and a member's links read whole in one batch, and with link rows
planted under bad seals (an INSERT grant). From an attacker's review of that change."""

from __future__ import annotations

from typing import Any

import pytest

from ledger.kinds.members import honours
from ledger.rows import NetworkRow
from ledger.sequencer import Appended
from ops.world import member_body as world_member_body
from schemas.errors import InvariantError, PolicyError
from signing.entry import submitted
from tests.conftest import Alliance
from tests.dbtools import snapshot
from tests.ledger.builders import entry_time, one_item_return
from tests.ledger.test_paging import _returns
from tests.ledger.test_trust import _fresh, _insert_leaf, _leaf_of, _merchants, _plant


def _network_change(
    alliance: Alliance, member: str, region: str, network: list[str]
) -> dict[str, Any]:
    body = {"member": member, "network": network}
    entry = alliance.factory.entry(
        "member.network_changed", f"region:{region}", body, alliance.clock()
    )
    return submitted(entry, alliance.ring.keys[f"region:{region}"], alliance.ring.keys[member])


def _seller_third_buyer(alliance: Alliance) -> tuple[str, str, str, int]:
    """Seller (31) and third (33) with no network, and buyer (32) honouring the seller,
    enrolled in one batch: their ids, and the seq of the buyer's enrolment."""
    seller_doc = alliance.enroll_doc("31", network=[])
    third_doc = alliance.enroll_doc("33", network=[])
    seller = seller_doc["entry"]["body"]["member"]["id"]
    third = third_doc["entry"]["body"]["member"]["id"]
    buyer_doc = alliance.enroll_doc("32", network=[seller])
    buyer = buyer_doc["entry"]["body"]["member"]["id"]
    enrolled = alliance.sequencer.submit_many([seller_doc, third_doc, buyer_doc])[2]
    assert isinstance(enrolled, Appended)
    return seller, third, buyer, enrolled.seq


def _planted_then_an_empty_batch(alliance: Alliance) -> tuple[str, str, str]:
    """Seller (31), third (33), buyer (32, network [seller]); then an attacker with an
    INSERT grant plants an admissible, genuinely signed leaf (as test_trust's
    test_an_admissible_leaf_inserted_without_tiles_does_not_wedge_the_log) that makes
    the buyer's network {seller, third}; then a batch that admits nothing catches it up."""
    seller, third, buyer, _ = _seller_third_buyer(alliance)
    head = snapshot(alliance.engine).head
    planted = _network_change(alliance, buyer, "32", [seller, third])
    _insert_leaf(alliance, _leaf_of(alliance, head, planted), with_tile=False)
    # Any batch that appends nothing (here: a change that changes nothing, refused).
    with pytest.raises(PolicyError, match="unchanged"):
        alliance.sequencer.submit(_network_change(alliance, seller, "31", []))
    assert snapshot(alliance.engine).head == head + 1  # caught up; nothing appended
    return seller, third, buyer


def test_the_writer_admits_a_network_change_a_replay_admits(alliance: Alliance) -> None:
    """The buyer drops the third merchant: a change (replay: {seller, third} -> {seller})."""
    seller, _third, buyer = _planted_then_an_empty_batch(alliance)
    alliance.sequencer.submit(_network_change(alliance, buyer, "32", [seller]))


def test_the_writer_refuses_a_return_a_replay_refuses(alliance: Alliance) -> None:
    """The buyer leaves every network: a replay closes (buyer, third) too, so a later
    return of the third merchant's goods by the buyer is outside its network."""
    _seller, third, buyer = _planted_then_an_empty_batch(alliance)
    alliance.sequencer.submit(_network_change(alliance, buyer, "32", []))
    replayed = alliance.ledger.replayed_state()
    link = replayed.networks.get(buyer, third)
    assert link is not None and link.until_seq is not None  # the replay closed it
    [ret] = _returns(alliance, third, buyer, 1)
    with pytest.raises(PolicyError, match="outside accepting merchant"):
        alliance.sequencer.submit(ret)
    alliance.ledger.replayed_state()  # the log, as a replay (the audit) judges it


def test_a_caught_up_return_voided_later_gives_its_units_back(alliance: Alliance) -> None:
    """The same gap, pre-existing, for lines_of_return (return_line_numbers): a return
    caught up by a batch that appends nothing, then rejected, must give its units back
    (a replay does), so the same goods can be returned again."""
    seller_doc = alliance.enroll_doc("31", network=[])
    seller = seller_doc["entry"]["body"]["member"]["id"]
    buyer_doc = alliance.enroll_doc("32", network=[seller])
    buyer = buyer_doc["entry"]["body"]["member"]["id"]
    alliance.sequencer.submit_many([seller_doc, buyer_doc])
    [ret] = _returns(alliance, seller, buyer, 1)
    head = snapshot(alliance.engine).head
    _insert_leaf(alliance, _leaf_of(alliance, head, ret), with_tile=False)
    with pytest.raises(PolicyError, match="unchanged"):
        alliance.sequencer.submit(_network_change(alliance, seller, "31", []))
    reject = {"targets": [head], "decision": "reject", "reason": "receipt_not_genuine"}
    alliance.sequencer.submit(
        alliance.factory.signed(alliance.ring, "endorsement", "region:32", reject, alliance.clock())
    )
    again = alliance.factory.signed(
        alliance.ring, "return.recorded", buyer, ret["entry"]["body"], alliance.clock()
    )
    alliance.sequencer.submit(again)  # the voided return gave its units back
    alliance.ledger.replayed_state()


def test_a_single_link_read_then_the_members_links_in_one_batch(alliance: Alliance) -> None:
    """Returns (one link read each) before and after a network change (the member's
    links read whole) in one batch: judged as a replay judges them."""
    s_doc = alliance.enroll_doc("31", network=[])
    t_doc = alliance.enroll_doc("33", network=[])
    s = s_doc["entry"]["body"]["member"]["id"]
    t = t_doc["entry"]["body"]["member"]["id"]
    b_doc = alliance.enroll_doc("32", network=[s, t])
    b = b_doc["entry"]["body"]["member"]["id"]
    alliance.sequencer.submit_many([s_doc, t_doc, b_doc])
    fresh = _fresh(alliance)
    fresh.state()
    [r1] = _returns(alliance, s, b, 1)
    [r2] = _returns(alliance, t, b, 1)
    change = _network_change(alliance, b, "32", [s])
    [r3] = _returns(alliance, t, b, 1)
    [r4] = _returns(alliance, s, b, 1)
    results = fresh.submit_many([r1, r2, change, r3, r4])
    assert [type(r).__name__ for r in results][:3] == ["Appended"] * 3
    assert isinstance(results[3], PolicyError)
    assert type(results[4]).__name__ == "Appended"
    fresh2 = _fresh(alliance)
    assert fresh2.state().networks == alliance.ledger.replayed_state().networks


def test_planted_link_versions_neither_open_nor_close_a_link(alliance: Alliance) -> None:
    """Link rows planted with bad seals, at older, current and far-future versions, open
    no link and close none, for the running writer and a restarted one."""
    s, t, b, _ = _seller_third_buyer(alliance)
    head = snapshot(alliance.engine).head
    for version in (head - 1, head, 10**9):
        opened = {"member": b, "peer": t, "since_seq": 1, "until_seq": None}
        closed = {"member": b, "peer": s, "since_seq": 1, "until_seq": 2}
        _plant(alliance, "networks", opened, version)
        _plant(alliance, "networks", closed, version)
    for ledger in (alliance.ledger, _fresh(alliance)):
        [bad] = _returns(alliance, t, b, 1)
        with pytest.raises(PolicyError, match="outside accepting merchant"):
            ledger.submit(bad)
        [good] = _returns(alliance, s, b, 1)
        ledger.submit(good)
    with pytest.raises(PolicyError, match="unchanged"):
        _fresh(alliance).submit(_network_change(alliance, b, "32", [s]))


def test_a_members_links_are_read_whole_only_in_the_writers_batch(alliance: Alliance) -> None:
    """Outside the writer's batch a paged read keeps nothing, so the index of a member's
    current peers could be short: asking for it there is an invariant failure, not a
    quietly partial answer."""
    seller, buyer = _merchants(alliance)
    state = _fresh(alliance).state()
    with pytest.raises(InvariantError, match="links read in a batch"):
        state.network_peers(buyer)
    assert honours(state, buyer, seller)  # a single link reads through, in or out of one


def _accepted_at(alliance: Alliance, seller: str, buyer: str, store: str) -> dict[str, Any]:
    """A return of ``seller``'s goods that ``buyer`` refunded at its ``store``."""
    body = one_item_return(
        seller, entry_time(alliance.clock()), number=f"R-{buyer}-{seller}", accepted_store=store
    )
    return alliance.factory.signed(alliance.ring, "return.recorded", buyer, body, alliance.clock())


def test_a_reenrolment_through_the_writer_ends_the_links_it_had(alliance: Alliance) -> None:
    """The writer pages the links, so a re-enrolling member's links come from the sealed
    tables (a first enrolment skips that read: it can have none). Those its new network
    leaves out end at the re-enrolment, as a replay ends them."""
    seller, third, buyer, enrolled_seq = _seller_third_buyer(alliance)
    withdrawal = {"member": buyer, "reason": "member_request"}
    alliance.sequencer.submit(
        alliance.factory.signed(
            alliance.ring, "member.withdrawn", "region:32", withdrawal, alliance.clock()
        )
    )
    key = alliance.ring.rotate(buyer, 2).public.wire()  # its old keys ended with it
    body = world_member_body(buyer, "32", key, stores=[("S9", "320101")], network=[third])
    seq = alliance.sequencer.submit(
        alliance.factory.signed(
            alliance.ring, "member.enrolled", "region:32", body, alliance.clock()
        )
    ).seq
    replayed = alliance.ledger.replayed_state()
    assert replayed.networks.get(buyer, seller) == NetworkRow(buyer, seller, enrolled_seq, seq)
    assert replayed.network_peers(buyer) == {third}
    with pytest.raises(PolicyError, match="outside accepting merchant"):
        alliance.sequencer.submit(_accepted_at(alliance, seller, buyer, "S9"))
    alliance.sequencer.submit(_accepted_at(alliance, third, buyer, "S9"))
    alliance.ledger.replayed_state()  # the log, as a replay (the audit) judges it
