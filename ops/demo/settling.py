"""The nights and the money (issue 8): the operator's nightly job closes each business
day once its cutoff has passed, the regions' nodes approve the night they recomputed
(Regulators.endorse), payers pay their instructions and payees confirm what their bank
credited.

Most payers pay in full on a working day between the night's closing and the due date;
some pay in two parts; a payee usually confirms the same afternoon, sometimes the next
working day (never past the due date: a slow bank is not the payer's fault). One chosen
debtor does not pay an instruction of the first night with instructions, so that it is
overdue in every later report: its region takes it through the credit process
(Regulators.credit), and the debtor pays only once the region has decided.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import date, timedelta

from ledger.calendar import is_day_off, local_date, next_working_day
from ops.demo.stage import Planned, World
from reconciliation.nightly import Night, close_due
from schemas.bodies import CalendarModel

PART_PAYERS_SHARE = 0.2  # pay an instruction in two parts (a short cash position)
LATE_CONFIRM_SHARE = 0.25  # the payee's bank credits the transfer the next working day


@dataclass(frozen=True, slots=True)
class Transfer:
    """One settlement instruction, as the payer's treasurer reads it from the report."""

    night: int  # the reconciliation.closed seq
    index: int
    payer: str
    payee: str
    amount_fen: int
    reference: str  # the bank memo
    due: date


@dataclass(frozen=True, slots=True)
class Step:
    """A payment or a confirmation to log on ``day``."""

    day: date
    transfer: Transfer
    amount_fen: int


def reconcile_minute(reconcile_at: str) -> int:
    """Minutes after local midnight of the policy's ``reconcile_at`` (HH:MM)."""
    hours, minutes = reconcile_at.split(":")
    return int(hours) * 60 + int(minutes)


class Treasury:
    """The operator's nightly job and the members' treasurers."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.ledger = world.ledger
        self.books = world.books
        self.payments: list[Step] = []
        self.confirmations: list[Step] = []
        self.withheld: Transfer | None = None  # the chosen debtor's unpaid instruction
        self.paid: dict[tuple[int, int], int] = {}  # fen paid so far per instruction

    @property
    def today(self) -> date:
        return local_date(self.world.now)

    def close(self, _day: int) -> None:
        """The nightly job: every due day, oldest first; then each night's plan."""
        for night in close_due(self.ledger.ledger, new_id=self.ledger.factory.new_id):
            self.plan(night)

    def plan(self, night: Night) -> None:
        """When each payer of the night pays: in full or in two parts, on working days
        from today to the due date."""
        report = json.loads(night.report)
        transfers = [
            Transfer(
                night.seq,
                i["index"],
                i["payer"],
                i["payee"],
                i["amount_fen"],
                i["reference"],
                date.fromisoformat(i["due"]),
            )
            for i in report["instructions"]
        ]
        if transfers and self.withheld is None:
            self.withheld = self._choose_debtor(transfers)
        rng = self.world.rng
        for transfer in transfers:
            if transfer == self.withheld:
                continue
            window = self._working_days(self.today, transfer.due)
            if transfer.amount_fen >= 2 and rng.random() < PART_PAYERS_SHARE:
                first, second = sorted(rng.choice(window) for _ in range(2))
                part = transfer.amount_fen // 2
                self.payments.append(Step(first, transfer, part))
                self.payments.append(Step(second, transfer, transfer.amount_fen - part))
            else:
                self.payments.append(Step(rng.choice(window), transfer, transfer.amount_fen))

    def _choose_debtor(self, transfers: list[Transfer]) -> Transfer | None:
        """The largest instruction a merchant pays (a fund or platform answers to its own
        regulator), preferably of a merchant whose key rotation or suspension is not
        already a story of the run; None if no merchant pays tonight (a tiny run)."""
        world = self.world
        busy = {world.keys_member.id, world.suspend_member.id}
        merchants = {member.id for member in world.population.merchants}
        paying = [t for t in transfers if t.payer in merchants]
        candidates = [t for t in paying if t.payer not in busy] or paying
        if not candidates:
            return None
        return max(candidates, key=lambda t: (t.amount_fen, -t.index))

    def _working_days(self, first: date, due: date) -> list[date]:
        calendar = self.ledger.sequencer.state().policy.calendar
        days = [first + timedelta(days=n) for n in range((due - first).days + 1)]
        working = [day for day in days if not is_day_off(calendar, day)]
        return working or [due]

    def pay(self, _day: int) -> None:
        """Each payer pays what it planned for today, in one batch; the chosen debtor pays
        the rest of its overdue instruction once its region has decided on it."""
        withheld = self.withheld
        if withheld is not None and (withheld.night, withheld.index) in self.books.released:
            left = withheld.amount_fen - self.paid.get((withheld.night, withheld.index), 0)
            self.payments.append(Step(self.today, withheld, left))
            self.books.released.discard((withheld.night, withheld.index))
        due = [step for step in self.payments if step.day <= self.today]
        self.payments = [step for step in self.payments if step.day > self.today]
        calendar = self.ledger.sequencer.state().policy.calendar
        planned = []
        for step in due:
            transfer = step.transfer
            key = (transfer.night, transfer.index)
            self.paid[key] = self.paid.get(key, 0) + step.amount_fen
            receipt = f"{transfer.reference} {self.paid[key]}"  # the bank's receipt number
            body = {
                "reconciliation": transfer.night,
                "instruction": transfer.index,
                "amount_fen": step.amount_fen,
                "receipt_hash": hashlib.sha256(receipt.encode()).hexdigest(),
            }
            planned.append(Planned(self.ledger.signed("settlement.paid", transfer.payer, body)))
            self.confirmations.append(
                Step(self._credited(transfer, calendar), transfer, step.amount_fen)
            )
        self.ledger.submit(planned)

    def _credited(self, transfer: Transfer, calendar: CalendarModel | None) -> date:
        """The day the payee's bank credits a payment made today: today, or now and then
        the next working day when that still lies within the due date."""
        later = next_working_day(calendar, self.today + timedelta(days=1))
        if later <= transfer.due and self.world.rng.random() < LATE_CONFIRM_SHARE:
            return later
        return self.today

    def confirm(self, _day: int) -> None:
        """Each payee confirms what its bank has credited by today, in one batch."""
        due = [step for step in self.confirmations if step.day <= self.today]
        self.confirmations = [step for step in self.confirmations if step.day > self.today]
        planned = []
        for step in due:
            transfer = step.transfer
            body = {
                "reconciliation": transfer.night,
                "instruction": transfer.index,
                "amount_fen": step.amount_fen,
            }
            document = self.ledger.signed("settlement.confirmed", transfer.payee, body)
            planned.append(Planned(document))
        self.ledger.submit(planned)
