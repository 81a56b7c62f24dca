"""`alliance demo`: a simulated 满意消费长三角 alliance, end to end, then an audit.

The demo is the project's main job (DESIGN §7): it puts every party to work on one real
log (merchants and franchisees recording cross-store returns, the demonstration zone's
advance fund and platforms paying consumers first, each region's endorsement node,
disputes, credit penalties and 信用修复, member suspension and key rotation, witnesses)
and then proves from the export alone, as an outside auditor would, that it all holds.

Deterministic under ``seed``: one ``random.Random(seed)`` drives every choice, keys come
from ``Keyring(seed=seed)``, entry ids from ``EntryFactory(seed)``, and time is a
simulated clock that is both the sequencer's log clock and every entry's time. The same
seed therefore gives the same entries, byte for byte, and the same root in any database.

Some submissions are bad on purpose. What the log itself must refuse (a return outside
the seller's window, an over-refund, a suspended member, a replaced key, …) is submitted
and counted as *refused*; it consumes no seq. What only a regulator can know (a
fabricated receipt, an advance without a complaint on file) passes the log's rules and is
*rejected* by the region's judge in its endorsement, which voids the obligation.
"""

from __future__ import annotations

import functools
import itertools
import json
import random
import time
from collections import Counter
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from sqlalchemy import Engine

from ledger import store
from ledger.audit import AuditReport, audit_directory
from ledger.db import make_engine
from ledger.endorse import Awaiting, Decision, Judge, endorse
from ledger.export import ENTRIES_FILE, export
from ledger.rows import EndorsementRow, MemberRow, ObligationRow
from ledger.schema import migrate
from ledger.sequencer import Sequencer
from ledger.state import OPERATOR, region_principal
from ops.config import AllianceConfig, load_config
from ops.report import print_audit
from ops.service import run_witness
from ops.world import (
    SHANGHAI,
    EntryFactory,
    Keyring,
    entry_time,
    genesis_submission,
)
from schemas.errors import AllianceError, ConfigError, ConflictError, InvariantError, invariant
from schemas.identifiers import make_uscc
from signing.entry import submitted
from signing.keys import PrivateKey, b64encode

# --- the simulated calendar ----------------------------------------------------------------

# Day 0 of the simulation, local midnight (a Monday); every step is minutes after it.
DAY_ZERO = datetime(2026, 11, 16, 0, 0, tzinfo=SHANGHAI)
GENESIS_AT = 8 * 60
ENROLMENT_AT = 8 * 60 + 30
MORNING_AT = 9 * 60  # regulators' morning desk work: disputes, suspensions, keys
TICKS_AT = (570, 645, 720, 840, 915, 990, 1080, 1170)  # 09:30 … 19:30: stores submit
MIDDAY_ROUND_AT = 13 * 60  # endorsement nodes run twice a day
DISPUTES_AT = 16 * 60
EVENING_ROUND_AT = 20 * 60 + 30
CREDIT_AT = 20 * 60 + 45  # penalties after the evening round has rejected the plants
LATE_AT = 20 * 60 + 55  # same-day follow-ups when the run has no next day
COSIGN_AT = 21 * 60 + 30  # witnesses cosign at the close of each day
FINAL_ROUND_AT = 21 * 60 + 40
FINAL_COSIGN_AT = 21 * 60 + 50
ENTRY_DELAY_MAX_S = 240  # a POS signs up to this long before the log sees it (skew 600 s)
MIN_PURCHASE_AGE = timedelta(hours=1)
OPEN_MINUTE, CLOSE_MINUTE = 9 * 60, 21 * 60  # shops' opening hours, for purchase times

# --- volumes (per simulated day unless said otherwise) ---------------------------------------

RETURNS_PER_MERCHANT = 4  # 200 merchants: 800 returns a day
FRANCHISE_SHARE = 0.4  # of merchants, franchisees of a brand
MERCHANTS_PER_BRAND = 25
MIN_BRANDS = 2
BRAND_RETURN_SHARE = 0.55  # returns refunded by a franchisee for a brand peer's sale
CROSS_REGION_IN_BRAND = 0.45  # of those, the peer is in another region: ~25 % overall
FULL_REFUND_SHARE = 0.7
RETURNS_PER_PLANT = 200  # one fabricated receipt per this many returns
MERCHANTS_PER_ADVANCE = 40
MERCHANTS_PER_DISPUTE = 60
UPHELD_EVERY = 3  # dispute 0, 3, 6 … is upheld, the others dismissed
FUND_ADVANCE_SHARE = 0.6  # of advances, paid by the zone fund (else by a platform)
ZONE_OUTLET_SHARE = 0.15  # merchants of a zone region with an outlet in the zone
RETURN_DAYS = (7, 15, 30)
RETURN_DAYS_WEIGHTS = (70, 20, 10)
EXCLUDE_SHARE = 0.15  # merchants that exclude one of their own categories
PRICE_SKEW = 4  # price = low + (high - low) * U**4: the mean is a fifth of the range
PRICE_STEP_FEN, PRICE_ENDING_FEN = 1_000, 900  # shelf prices like ¥129.00, ¥2,399.00
OVER_REFUND_FEN = 5_000
EVIDENCE_MAX = 5
MIN_MERCHANTS = 8  # brands across two regions plus independents
DRAIN_ROUNDS_MAX = 10
PAIR_TRIES = 100  # draws to find two franchisees of one brand (almost always the first)
FEN_PER_YUAN = 100
PIPED_WIDTH = 110  # the region table's width, when output is not a terminal
ORG_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"  # GB 32100 characters

# --- catalogue ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Place:
    division: str  # GB/T 2260
    city: str
    district: str


@dataclass(frozen=True, slots=True)
class Trade:
    name: str
    sku: str
    categories: tuple[str, ...]
    price_fen: tuple[int, int]  # unit price range


PLACES: dict[str, tuple[Place, ...]] = {
    "31": tuple(
        Place(code, "上海", name)
        for code, name in (
            ("310101", "黄浦"), ("310104", "徐汇"), ("310105", "长宁"), ("310106", "静安"),
            ("310107", "普陀"), ("310110", "杨浦"), ("310112", "闵行"), ("310115", "浦东"),
            ("310118", "青浦"),
        )
    ),
    "32": (
        Place("320102", "南京", "玄武"), Place("320105", "南京", "建邺"),
        Place("320211", "无锡", "滨湖"), Place("320402", "常州", "天宁"),
        Place("320505", "苏州", "虎丘"), Place("320506", "苏州", "吴中"),
        Place("320508", "苏州", "姑苏"), Place("320509", "苏州", "吴江"),
    ),
    "33": (
        Place("330102", "杭州", "上城"), Place("330106", "杭州", "西湖"),
        Place("330108", "杭州", "滨江"), Place("330203", "宁波", "海曙"),
        Place("330302", "温州", "鹿城"), Place("330402", "嘉兴", "南湖"),
        Place("330421", "嘉兴", "嘉善"),
    ),
    "34": (
        Place("340102", "合肥", "瑶海"), Place("340103", "合肥", "庐阳"),
        Place("340104", "合肥", "蜀山"), Place("340202", "芜湖", "镜湖"),
        Place("340302", "蚌埠", "龙子湖"), Place("341002", "黄山", "屯溪"),
    ),
}  # fmt: skip
REGION_SHORT = {"31": "上海", "32": "江苏", "33": "浙江", "34": "安徽"}
REGION_WEIGHTS = {"31": 30, "32": 30, "33": 25, "34": 15}  # independents per region

TRADES: dict[str, Trade] = {
    trade.name: trade
    for trade in (
        Trade("服饰", "AP", ("apparel", "accessories"), (5_900, 89_900)),
        Trade("鞋业", "FW", ("footwear",), (12_900, 159_900)),
        Trade("电器", "HA", ("household_appliances",), (29_900, 899_900)),
        Trade("数码", "EL", ("electronics", "digital_accessories"), (3_900, 699_900)),
        Trade("母婴", "BB", ("baby_products", "toys"), (2_900, 59_900)),
        Trade("美妆", "CO", ("cosmetics",), (5_900, 129_900)),
        Trade("家居", "HM", ("home_furnishing", "kitchenware"), (1_900, 399_900)),
        Trade("体育用品", "SP", ("sports_goods", "apparel"), (4_900, 199_900)),
        Trade("百货", "DS", ("daily_necessities", "luggage", "kitchenware"), (990, 129_900)),
        Trade("文具", "BK", ("books", "stationery"), (990, 19_900)),
    )
}
# Brands whose franchisees (加盟店: each its own legal entity and USCC) take back each
# other's sales: the real source of debts between members.
BRANDS = (
    ("禾木服饰", "服饰"), ("星河数码", "数码"), ("青柠母婴", "母婴"), ("步云鞋业", "鞋业"),
    ("家悦电器", "电器"), ("素言美妆", "美妆"), ("栖居家居", "家居"), ("悦动体育", "体育用品"),
)  # fmt: skip
WORDS = (
    "恒润", "瑞丰", "嘉禾", "德胜", "万顺", "永新", "同裕", "和美", "佳乐", "益民", "锦绣",
    "丰泰", "昌盛", "聚源", "新隆", "金桥", "汇通", "宏图", "福源", "安泰", "兴业", "天成",
    "博雅", "正和",
)  # fmt: skip
FUND_NAME = "长三角生态绿色一体化发展示范区消费者权益先行垫付资金"
PLATFORMS = (("31", "长三角优选生活服务平台有限公司"), ("33", "浙里好物网络科技有限公司"))

FABRICATED = "虚构退货：卖方门店收银系统无此笔销售（监管核查）"
NO_COMPLAINT = "先行垫付依据不足：12315平台无对应投诉记录"
FUND_BASIS = "消法第四十四条：示范区共筹先行垫付资金先行赔付，向经营者追偿"
PLATFORM_BASIS = "消法第四十四条：平台先行赔付，向平台内经营者追偿"
RETURN_DISPUTES = (
    "退货商品非本店售出：小票编号与本店销售记录不符",
    "退回商品已使用且影响二次销售，不符合无理由退货条件",
    "该商品已由本店直接办理退款，属重复追偿",
)
ADVANCE_DISPUTE = "消费者已与本店和解并退款，先行垫付无需追偿"
SUSPEND_REASON = "门店停业整改，暂停履行线下无理由退货承诺"
REINSTATE_REASON = "整改完成，经现场核查恢复承诺"
RESTORE_REASON = "逾期结算款项已全部结清，依申请予以信用修复"
OBLIGATION_STATUSES = ("pending", "effective", "held", "void")

# Labels of the submissions the log must refuse.
OUTSIDE_WINDOW = "return outside the seller's window"
OVER_REFUND = "refund above the receipt amount"
REFUND_AGAIN = "receipt refunded beyond its amount"
EXCLUDED = "category on a negative list"
SUSPENDED = "return by a suspended member"
OLD_KEY = "signed with a replaced key"
CASE_TWICE = "advance case claimed twice"


def yuan(fen: int) -> str:
    """Integer 分 as 元 text; never through a float."""
    sign = "-" if fen < 0 else ""
    whole, cents = divmod(abs(fen), FEN_PER_YUAN)
    return f"{sign}¥{whole:,}.{cents:02d}"


def share(total: int, index: int, parts: int) -> int:
    """The ``index``-th of ``parts`` near-equal shares of ``total`` (earlier get the rest)."""
    base, rest = divmod(total, parts)
    return base + (1 if index < rest else 0)


# --- members -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Store:
    id: str
    division: str
    name: str

    def wire(self) -> dict[str, str]:
        return {"id": self.id, "division": self.division, "name": self.name}


@dataclass(frozen=True, slots=True)
class Member:
    """A simulated member: what it enrols, and what it sells."""

    id: str
    name: str
    kind: str
    region: str
    stores: tuple[Store, ...]
    return_days: int = 7
    trade: Trade | None = None
    brand: str | None = None
    excluded: tuple[str, ...] = ()

    @property
    def categories(self) -> tuple[str, ...]:
        offered = self.trade.categories if self.trade else ()
        return tuple(c for c in offered if c not in self.excluded)

    def enrolment(self, key: PrivateKey) -> dict[str, Any]:
        return {
            "member": {
                "id": self.id,
                "name": self.name,
                "kind": self.kind,
                "region": self.region,
                "stores": [s.wire() for s in self.stores],
                "commitment": {"return_days": self.return_days, "excluded": list(self.excluded)},
                "keys": [key.public.wire()],
            }
        }


@dataclass
class Population:
    merchants: list[Member]
    fund: Member
    platforms: list[Member]

    @property
    def members(self) -> list[Member]:
        return [*self.merchants, self.fund, *self.platforms]

    @functools.cached_property
    def franchisees(self) -> list[Member]:
        return [m for m in self.merchants if m.brand is not None]

    @functools.cached_property
    def independents(self) -> list[Member]:
        return [m for m in self.merchants if m.brand is None]


class PopulationBuilder:
    """Members with valid, unique USCCs, realistic names and stores in their province
    (plus, for zone regions, an occasional outlet in the demonstration zone)."""

    def __init__(self, rng: random.Random, zone: Sequence[str]) -> None:
        self.rng = rng
        self.zone = tuple(zone)
        self._ids: set[str] = set()
        self._names: set[str] = set()
        self._places = {p.division: p for places in PLACES.values() for p in places}

    def build(self, merchants: int) -> Population:
        brands = BRANDS[: max(MIN_BRANDS, min(len(BRANDS), merchants // MERCHANTS_PER_BRAND))]
        franchised = round(merchants * FRANCHISE_SHARE)
        regions = list(PLACES)
        members = [
            self.franchisee(*brands[i % len(brands)], regions[(i // len(brands)) % len(regions)])
            for i in range(franchised)
        ]
        weights = [REGION_WEIGHTS[code] for code in regions]
        members += [
            self.independent(self.rng.choices(regions, weights)[0])
            for _ in range(merchants - franchised)
        ]
        return Population(members, self.fund(), [self.platform(r, n) for r, n in PLATFORMS])

    def uscc(self, department: str, division: str) -> str:
        """GB 32100: department and category, registration division, organisation code."""
        while True:
            org = "MA" + "".join(self.rng.choice(ORG_ALPHABET) for _ in range(7))
            code = make_uscc(f"{department}{division}{org}")
            if code not in self._ids:
                self._ids.add(code)
                return code

    def unique_name(self, candidates: Sequence[str]) -> str:
        for name in candidates:
            if name not in self._names:
                self._names.add(name)
                return name
        name = f"{candidates[0]}（{len(self._names) + 1}）"
        self._names.add(name)
        return name

    def stores(self, region: str, count: int, label: str) -> tuple[Store, ...]:
        places = self.rng.sample(PLACES[region], min(count, len(PLACES[region])))
        outlets = [d for d in self.zone if d[:2] != region and d in self._places]
        if region in {d[:2] for d in self.zone} and self.rng.random() < ZONE_OUTLET_SHARE:
            places.append(self._places[self.rng.choice(outlets)])
        return tuple(
            Store(f"{p.division}-{i + 1:02d}", p.division, f"{label}{p.district}店")
            for i, p in enumerate(places)
        )

    def _commitment(self, trade: Trade) -> tuple[int, tuple[str, ...]]:
        days = self.rng.choices(RETURN_DAYS, RETURN_DAYS_WEIGHTS)[0]
        excluded: tuple[str, ...] = ()
        if len(trade.categories) > 1 and self.rng.random() < EXCLUDE_SHARE:
            excluded = (self.rng.choice(trade.categories[1:]),)
        return days, excluded

    def franchisee(self, brand: str, trade_name: str, region: str) -> Member:
        trade = TRADES[trade_name]
        stores = self.stores(region, self.rng.choice((1, 1, 2)), brand)
        stores = tuple(
            Store(s.id, s.division, s.name.removesuffix("店") + "加盟店") for s in stores
        )
        city = self._places[stores[0].division].city
        words = self.rng.sample(WORDS, len(WORDS))
        name = self.unique_name([f"{city}{w}商贸有限公司" for w in words])
        days, excluded = self._commitment(trade)
        member_id = self.uscc("91", stores[0].division)
        return Member(member_id, name, "merchant", region, stores, days, trade, brand, excluded)

    def independent(self, region: str) -> Member:
        trade = self.rng.choice(list(TRADES.values()))
        word = self.rng.choice(WORDS)
        stores = self.stores(region, self.rng.choice((1, 1, 1, 2, 2, 3)), f"{word}{trade.name}")
        place = self._places[stores[0].division]
        words = [word, *self.rng.sample(WORDS, len(WORDS))]
        name = self.unique_name(
            [f"{place.city}{w}{trade.name}有限公司" for w in words]
            + [f"{place.city}{place.district}{w}{trade.name}有限公司" for w in words]
        )
        days, excluded = self._commitment(trade)
        member_id = self.uscc("91", stores[0].division)
        return Member(member_id, name, "merchant", region, stores, days, trade, None, excluded)

    def fund(self) -> Member:
        """The zone's pooled advance fund: region 31, a service desk in each zone division."""
        stores = tuple(
            Store(f"{d}-FUND", d, f"{self._places[d].district}先行垫付服务点")
            for d in self.zone
            if d in self._places
        )
        return Member(self.uscc("12", self.zone[0]), FUND_NAME, "fund", "31", stores)

    def platform(self, region: str, name: str) -> Member:
        return Member(self.uscc("91", PLACES[region][0].division), name, "platform", region, ())


# --- receipts and returns ----------------------------------------------------------------


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
        return {
            "merchant": self.seller.id,
            "store": self.store.id,
            "number": self.number,
            "purchased": entry_time(self.purchased),
            "amount_fen": self.amount_fen,
        }


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


def return_body(
    receipt: Receipt, store: Store, returned: Sequence[tuple[Line, int]]
) -> dict[str, Any]:
    items = [
        {"sku": line.sku, "category": line.category, "qty": qty, "refund_fen": qty * line.unit_fen}
        for line, qty in returned
    ]
    return {
        "receipt": receipt.wire(),
        "accepted_store": store.id,
        "refund_fen": sum(qty * line.unit_fen for line, qty in returned),
        "items": items,
    }


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
            peers = [m for m in franchisees if m.brand == acceptor.brand and m.id != acceptor.id]
            if peers:
                cross = rng.random() < CROSS_REGION_IN_BRAND
                fitting = [p for p in peers if (p.region != acceptor.region) == cross] or peers
                return rng.choice(fitting), acceptor
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

    def refund(self, receipt: Receipt, acceptor: Member, *, full: bool | None = None) -> Sale:
        lines = receipt.lines
        if full is None:
            full = self.rng.random() < FULL_REFUND_SHARE
        if full:
            returned = [(line, line.qty) for line in lines]
        else:
            chosen = self.rng.sample(lines, self.rng.randint(1, len(lines)))
            returned = [(line, self.rng.randint(1, line.qty)) for line in chosen]
        store = self.rng.choice(acceptor.stores)
        return Sale(receipt.seller, acceptor, receipt, return_body(receipt, store, returned))

    def make(self, moment: datetime, idle: Collection[str]) -> Sale:
        seller, acceptor = self.pair(idle)
        return self.refund(self.receipt(seller, moment), acceptor)

    def cross_member(self, moment: datetime, idle: Collection[str]) -> Sale:
        """A return between two franchisees (for a fabricated receipt)."""
        for _ in range(PAIR_TRIES):
            seller, acceptor = self.pair(idle)
            if seller.id != acceptor.id:
                return self.refund(self.receipt(seller, moment), acceptor, full=True)
        raise ConfigError("the population has no two franchisees of one brand")


# --- the ledger as the simulation drives it ------------------------------------------------


class SimClock:
    """Simulated time: the sequencer's log clock and the time of every entry."""

    def __init__(self) -> None:
        self.now = DAY_ZERO

    def __call__(self) -> datetime:
        return self.now

    def set(self, day: int, minute: int) -> None:
        moment = DAY_ZERO + timedelta(days=day, minutes=minute)
        invariant(moment >= self.now, f"the simulated clock went back to {moment}")
        self.now = moment


@dataclass(frozen=True, slots=True)
class Planned:
    """A submission, whether the log must refuse it (its label), and what to note once it
    is logged (called with its seq)."""

    document: dict[str, Any]
    refusal: str | None = None
    logged: Callable[[int], None] | None = None


@dataclass(frozen=True, slots=True)
class Plant:
    """A submission the log accepts but a regulator knows is false."""

    region: str  # the region whose records show it
    reason: str
    culprit: str  # the member that submitted it


class LedgerClient:
    """One database, its sequencer, every principal's keys and the simulated clock."""

    def __init__(self, engine: Engine, config: AllianceConfig, seed: int) -> None:
        self.engine = engine
        self.config = config
        self.ring = Keyring(seed=seed)
        self.factory = EntryFactory(seed)
        self.clock = SimClock()
        self.sequencer = Sequencer(engine, self.ring.ensure(OPERATOR), clock=self.clock)
        self.refused: Counter[str] = Counter()
        self.decided: Counter[tuple[str, str]] = Counter()  # (region, decision) -> targets

    @classmethod
    def create(cls, db_url: str, config: AllianceConfig, seed: int) -> LedgerClient:
        """A fresh ledger: schema, genesis with the configured regions, cosignatures."""
        engine = make_engine(db_url)
        migrate(engine)
        with engine.connect() as connection:
            if store.head_size(connection) > 0:
                raise ConflictError(
                    f"{db_url} already holds a ledger; the demo needs a fresh database "
                    "(delete the file first)"
                )
        client = cls(engine, config, seed)
        client.clock.set(0, GENESIS_AT)
        genesis = genesis_submission(config, client.ring, client.factory, client.clock.now)
        client.sequencer.submit(genesis)
        client.cosign()
        return client

    @property
    def regions(self) -> list[str]:
        return [region.code for region in self.config.regions]

    def signed(
        self, kind: str, signer: str, body: dict[str, Any], *, delay_s: int = 0
    ) -> dict[str, Any]:
        moment = self.clock.now - timedelta(seconds=delay_s)
        return self.factory.signed(self.ring, kind, signer, body, moment)

    def submit(self, planned: Sequence[Planned]) -> list[int | None]:
        """Submit a batch; check each outcome is the one the simulation expects."""
        results = self.sequencer.submit_many([item.document for item in planned])
        seqs: list[int | None] = []
        for item, result in zip(planned, results, strict=True):
            kind = item.document["entry"]["kind"]
            if isinstance(result, AllianceError):
                invariant(
                    item.refusal is not None, f"demo: the log refused a valid {kind}: {result}"
                )
                self.refused[str(item.refusal)] += 1
                seqs.append(None)
                continue
            invariant(
                item.refusal is None,
                f"demo: the log accepted a bad {kind} ({item.refusal}) at seq {result.seq}",
            )
            if item.logged is not None:
                item.logged(result.seq)
            seqs.append(result.seq)
        return seqs

    def submit_one(self, kind: str, signer: str, body: dict[str, Any]) -> int:
        return self.sequencer.submit(self.signed(kind, signer, body)).seq

    def endorse_round(self, judge: Callable[[str], Judge]) -> int:
        """Every region's node runs once; returns the number of targets decided."""
        decided = 0
        for code in self.regions:
            key = self.ring.keys[region_principal(code)]
            approved, rejected = endorse(
                self.engine,
                code,
                key,
                self.factory.entry,
                self.sequencer.submit,
                self.clock.now,
                judge(code),
            )
            self.decided[(code, "approve")] += approved
            self.decided[(code, "reject")] += rejected
            decided += approved + rejected
        return decided

    def cosign(self) -> None:
        for code in self.regions:
            run_witness(self.engine, code, self.ring.witnesses[code], self.clock.now)

    def size(self) -> int:
        with self.engine.connect() as connection:
            return store.head_size(connection)


# --- the simulation ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Claim:
    """An obligation the simulation created, as a debtor may dispute it."""

    seq: int
    kind: str
    debtor: Member


@dataclass(frozen=True, slots=True)
class Schedule:
    """Which day the one-off events fall on, for any length of run."""

    days: int

    @property
    def keys_day(self) -> int:
        return 0

    @property
    def suspend_day(self) -> int:
        return min(1, self.days - 1)

    @property
    def reinstate_day(self) -> int | None:
        return self.suspend_day + 1 if self.suspend_day + 1 < self.days else None

    @property
    def penalty_day(self) -> int:
        return max(0, min(2, self.days - 2))

    @property
    def restore_day(self) -> int | None:
        return self.penalty_day + 1 if self.penalty_day + 1 < self.days else None


@dataclass(frozen=True, slots=True)
class OpenDispute:
    seq: int
    debtor: Member
    filed_day: int
    ordinal: int  # the n-th dispute of the run: decides its outcome


@dataclass
class Books:
    """What the simulation remembers of what it logged."""

    planted: dict[str, Plant] = field(default_factory=dict)  # entry id -> plant
    planted_returns: list[tuple[int, Plant]] = field(default_factory=list)
    claims: list[Claim] = field(default_factory=list)
    disputed: set[int] = field(default_factory=set)
    open_disputes: list[OpenDispute] = field(default_factory=list)
    full_refunds: list[Sale] = field(default_factory=list)  # today's, for a refund-again try
    cases: list[dict[str, Any]] = field(default_factory=list)
    watch_penalty: tuple[int, Member] | None = None
    returns_today: int = 0


@dataclass
class World:
    """What every actor of the simulation shares: the ledger, the one random source,
    the members, the books, and the cast of the one-off events."""

    ledger: LedgerClient
    rng: random.Random
    population: Population
    schedule: Schedule
    maker: ReturnMaker = field(init=False)
    books: Books = field(default_factory=Books)
    suspended: set[str] = field(default_factory=set)
    keys_member: Member = field(init=False)  # rotates its key on the first day
    suspend_member: Member = field(init=False)  # suspended, then reinstated
    retired_key: PrivateKey | None = None

    def __post_init__(self) -> None:
        self.maker = ReturnMaker(self.rng, self.population)
        self.keys_member = self._independent("32", avoid=())
        self.suspend_member = self._independent("33", avoid=(self.keys_member.id,))

    def _independent(self, region: str, avoid: Collection[str]) -> Member:
        candidates = [m for m in self.population.independents if m.id not in avoid]
        local = [m for m in candidates if m.region == region]
        return (local or candidates)[0]

    @property
    def now(self) -> datetime:
        return self.ledger.clock.now

    def merchant(self, member_id: str) -> Member:
        return next(m for m in self.population.merchants if m.id == member_id)


class Regulators:
    """The four regions' desks: endorsement judges, disputes, membership, credit."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.ledger = world.ledger
        self.books = world.books

    def judge(self, region: str) -> Judge:
        """The region's own knowledge (POS checks, complaint records): it rejects what the
        simulation planted against its records and approves the rest."""

        def decide(item: Awaiting) -> Decision:
            plant = self.books.planted.get(str(item.record["entry"]["id"]))
            if plant is not None and plant.region == region:
                return Decision(False, plant.reason)
            return Decision(True, "")

        return decide

    def endorse(self, _day: int) -> None:
        self.ledger.endorse_round(self.judge)

    def drain(self) -> None:
        """Run the nodes until every return and advance is decided by every region."""
        for _ in range(DRAIN_ROUNDS_MAX):
            if self.ledger.endorse_round(self.judge) == 0:
                return
        raise InvariantError(f"demo: endorsement nodes still busy after {DRAIN_ROUNDS_MAX} rounds")

    def morning(self, day: int) -> None:
        schedule, world = self.world.schedule, self.world
        self.resolve_disputes(day)
        if day == schedule.keys_day:
            self.rotate_keys()
        if day == schedule.suspend_day:
            self.set_status(world.suspend_member, "member.suspended", SUSPEND_REASON)
        if day == schedule.reinstate_day:
            self.set_status(world.suspend_member, "member.reinstated", REINSTATE_REASON)
        if day == schedule.restore_day:
            self.restore()

    def late(self, day: int) -> None:
        """Follow-ups that would fall on a next day the run does not have."""
        schedule = self.world.schedule
        if schedule.reinstate_day is None and day == schedule.suspend_day:
            self.set_status(self.world.suspend_member, "member.reinstated", REINSTATE_REASON)
        if schedule.restore_day is None and day == schedule.penalty_day:
            self.restore()

    def set_status(self, member: Member, kind: str, reason: str) -> None:
        body = {"member": member.id, "reason": reason}
        self.ledger.submit_one(kind, region_principal(member.region), body)
        if kind == "member.suspended":
            self.world.suspended.add(member.id)
        else:
            self.world.suspended.discard(member.id)

    def rotate_keys(self) -> None:
        """The member's POS is replaced: its region registers the new key, and the
        keyring holds the new key from now on (so --keys saves the current one)."""
        member = self.world.keys_member
        self.world.retired_key = self.ledger.ring.keys[member.id]
        new = self.ledger.ring.rotate(member.id, 1)
        body = {"member": member.id, "keys": [new.public.wire()]}
        self.ledger.submit_one("member.keys_changed", region_principal(member.region), body)

    def resolve_disputes(self, day: int) -> None:
        """The debtor's region decides earlier days' disputes: some upheld, most dismissed."""
        remaining = []
        for dispute in self.books.open_disputes:
            if dispute.filed_day >= day:
                remaining.append(dispute)
                continue
            outcome = "upheld" if dispute.ordinal % UPHELD_EVERY == 0 else "dismissed"
            body = {"dispute": dispute.seq, "outcome": outcome}
            signer = region_principal(dispute.debtor.region)
            self.ledger.submit_one("dispute.resolved", signer, body)
        self.books.open_disputes = remaining

    def credit(self, day: int) -> None:
        """On the penalty day: a false-claim listing, and a watch listing of the member
        with the most effective debts (to be restored: rule restore_after_days 0)."""
        if day != self.world.schedule.penalty_day:
            return
        self.penalise_false_claim()
        debts: Counter[str] = Counter()
        evidence: dict[str, list[int]] = {}
        for row in self.ledger.sequencer.state().rows("obligations"):
            if isinstance(row, ObligationRow) and row.status == "effective":
                debts[row.debtor] += 1
                evidence.setdefault(row.debtor, []).append(row.seq)
        if debts:
            debtor = min(debts, key=lambda member: (-debts[member], member))
            member = self.world.merchant(debtor)
            seq = self.penalty(member, "overdue_settlement", evidence[debtor][:EVIDENCE_MAX])
            self.books.watch_penalty = (seq, member)

    def penalise_false_claim(self) -> None:
        """The first fabricated return its region rejected: the member that recorded it
        is listed under false_claim, with the return and the rejection as evidence."""
        state = self.ledger.sequencer.state()
        for seq, plant in self.books.planted_returns:
            row = state.get("endorsements", seq, plant.region)
            if isinstance(row, EndorsementRow) and row.decision == "reject":
                self.penalty(self.world.merchant(plant.culprit), "false_claim", [seq, row.seq])
                return

    def penalty(self, member: Member, rule_name: str, evidence: list[int]) -> int:
        """Points, listing and the longest duration come from the policy's rule."""
        rule = self.ledger.config.policy["rules"][rule_name]
        body = {
            "member": member.id,
            "rule": rule_name,
            "points": int(rule["points"]),
            "listing": str(rule["listing"]),
            "until": entry_time(self.world.now + timedelta(days=int(rule["days"]))),
            "evidence": sorted(evidence),
        }
        return self.ledger.submit_one("credit.penalty", region_principal(member.region), body)

    def restore(self) -> None:
        if self.books.watch_penalty is None:
            return
        seq, member = self.books.watch_penalty
        body = {"penalty": seq, "reason": RESTORE_REASON}
        self.ledger.submit_one("credit.restored", region_principal(member.region), body)
        self.books.watch_penalty = None


class Traders:
    """Merchants, the zone fund and the platforms: returns, advances, disputes."""

    def __init__(self, world: World, merchants: int) -> None:
        self.world = world
        self.ledger = world.ledger
        self.books = world.books
        self.bad = BadSubmissions(world)
        self.per_day = merchants * RETURNS_PER_MERCHANT
        self.plants_per_day = max(1, self.per_day // RETURNS_PER_PLANT)
        self.advances_per_day = max(1, merchants // MERCHANTS_PER_ADVANCE)
        self.disputes_per_day = max(1, merchants // MERCHANTS_PER_DISPUTE)

    def business(self, tick: int, day: int) -> None:
        """One stretch of opening hours: returns, a fabricated one now and then,
        advances, and the bad submissions the log must refuse, as one batch."""
        world, parts = self.world, len(TICKS_AT)
        planned = [
            self.plan_return(world.maker.make(world.now, world.suspended))
            for _ in range(share(self.per_day, tick, parts))
        ]
        for _ in range(share(self.plants_per_day, tick, parts)):
            planned.append(self.plan_fabricated())
        for index in range(share(self.advances_per_day, tick, parts)):
            planted = day % 2 == 1 and tick == 0 and index == 0  # every other day
            planned.append(self.plan_advance(planted))
        planned += self.bad.refusals(tick, day)
        self.ledger.submit(planned)

    def plan_return(self, sale: Sale, plant: Plant | None = None) -> Planned:
        delay = self.world.rng.randint(0, ENTRY_DELAY_MAX_S)
        document = self.ledger.signed("return.recorded", sale.acceptor.id, sale.body, delay_s=delay)
        if plant is not None:
            self.books.planted[document["entry"]["id"]] = plant
        return Planned(document, logged=functools.partial(self._note_return, sale, plant))

    def _note_return(self, sale: Sale, plant: Plant | None, seq: int) -> None:
        self.books.returns_today += 1
        if plant is not None:
            self.books.planted_returns.append((seq, plant))
        elif sale.seller.id != sale.acceptor.id:
            self.books.claims.append(Claim(seq, "return", sale.seller))
        if sale.full and plant is None:
            self.books.full_refunds.append(sale)

    def plan_fabricated(self) -> Planned:
        """A franchisee claims a peer's receipt that the peer's POS never issued."""
        sale = self.world.maker.cross_member(self.world.now, self.world.suspended)
        return self.plan_return(sale, Plant(sale.seller.region, FABRICATED, sale.acceptor.id))

    def plan_advance(self, planted: bool) -> Planned:
        """The zone fund pays for merchants of the zone's regions, a platform for any."""
        world, rng, population = self.world, self.world.rng, self.world.population
        zone_regions = {store.division[:2] for store in population.fund.stores}
        use_fund = rng.random() < FUND_ADVANCE_SHARE
        funder = population.fund if use_fund else rng.choice(population.platforms)
        liable = rng.choice(
            [
                m
                for m in population.merchants
                if m.id not in world.suspended and (not use_fund or m.region in zone_regions)
            ]
        )
        prefix = "SFQ" if use_fund else f"PT{population.platforms.index(funder) + 1}"
        body = {
            "liable": liable.id,
            "case": f"{prefix}-{world.now:%Y%m%d}-{len(self.books.cases) + 1:05d}",
            "basis": FUND_BASIS if use_fund else PLATFORM_BASIS,
            "amount_fen": rng.randint(50, 3_000) * FEN_PER_YUAN,
        }
        document = self.ledger.signed("advance.paid", funder.id, body)
        self.books.cases.append({"funder": funder.id, **body})
        if planted:
            plant = Plant(liable.region, NO_COMPLAINT, funder.id)
            self.books.planted[document["entry"]["id"]] = plant
            return Planned(document)
        return Planned(document, logged=functools.partial(self._note_claim, liable))

    def _note_claim(self, liable: Member, seq: int) -> None:
        self.books.claims.append(Claim(seq, "advance", liable))

    def file_disputes(self, day: int) -> None:
        """Debtors contest a few claims against them (never a planted one: those the
        regions void anyway)."""
        world = self.world
        candidates = [
            claim
            for claim in self.books.claims
            if claim.seq not in self.books.disputed and claim.debtor.id not in world.suspended
        ]
        chosen = world.rng.sample(candidates, min(self.disputes_per_day, len(candidates)))
        planned = []
        for claim in sorted(chosen, key=lambda c: c.seq):
            is_return = claim.kind == "return"
            reason = world.rng.choice(RETURN_DISPUTES) if is_return else ADVANCE_DISPUTE
            body = {"target": claim.seq, "reason": reason}
            document = self.ledger.signed("claim.disputed", claim.debtor.id, body)
            note = functools.partial(self._note_dispute, claim, day)
            planned.append(Planned(document, logged=note))
        self.ledger.submit(planned)

    def _note_dispute(self, claim: Claim, day: int, seq: int) -> None:
        self.books.disputed.add(claim.seq)
        ordinal = len(self.books.disputed) - 1
        self.books.open_disputes.append(OpenDispute(seq, claim.debtor, day, ordinal))


class BadSubmissions:
    """Submissions the log itself must refuse, mixed into the stores' batches."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.maker = world.maker

    def refusals(self, tick: int, day: int) -> list[Planned]:
        world = self.world
        makers: dict[int, Callable[[], Planned | None]] = {
            1: self.outside_window,
            3: self.over_refund,
            5: self.refund_again,
            6: self.excluded_category,
        }
        planned = [item for item in [makers[tick]()] if item] if tick in makers else []
        if tick == 0 and day == world.schedule.suspend_day:
            planned.append(self.by_suspended())
        if tick == 0 and day == world.schedule.keys_day:
            planned.append(self.with_old_key())
        if tick == 3 and day == 0 and world.books.cases:
            planned.append(self.case_again())
        return planned

    def _refused(self, kind: str, signer: str, body: dict[str, Any], label: str) -> Planned:
        return Planned(self.world.ledger.signed(kind, signer, body), refusal=label)

    def outside_window(self) -> Planned:
        now = self.world.now
        seller, acceptor = self.maker.pair(self.world.suspended)
        late = now - timedelta(days=seller.return_days + 2)
        sale = self.maker.refund(self.maker.receipt(seller, now, late), acceptor)
        return self._refused("return.recorded", acceptor.id, sale.body, OUTSIDE_WINDOW)

    def over_refund(self) -> Planned:
        """A refund larger than the receipt's amount (the items sum to it, too)."""
        sale = self.maker.make(self.world.now, self.world.suspended)
        body = json.loads(json.dumps(sale.body))
        excess = sale.receipt.amount_fen + OVER_REFUND_FEN - int(body["refund_fen"])
        body["items"][0]["refund_fen"] += excess
        body["refund_fen"] += excess
        return self._refused("return.recorded", sale.acceptor.id, body, OVER_REFUND)

    def refund_again(self) -> Planned | None:
        """A receipt refunded in full earlier today, refunded in full once more."""
        suspended = self.world.suspended
        for sale in self.world.books.full_refunds:
            if sale.seller.id in suspended or sale.acceptor.id in suspended:
                continue
            again = self.maker.refund(sale.receipt, sale.acceptor, full=True)
            return self._refused("return.recorded", sale.acceptor.id, again.body, REFUND_AGAIN)
        return None

    def excluded_category(self) -> Planned:
        """Goods on the seller's region's local negative list (or a statutory exclusion)."""
        seller, acceptor = self.maker.pair(self.world.suspended)
        policy = self.world.ledger.config.policy
        negative = (
            policy["local_excluded_categories"].get(seller.region) or policy["excluded_categories"]
        )
        receipt = self.maker.receipt(seller, self.world.now, category=str(negative[0]))
        sale = self.maker.refund(receipt, acceptor, full=True)
        return self._refused("return.recorded", acceptor.id, sale.body, EXCLUDED)

    def by_suspended(self) -> Planned:
        member = self.world.suspend_member
        sale = self.maker.refund(self.maker.receipt(member, self.world.now), member)
        return self._refused("return.recorded", member.id, sale.body, SUSPENDED)

    def with_old_key(self) -> Planned:
        """The rotated member's old POS key signs once more."""
        member, old = self.world.keys_member, self.world.retired_key
        invariant(old is not None, "demo: the old key is used only after a rotation")
        assert old is not None
        sale = self.maker.refund(self.maker.receipt(member, self.world.now), member)
        entry = self.world.ledger.factory.entry(
            "return.recorded", member.id, sale.body, self.world.now
        )
        return Planned(submitted(entry, old), refusal=OLD_KEY)

    def case_again(self) -> Planned:
        case = dict(self.world.books.cases[0])
        funder = case.pop("funder")
        return self._refused("advance.paid", funder, case, CASE_TWICE)


class Simulation:
    """The alliance's days, from enrolment to the last cosignature."""

    def __init__(
        self,
        ledger: LedgerClient,
        rng: random.Random,
        merchants: int,
        days: int,
        console: Console | None = None,
    ) -> None:
        zone = [d for z in ledger.config.policy.get("zones", []) for d in z["divisions"]]
        population = PopulationBuilder(rng, zone).build(merchants)
        self.world = World(ledger, rng, population, Schedule(days))
        self.regulators = Regulators(self.world)
        self.traders = Traders(self.world, merchants)
        self.ledger = ledger
        self.days = days
        self.console = console

    def run(self) -> None:
        clock = self.ledger.clock
        clock.set(0, ENROLMENT_AT)
        self.enrol()
        for day in range(self.days):
            for minute, step in self.day_plan():
                clock.set(day, minute)
                step(day)
            self.report_day(day)
        clock.set(self.days - 1, FINAL_ROUND_AT)
        self.regulators.drain()
        clock.set(self.days - 1, FINAL_COSIGN_AT)
        self.ledger.cosign()

    def day_plan(self) -> list[tuple[int, Callable[[int], None]]]:
        regulators, traders = self.regulators, self.traders
        plan: list[tuple[int, Callable[[int], None]]] = [
            (MORNING_AT, regulators.morning),
            (MIDDAY_ROUND_AT, regulators.endorse),
            (DISPUTES_AT, traders.file_disputes),
            (EVENING_ROUND_AT, regulators.endorse),
            (CREDIT_AT, regulators.credit),
            (LATE_AT, regulators.late),
            (COSIGN_AT, lambda _day: self.ledger.cosign()),
        ]
        plan += [(m, functools.partial(traders.business, i)) for i, m in enumerate(TICKS_AT)]
        return sorted(plan, key=lambda step: step[0])

    def enrol(self) -> None:
        """Each region enrols its own members, in one batch."""
        ledger = self.ledger
        for code in ledger.regions:
            members = [m for m in self.world.population.members if m.region == code]
            ledger.submit([self.enrolment(member) for member in members])

    def enrolment(self, member: Member) -> Planned:
        body = member.enrolment(self.ledger.ring.ensure(member.id))
        return Planned(self.ledger.signed("member.enrolled", region_principal(member.region), body))

    def report_day(self, day: int) -> None:
        books = self.world.books
        if self.console is not None:
            date = DAY_ZERO + timedelta(days=day)
            self.console.print(
                f"day {day + 1} {date:%Y-%m-%d}: {books.returns_today} returns logged, "
                f"log size {self.ledger.size():,}, refused so far {self.ledger.refused.total()}",
                highlight=False,
            )
        books.returns_today = 0
        books.full_refunds.clear()


# --- summary -----------------------------------------------------------------------------


@dataclass
class RegionFigures:
    members: int = 0
    returns: int = 0
    cross_region: int = 0
    refunded_fen: int = 0
    approved: int = 0
    rejected: int = 0


@dataclass
class Summary:
    """Figures read back from the exported log and the audit's replayed state."""

    kinds: Counter[str]
    obligations: dict[str, tuple[int, int]]  # status -> (count, amount in 分)
    regions: dict[str, RegionFigures]
    refused: Counter[str]
    size: int
    root: str
    cosigned_by: list[str]
    elapsed_s: float = 0.0

    @property
    def cross_region_returns(self) -> int:
        return sum(figures.cross_region for figures in self.regions.values())

    @property
    def rejections(self) -> int:
        return sum(figures.rejected for figures in self.regions.values())


def summarize(report: AuditReport, directory: Path, refused: Counter[str]) -> Summary:
    state = report.state
    regions = {code: RegionFigures() for code in state.region_codes()}
    member_region: dict[str, str] = {}
    for row in state.rows("members"):
        if isinstance(row, MemberRow):
            regions[row.region].members += 1
            member_region[row.id] = row.region
    kinds: Counter[str] = Counter()
    with (directory / ENTRIES_FILE).open("rb") as lines:
        for line in lines:
            entry = json.loads(line)["entry"]
            kinds[entry["kind"]] += 1
            if entry["kind"] == "return.recorded":
                figures = regions[member_region[entry["signer"]]]
                figures.returns += 1
                figures.refunded_fen += int(entry["body"]["refund_fen"])
                seller = member_region[entry["body"]["receipt"]["merchant"]]
                figures.cross_region += seller != member_region[entry["signer"]]
    for row in state.rows("endorsements"):
        if isinstance(row, EndorsementRow):
            if row.decision == "approve":
                regions[row.region].approved += 1
            else:
                regions[row.region].rejected += 1
    obligations = dict.fromkeys(OBLIGATION_STATUSES, (0, 0))
    for row in state.rows("obligations"):
        if isinstance(row, ObligationRow):
            count, amount = obligations.get(row.status, (0, 0))
            obligations[row.status] = (count + 1, amount + row.amount_fen)
    root = b64encode(report.root)
    return Summary(kinds, obligations, regions, refused, report.size, root, report.cosigned_by)


def print_summary(console: Console, summary: Summary, config: AllianceConfig) -> None:
    kinds = Table(title="Entries by kind")
    kinds.add_column("kind")
    kinds.add_column("entries", justify="right")
    for kind, count in sorted(summary.kinds.items()):
        kinds.add_row(kind, f"{count:,}")
    kinds.add_row("[bold]total[/]", f"[bold]{summary.kinds.total():,}[/]")
    console.print(kinds)
    owed = Table(title="Obligations by status")
    for column in ("status", "obligations", "amount (元)"):
        owed.add_column(column, justify="left" if column == "status" else "right")
    for status, (count, amount) in summary.obligations.items():
        owed.add_row(status, f"{count:,}", yuan(amount))
    console.print(owed)
    console.print(region_table(summary, config))
    refused = Table(title="Refused by the log (no seq consumed)")
    refused.add_column("submission")
    refused.add_column("refused", justify="right")
    for label, count in sorted(summary.refused.items()):
        refused.add_row(label, str(count))
    refused.add_row("[bold]total[/]", f"[bold]{summary.refused.total()}[/]")
    console.print(refused)
    console.print(
        f"tree size [bold]{summary.size:,}[/], root [bold]{summary.root}[/]\n"
        f"cosigned by regions {', '.join(summary.cosigned_by)}; "
        f"run time [bold]{summary.elapsed_s:.1f} s[/]",
        highlight=False,
    )


def region_table(summary: Summary, config: AllianceConfig) -> Table:
    names = {region.code: region.name for region in config.regions}
    table = Table(title="Regions")
    headings = (
        "region",
        "members",
        "returns",
        "cross-region",
        "refunded (元)",
        "approved",
        "rejected",
    )
    for heading in headings:
        table.add_column(heading, justify="left" if heading == "region" else "right")
    total = RegionFigures()
    for code, f in summary.regions.items():
        label = f"{code} {REGION_SHORT.get(code, names.get(code, ''))}"
        table.add_row(
            label,
            str(f.members),
            f"{f.returns:,}",
            f"{f.cross_region:,}",
            yuan(f.refunded_fen),
            f"{f.approved:,}",
            f"{f.rejected:,}",
        )
        for name in ("members", "returns", "cross_region", "refunded_fen", "approved", "rejected"):
            setattr(total, name, getattr(total, name) + getattr(f, name))
    table.add_row(
        "[bold]all[/]",
        str(total.members),
        f"{total.returns:,}",
        f"{total.cross_region:,}",
        yuan(total.refunded_fen),
        f"{total.approved:,}",
        f"{total.rejected:,}",
    )
    return table


# --- entry points ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DemoOutcome:
    report: AuditReport
    summary: Summary


def simulate(
    db_url: str,
    *,
    days: int = 7,
    merchants: int = 200,
    seed: int = 1,
    keys: Path | None = None,
    out: Path = Path("demo-export"),
    console: Console | None = None,
) -> DemoOutcome:
    """Run the simulated alliance into a fresh ledger, export it, audit the export."""
    if days < 1 or merchants < MIN_MERCHANTS:
        raise ConfigError(f"the demo needs at least 1 day and {MIN_MERCHANTS} merchants")
    started = time.perf_counter()
    config = load_config()
    ledger = LedgerClient.create(db_url, config, seed)
    try:
        rng = random.Random(seed)  # noqa: S311 (a reproducible simulation, not cryptography)
        Simulation(ledger, rng, merchants, days, console).run()
        export(ledger.engine, out)
    finally:
        ledger.engine.dispose()
    report = audit_directory(out)
    if keys is not None:
        ledger.ring.save(keys)
    summary = summarize(report, out, ledger.refused)
    summary.elapsed_s = time.perf_counter() - started
    return DemoOutcome(report, summary)


def run_demo(
    db_url: str,
    *,
    days: int = 7,
    merchants: int = 200,
    seed: int = 1,
    keys: Path | None = None,
    out: Path = Path("demo-export"),
) -> bool:
    """`alliance demo`: simulate, audit, print the audit and the summary. True when the
    audit passed."""
    console = Console()
    if not console.is_terminal:  # piped or captured: no terminal width to respect
        console = Console(width=PIPED_WIDTH)
    outcome = simulate(
        db_url, days=days, merchants=merchants, seed=seed, keys=keys, out=out, console=console
    )
    print_audit(outcome.report, as_json=False)
    print_summary(console, outcome.summary, load_config())
    return outcome.report.ok


__all__ = ["DemoOutcome", "Summary", "run_demo", "simulate", "yuan"]
