"""What every actor of the simulation shares: the simulated calendar, the ledger as
the simulation drives it, the schedule of one-off events and the books of what was
logged."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from ledger import store
from ledger.app import Ledger
from ledger.state import OPERATOR, region_principal
from nodes.client import LocalClient, LogClient
from nodes.endorse import EndorseNode, Judge
from nodes.witness import WitnessNode
from ops.config import AllianceConfig
from ops.demo.network import Network
from ops.demo.population import Member, Population
from ops.demo.sales import ReturnMaker, Sale
from ops.service import trust_from_ledger
from ops.world import SHANGHAI, Clock, EntryFactory, Keyring, genesis_submission
from schemas.errors import AllianceError, AlreadyInitialisedError, invariant
from signing.keys import PrivateKey

# Day 0 of the simulation, local midnight (a Monday); every step is minutes after it.
DAY_ZERO = datetime(2026, 11, 16, 0, 0, tzinfo=SHANGHAI)
# Ten days: the first night's instructions fall due on day 3 (Thursday), the night of
# day 4 lists the one left unpaid overdue, its region gives notice on day 5, decides on
# the morning of day 9 once the objection period is over, and restores that evening,
# once the debtor has paid and its payee confirmed.
DEMO_DAYS = 10
GENESIS_AT = 8 * 60
ENROLMENT_AT = 8 * 60 + 30
# The genesis and the enrolments are logged this many days before the first business day:
# a member's commitment binds purchases made after it enrolled, and the first day's returns
# are of purchases up to the longest window (30 days) back.
ENROLMENT_LEAD_DAYS = 31
NIGHT_ROUND_AT = 40  # 00:40: the regions' nodes approve the night the operator closed
NIGHT_COSIGN_AT = 50  # 00:50 after the last day: the witnesses cosign the last night
MORNING_AT = 9 * 60  # regulators' morning desk work: disputes, suspensions, keys
PAY_AT = 10 * 60  # treasurers pay their instructions when the banks open
CONFIRM_AT = 15 * 60 + 30  # payees confirm the transfers their bank credited
TICKS_AT = (570, 645, 720, 840, 915, 990, 1080, 1170)  # 09:30 … 19:30: stores submit
MIDDAY_ROUND_AT = 13 * 60  # endorsement nodes run twice a day
DISPUTES_AT = 16 * 60
EVENING_ROUND_AT = 20 * 60 + 30
CREDIT_AT = 20 * 60 + 45  # penalties after the evening round has rejected the plants
LATE_AT = 20 * 60 + 55  # same-day follow-ups when the run has no next day
COSIGN_AT = 21 * 60 + 30  # witnesses cosign at the close of each day
FINAL_ROUND_AT = 21 * 60 + 40
FINAL_COSIGN_AT = 21 * 60 + 50


def sim_time(day: int, minute: int) -> datetime:
    """The simulated moment ``minute`` minutes after local midnight of ``day``."""
    return DAY_ZERO + timedelta(days=day, minutes=minute)


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

    def __init__(
        self,
        ledger: Ledger,
        config: AllianceConfig,
        ring: Keyring,
        factory: EntryFactory,
        clock: Clock,
    ) -> None:
        self.ledger = ledger
        self.engine = ledger.engine
        self.config = config
        self.ring = ring
        self.factory = factory
        self.clock = clock  # the log clock and the time of every entry
        self.sequencer = ledger.writer
        self.endorsers: dict[str, EndorseNode] = {}  # each region's node, kept between runs
        self.witnesses: dict[str, WitnessNode] = {}
        # Once set (ops.demo.network), the regions endorse and cosign over HTTP.
        self.network: Network | None = None
        self.refused: Counter[str] = Counter()
        self.decided: Counter[tuple[str, str]] = Counter()  # (region, decision) -> targets

    @classmethod
    def create(cls, db_url: str, config: AllianceConfig, seed: int) -> LedgerClient:
        """A fresh ledger: schema, genesis with the configured regions, cosignatures."""
        ring = Keyring(seed=seed)
        clock = Clock(sim_time(-ENROLMENT_LEAD_DAYS, GENESIS_AT))
        factory = EntryFactory(seed)
        genesis = genesis_submission(config, ring, factory, clock.now)
        try:
            ledger = Ledger.create(db_url, genesis, ring.ensure(OPERATOR), clock)
        except AlreadyInitialisedError as exc:
            raise AlreadyInitialisedError(
                f"{db_url} already holds a ledger; the demo needs a fresh database "
                "(delete the file first)"
            ) from exc
        client = cls(ledger, config, ring, factory, clock)
        trust = trust_from_ledger(ledger)
        for code in client.regions:
            key = ring.keys[region_principal(code)]
            client.endorsers[code] = EndorseNode(code, key, trust, new_id=client.factory.new_id)
            client.witnesses[code] = WitnessNode(code, ring.witnesses[code], trust)
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
        client = LocalClient(self.ledger)
        for code in self.regions:
            if self.network is not None:
                outcome = self.network.endorse(code, self.clock, judge(code))
                self._credit_over_http(code, client, self.network.endorsers[code][1])
            else:
                outcome = self.endorsers[code].run(client, self.clock.now, judge(code))
            invariant(not outcome.queued, "demo: the regions' desks decide every entry")
            self.decided[(code, "approve")] += outcome.approved
            self.decided[(code, "reject")] += outcome.rejected
            decided += outcome.approved + outcome.rejected
        return decided

    def _credit_over_http(self, code: str, local: LocalClient, http: LogClient) -> None:
        """The region's credit desk (nodes/credit.py) judges on its node's own replay of
        the leaves (the follower verifies every leaf and signature; it holds no operator
        key) and logs its notices and decisions over HTTP with the region's key alone: the
        HTTP node may not read every leaf (entry bundles are the auditors'), so the desk
        cannot judge from what it fetches over HTTP."""
        node = self.endorsers[code]
        node.follower.sync(local)
        if node.credit is not None:
            node.credit.run(node.follower.state, http, self.clock.now)

    def cosign(self) -> None:
        if self.network is not None:
            self.network.cosign()
            return
        client = LocalClient(self.ledger)
        for code in self.regions:
            self.witnesses[code].cosign(client, self.clock.now)

    def size(self) -> int:
        with self.engine.connect() as connection:
            return store.head_size(connection)


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
    def notice_day(self) -> int:
        """Credit notices go out once day 0's plants are rejected and its disputes resolved
        (the next morning); decisions and restorations follow the log, not the calendar."""
        return min(1, self.days - 1)


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
    # Credit due process: notices awaiting a decision, penalties awaiting their cure.
    notices: list[tuple[int, Member]] = field(default_factory=list)
    curable: list[tuple[int, Member]] = field(default_factory=list)
    decision_numbers: Counter[str] = field(default_factory=Counter)  # per region
    # Overdue settlements: the instruction (night seq, index) each notice and each penalty
    # is about, and the instructions whose debtor pays once the region has decided.
    overdue_notices: dict[int, tuple[int, int]] = field(default_factory=dict)
    overdue_penalties: dict[int, tuple[int, int]] = field(default_factory=dict)
    released: set[tuple[int, int]] = field(default_factory=set)
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

    def member(self, member_id: str) -> Member:
        """Any member: a merchant, the fund or a platform."""
        return next(m for m in self.population.members if m.id == member_id)
