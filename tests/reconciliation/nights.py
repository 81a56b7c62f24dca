"""A small alliance on a real log for the nightly tests: three members that bill each
other, returns approved by their regions, and the clock moved past midnight."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from ledger.calendar import LOCAL, local_date
from ops.world import entry_time, member_body
from reconciliation.nightly import close_due, verified_night
from signing.entry import submitted
from tests.conftest import Alliance
from tests.ledger.builders import one_item_return


@dataclass
class Town:
    alliance: Alliance
    seller: str  # region 31
    buyer: str  # region 32; honours the seller's receipts
    third: str  # region 33; honours both
    day: date  # the business day the returns were logged on


def submit(town: Town, kind: str, signer: str, body: dict[str, Any], *cosigners: str) -> int:
    alliance = town.alliance
    keys = [alliance.ring.keys[name] for name in (signer, *cosigners)]
    entry = alliance.factory.entry(kind, signer, body, alliance.clock())
    return alliance.sequencer.submit(submitted(entry, *keys)).seq


def enrol(alliance: Alliance, region: str, network: list[str]) -> str:
    member = alliance.new_uscc(region)
    key = alliance.ring.ensure(member).public.wire()
    body = member_body(member, region, key, stores=[("S1", f"{region}0101")], network=network)
    entry = alliance.factory.signed(
        alliance.ring, "member.enrolled", f"region:{region}", body, alliance.clock()
    )
    alliance.sequencer.submit(entry)
    return member


def approve(town: Town, seq: int, *regions: str) -> None:
    for region in regions:
        body = {"targets": [seq], "decision": "approve", "reason": ""}
        submit(town, "endorsement", f"region:{region}", body)


def sale(town: Town, seller: str, acceptor: str, number: str, refund_fen: int) -> int:
    """A return of ``seller``'s goods at ``acceptor``, approved by both regions."""
    purchased = entry_time(town.alliance.clock())
    body = one_item_return(seller, purchased, number=number, refund_fen=refund_fen)
    seq = submit(town, "return.recorded", acceptor, body)
    regions = sorted({seller[2:4], acceptor[2:4]})
    approve(town, seq, *regions)
    return seq


def to_next_day(alliance: Alliance, minutes: int = 30) -> None:
    """Move the clock to ``minutes`` past local midnight of the next day."""
    now = alliance.clock().astimezone(LOCAL)
    midnight = datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), LOCAL)
    alliance.clock.set(midnight + timedelta(minutes=minutes))


def make_town(alliance: Alliance) -> Town:
    """Three members in three regions, each honouring the ones enrolled before it."""
    seller = enrol(alliance, "31", [])
    buyer = enrol(alliance, "32", [seller])
    third = enrol(alliance, "33", [seller, buyer])
    return Town(alliance, seller, buyer, third, local_date(alliance.clock()))


def night_of(town: Town) -> Any:
    return verified_night(town.alliance.ledger, town.day)


def approve_night(town: Town, seq: int) -> None:
    approve(town, seq, "31", "32", "33", "34")


def closed(town: Town, refund_fen: int = 6_000) -> int:
    sale(town, town.seller, town.buyer, "R-1", refund_fen)
    to_next_day(town.alliance)
    [night] = close_due(town.alliance.ledger)
    return night.seq


def pay(town: Town, night: int, amount_fen: int, signer: str | None = None) -> int:
    body = {
        "reconciliation": night,
        "instruction": 0,
        "amount_fen": amount_fen,
        "receipt_hash": "ab" * 32,
    }
    return submit(town, "settlement.paid", signer or town.seller, body)


def confirm(town: Town, night: int, amount_fen: int, signer: str | None = None) -> int:
    body = {"reconciliation": night, "instruction": 0, "amount_fen": amount_fen}
    return submit(town, "settlement.confirmed", signer or town.buyer, body)


INSTRUCTION_FEN = 6_000  # the seller owes the buyer this, instruction 0 of the first night
FIRST_PART_FEN = 1_000  # paid and confirmed before the due date: the rest is overdue


@dataclass
class OverdueStory:
    town: Town
    night: int  # the first night: its instruction 0 is the seller's debt to the buyer
    after_due: list[int]  # the nights closed (and approved) up to the day after its due date


def overdue_story(alliance: Alliance) -> OverdueStory:
    """A seller in 31 owes a buyer in 32 on the first night, pays part before the due
    date, and every night up to the day after it is closed and approved by every region:
    the last of them lists the rest overdue, the first does not."""
    seller = enrol(alliance, "31", [])
    buyer = enrol(alliance, "32", [seller])
    third = enrol(alliance, "33", [seller, buyer])
    town = Town(alliance, seller, buyer, third, local_date(alliance.clock()))
    night = closed(town, INSTRUCTION_FEN)
    approve_night(town, night)
    pay(town, night, FIRST_PART_FEN)
    confirm(town, night, FIRST_PART_FEN)
    instruction = alliance.ledger.state().instructions.get(night, 0)
    assert instruction is not None
    while local_date(alliance.clock()) <= date.fromisoformat(instruction.due) + timedelta(days=1):
        to_next_day(alliance)
    nights = close_due(alliance.ledger)
    for later in nights:
        approve_night(town, later.seq)
    assert nights[0].body["totals"]["overdue"] == 0
    assert nights[-1].body["totals"]["overdue"] == 1
    return OverdueStory(town, night, [later.seq for later in nights])


def one_closed_night(alliance: Alliance) -> tuple[Town, Any]:
    """A town with one cross-store return (the buyer owes the seller ¥30) and the night
    that settles it closed, a minute before now."""
    town = make_town(alliance)
    sale(town, town.seller, town.buyer, "N-1", 3_000)
    to_next_day(alliance)
    [night] = close_due(alliance.ledger)
    alliance.clock.advance(minutes=1)
    return town, night
