"""Receipts and the returns made of them: mostly within one member or region, a real
share across regions among franchisees of one brand."""

from __future__ import annotations

import itertools
import random
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ops.demo.population import Member, Population, Store
from ops.world import ReturnItem, entry_time, receipt_wire, return_body
from schemas.errors import ConfigError
from schemas.limits import DEMO_ENTRY_DELAY_MAX_S, DEMO_PAIR_TRIES_MAX

BRAND_RETURN_SHARE = 0.55  # returns refunded by a franchisee for a brand peer's sale
CROSS_REGION_IN_BRAND = 0.45  # of those, the peer is in another region: ~25 % overall
ZONE_RETURN_SHARE = 0.3  # of the rest, a zone merchant takes back a zone peer's sale
FULL_REFUND_SHARE = 0.7
PRICE_SKEW = 4  # price = low + (high - low) * U**4: the mean is a fifth of the range
PRICE_STEP_FEN, PRICE_ENDING_FEN = 1_000, 900  # shelf prices like ¥129.00, ¥2,399.00
MIN_PURCHASE_AGE = timedelta(hours=3)
# A till signs up to DEMO_ENTRY_DELAY_MAX_S before the log sees it, and refunded the
# consumer (`accepted`) up to an hour before signing.
ACCEPTED_BEFORE_MAX = timedelta(seconds=DEMO_ENTRY_DELAY_MAX_S) + timedelta(hours=1)
OPEN_MINUTE, CLOSE_MINUTE = 9 * 60, 21 * 60  # shops' opening hours, for purchase times


@dataclass(frozen=True, slots=True)
class Line:
    sku: str
    category: str
    qty: int
    unit_fen: int


@dataclass(frozen=True, slots=True)
class Receipt:
    """A sale at one of the seller's stores (receipt number only: no consumer data)."""

    seller: Member
    store: Store
    number: str
    purchased: datetime
    lines: tuple[Line, ...]

    @property
    def amount_fen(self) -> int:
        return sum(line.qty * line.unit_fen for line in self.lines)

    def wire(self) -> dict[str, Any]:
        purchased = entry_time(self.purchased)
        return receipt_wire(self.seller.id, self.store.id, self.number, purchased, self.amount_fen)


@dataclass(frozen=True, slots=True)
class Sale:
    """A `return.recorded` body with who sold and who refunded."""

    seller: Member
    acceptor: Member
    receipt: Receipt
    body: dict[str, Any]

    @property
    def full(self) -> bool:
        return int(self.body["refund_fen"]) == self.receipt.amount_fen


def sale_body(
    receipt: Receipt, store: Store, returned: Sequence[tuple[Line, int]], accepted: datetime
) -> dict[str, Any]:
    """The `return.recorded` body of ``returned`` (lines and quantities) of ``receipt``,
    taken back at ``store`` at ``accepted``; each item names its receipt line."""
    items = [
        ReturnItem(
            line.sku,
            line.category,
            qty,
            qty * line.unit_fen,
            line=receipt.lines.index(line) + 1,
            line_qty=line.qty,
        )
        for line, qty in returned
    ]
    return return_body(receipt.wire(), store.id, items, accepted)


class ReturnMaker:
    """Builds the returns of a day: mostly the same member or region, a real share
    across regions among franchisees of one brand."""

    def __init__(self, rng: random.Random, population: Population) -> None:
        self.rng = rng
        self.population = population
        self._serial = itertools.count(1)

    def pair(self, idle: Collection[str]) -> tuple[Member, Member]:
        """(seller, acceptor) among active merchants."""
        rng = self.rng
        franchisees = [m for m in self.population.franchisees if m.id not in idle]
        if franchisees and rng.random() < BRAND_RETURN_SHARE:
            acceptor = rng.choice(franchisees)
            peers = [m for m in franchisees if m.group == acceptor.group and m.id != acceptor.id]
            if peers:
                cross = rng.random() < CROSS_REGION_IN_BRAND
                fitting = [p for p in peers if (p.region != acceptor.region) == cross] or peers
                return rng.choice(fitting), acceptor
        zoned = [m for m in self.population.zoned if m.id not in idle]
        if zoned and rng.random() < ZONE_RETURN_SHARE:
            acceptor = rng.choice(zoned)
            peers = [m for m in zoned if m.zone_group == acceptor.zone_group and m != acceptor]
            if peers:
                return rng.choice(peers), acceptor
        merchant = rng.choice([m for m in self.population.merchants if m.id not in idle])
        return merchant, merchant

    def purchase_time(self, moment: datetime, return_days: int) -> datetime:
        """A time in opening hours inside the window, at least an hour before ``moment``."""
        midnight = moment.replace(hour=0, minute=0, second=0, microsecond=0)
        days_back = self.rng.randint(0, return_days - 1)
        opened = timedelta(
            minutes=self.rng.randint(OPEN_MINUTE, CLOSE_MINUTE), seconds=self.rng.randint(0, 59)
        )
        when = midnight - timedelta(days=days_back) + opened
        return when - timedelta(days=1) if when > moment - MIN_PURCHASE_AGE else when

    def receipt(
        self,
        seller: Member,
        moment: datetime,
        purchased: datetime | None = None,
        category: str | None = None,
    ) -> Receipt:
        assert seller.trade is not None
        low, high = seller.trade.price_fen
        categories = seller.categories or seller.trade.categories
        lines = tuple(
            Line(
                f"{seller.trade.sku}{self.rng.randint(100_000, 999_999)}",
                category if category and i == 0 else self.rng.choice(categories),
                self.rng.choice((1, 1, 1, 2)),
                self.price(low, high),
            )
            for i in range(self.rng.choice((1, 1, 2, 3)))
        )
        when = purchased or self.purchase_time(moment, seller.return_days)
        store = self.rng.choice(seller.stores)
        number = f"{store.id}-{when:%Y%m%d}-{next(self._serial):06d}"
        return Receipt(seller, store, number, when, lines)

    def price(self, low: int, high: int) -> int:
        """A shelf price in 分 ending in 9.00 元, cheap goods far more often than dear."""
        skewed = low + int((high - low) * self.rng.random() ** PRICE_SKEW)
        return skewed // PRICE_STEP_FEN * PRICE_STEP_FEN + PRICE_ENDING_FEN

    def refund(
        self, receipt: Receipt, acceptor: Member, now: datetime, *, full: bool | None = None
    ) -> Sale:
        lines = receipt.lines
        if full is None:
            full = self.rng.random() < FULL_REFUND_SHARE
        if full:
            returned = [(line, line.qty) for line in lines]
        else:
            chosen = self.rng.sample(lines, self.rng.randint(1, len(lines)))
            returned = [(line, self.rng.randint(1, line.qty)) for line in chosen]
        store = self.rng.choice(acceptor.stores)
        before = timedelta(seconds=DEMO_ENTRY_DELAY_MAX_S + self.rng.randint(60, 3600))
        accepted = max(now - before, receipt.purchased + timedelta(minutes=30))
        body = sale_body(receipt, store, returned, accepted)
        return Sale(receipt.seller, acceptor, receipt, body)

    def make(self, moment: datetime, idle: Collection[str]) -> Sale:
        seller, acceptor = self.pair(idle)
        return self.refund(self.receipt(seller, moment), acceptor, moment)

    def cross_pair(self, idle: Collection[str]) -> tuple[Member, Member]:
        """(seller, acceptor), two franchisees of one franchise group (a network)."""
        for _ in range(DEMO_PAIR_TRIES_MAX):
            seller, acceptor = self.pair(idle)
            if seller.id != acceptor.id:
                return seller, acceptor
        raise ConfigError("the population has no two franchisees of one brand")

    def cross_member(self, moment: datetime, idle: Collection[str]) -> Sale:
        """A return between two franchisees (for a fabricated receipt)."""
        seller, acceptor = self.cross_pair(idle)
        return self.refund(self.receipt(seller, moment), acceptor, moment, full=True)
