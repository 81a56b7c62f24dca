"""The alliance's days from enrolment to the last cosignature, and the entry points:
``simulate`` (run, export, audit) and ``run_demo`` (`alliance demo`)."""

from __future__ import annotations

import functools
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from rich.console import Console

from ledger.audit import AuditReport, audit_directory
from ledger.export import TRUST_FILE
from ledger.state import region_principal
from ops.config import load_config
from ops.demo.actors import Regulators, Traders
from ops.demo.network import network
from ops.demo.population import Member, PopulationBuilder
from ops.demo.settling import Treasury, reconcile_minute
from ops.demo.stage import (
    CONFIRM_AT,
    COSIGN_AT,
    CREDIT_AT,
    DAY_ZERO,
    DEMO_DAYS,
    DISPUTES_AT,
    ENROLMENT_AT,
    ENROLMENT_LEAD_DAYS,
    EVENING_ROUND_AT,
    FINAL_COSIGN_AT,
    FINAL_ROUND_AT,
    LATE_AT,
    MIDDAY_ROUND_AT,
    MORNING_AT,
    NIGHT_COSIGN_AT,
    NIGHT_ROUND_AT,
    PAY_AT,
    TICKS_AT,
    LedgerClient,
    Planned,
    Schedule,
    World,
    sim_time,
)
from ops.demo.summary import Summary, print_summary, summarize
from ops.report import print_audit
from ops.service import TRUST_FILE_MODE
from schemas.errors import ConfigError, invariant
from schemas.files import write_new
from schemas.limits import DEMO_MERCHANTS_MIN

PIPED_WIDTH = 110  # the region table's width, when output is not a terminal


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
        regions = [region.code for region in ledger.config.regions]
        population = PopulationBuilder(rng, zone, regions).build(merchants)
        self.world = World(ledger, rng, population, Schedule(days))
        self.regulators = Regulators(self.world)
        self.traders = Traders(self.world, merchants)
        self.treasury = Treasury(self.world)
        self.reconcile_at = reconcile_minute(str(ledger.config.policy["reconcile_at"]))
        invariant(
            self.reconcile_at < NIGHT_ROUND_AT,
            "demo: the night is closed before the regions' night round",
        )
        self.ledger = ledger
        self.days = days
        self.console = console

    def run(self) -> None:
        clock = self.ledger.clock
        clock.set(sim_time(-ENROLMENT_LEAD_DAYS, ENROLMENT_AT))
        self.enrol()
        for day in range(self.days):
            for minute, step in self.day_plan():
                clock.set(sim_time(day, minute))
                step(day)
            self.report_day(day)
        clock.set(sim_time(self.days - 1, FINAL_ROUND_AT))
        self.regulators.drain()
        clock.set(sim_time(self.days - 1, FINAL_COSIGN_AT))
        self.ledger.cosign()
        # The last business day's night, once its cutoff has passed, approved by every
        # region and cosigned: the export ends with every day of the run closed.
        clock.set(sim_time(self.days, self.reconcile_at))
        self.treasury.close(self.days)
        clock.set(sim_time(self.days, NIGHT_ROUND_AT))
        self.regulators.drain()
        clock.set(sim_time(self.days, NIGHT_COSIGN_AT))
        self.ledger.cosign()

    def day_plan(self) -> list[tuple[int, Callable[[int], None]]]:
        regulators, traders, treasury = self.regulators, self.traders, self.treasury
        plan: list[tuple[int, Callable[[int], None]]] = [
            (self.reconcile_at, treasury.close),
            (NIGHT_ROUND_AT, regulators.endorse),
            (PAY_AT, treasury.pay),
            (CONFIRM_AT, treasury.confirm),
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
        network = self.world.population.network_of(member)
        body = member.enrolment(self.ledger.ring.ensure(member.id), network)
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


@dataclass(frozen=True, slots=True)
class DemoOutcome:
    report: AuditReport
    summary: Summary


def simulate(
    db_url: str,
    *,
    days: int = DEMO_DAYS,
    merchants: int = 200,
    seed: int = 1,
    keys: Path | None = None,
    out: Path = Path("demo-export"),
    console: Console | None = None,
    config_path: Path | None = None,
) -> DemoOutcome:
    """Run the simulated alliance into a fresh ledger, export it, audit the export."""
    if days < 1 or merchants < DEMO_MERCHANTS_MIN:
        raise ConfigError(f"the demo needs at least 1 day and {DEMO_MERCHANTS_MIN} merchants")
    started = time.perf_counter()
    config = load_config(config_path)
    ledger = LedgerClient.create(db_url, config, seed)
    try:
        rng = random.Random(seed)  # noqa: S311 (a reproducible simulation, not cryptography)
        with network(
            ledger.ledger, ledger.ring, ledger.regions, ledger.clock, ledger.factory.new_id
        ) as net:
            ledger.network = net
            try:
                ledger.cosign()
                Simulation(ledger, rng, merchants, days, console).run()
            finally:
                ledger.network = None
            story = net.story()
        ledger.ledger.export(out)
        if console is not None:
            console.print(story, highlight=False, soft_wrap=True)
    finally:
        ledger.engine.dispose()
    report = audit_directory(out)
    if keys is not None:
        ledger.ring.save(keys)
        # The trust root beside the keys, as `alliance init` leaves it, so a user can run
        # any region's node or witness afterwards (`alliance witness --key …`).
        write_new(keys / TRUST_FILE, (out / TRUST_FILE).read_bytes(), TRUST_FILE_MODE)
    summary = summarize(report, out, ledger.refused)
    summary.elapsed_s = time.perf_counter() - started
    return DemoOutcome(report, summary)


def run_demo(
    db_url: str,
    *,
    days: int = DEMO_DAYS,
    merchants: int = 200,
    seed: int = 1,
    keys: Path | None = None,
    out: Path = Path("demo-export"),
    config_path: Path | None = None,
) -> bool:
    """`alliance demo`: simulate, audit, print the audit and the summary. True when the
    audit passed."""
    console = Console()
    if not console.is_terminal:  # piped or captured: no terminal width to respect
        console = Console(width=PIPED_WIDTH)
    outcome = simulate(
        db_url,
        days=days,
        merchants=merchants,
        seed=seed,
        keys=keys,
        out=out,
        console=console,
        config_path=config_path,
    )
    print_audit(outcome.report, as_json=False)
    print_summary(console, outcome.summary, load_config(config_path))
    return outcome.report.ok
