"""The demo's nights and credit cases, read back from the export (entries and the
reconciliation reports the audit recomputed byte for byte) and the audit's replayed
state, and the tables that print them. Money stays integer 分 until it is text."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from rich.table import Table

from ledger.calendar import local_date
from ledger.state import State
from ops.demo.catalogue import yuan
from schemas.entry import parse_time

PERMILLE_PER_PERCENT = 10


@dataclass
class DayFigures:
    """One business day: its night's totals and the settlement entries logged on it."""

    day: str
    included: int = 0
    gross_fen: int = 0
    net_fen: int = 0
    instructions: int = 0
    reduction_permille: int = 0
    overdue: int = 0
    overdue_fen: int = 0
    paid: int = 0
    paid_fen: int = 0
    confirmed: int = 0
    closed: bool = False


@dataclass
class CreditCase:
    """One penalty from notice to restoration, with the seqs that prove each step."""

    rule: str
    member: str
    evidence: list[int]
    notice: int
    objection: int | None
    penalty: int
    decision_no: str
    measure: str
    decided: str  # local date
    restored: int | None = None
    cure: int | None = None


@dataclass
class Nights:
    """Every business day of the run, and the nights closed before it (the enrolment
    weeks, empty)."""

    days: dict[str, DayFigures] = field(default_factory=dict)
    empty_before: int = 0
    cases: list[CreditCase] = field(default_factory=list)

    def note(self, record: dict[str, Any], reports: Path) -> None:
        """Count one exported record (call for every line of entries.jsonl, in order)."""
        entry = record["entry"]
        kind, body = entry["kind"], entry["body"]
        if kind == "reconciliation.closed":
            self._close(body, reports)
        elif kind in ("settlement.paid", "settlement.confirmed"):
            figures = self._day(local_date(parse_time(record["logged"])).isoformat())
            if kind == "settlement.paid":
                figures.paid += 1
                figures.paid_fen += int(body["amount_fen"])
            else:
                figures.confirmed += 1

    def _day(self, day: str) -> DayFigures:
        return self.days.setdefault(day, DayFigures(day))

    def _close(self, body: dict[str, Any], reports: Path) -> None:
        totals = body["totals"]
        figures = self._day(body["day"])
        figures.closed = True
        figures.included = int(totals["obligations"])
        figures.gross_fen = int(totals["gross_fen"])
        figures.net_fen = int(totals["net_fen"])
        figures.instructions = int(totals["instructions"])
        figures.reduction_permille = int(totals["reduction_permille"])
        figures.overdue = int(totals["overdue"])
        if figures.overdue:
            report = json.loads((reports / f"{body['day']}.json").read_bytes())
            figures.overdue_fen = sum(int(item["amount_fen"]) for item in report["overdue"])

    def trim(self, first_day: date) -> None:
        """Fold the nights before ``first_day`` (the enrolment weeks) into a count."""
        before = [day for day in self.days if date.fromisoformat(day) < first_day]
        self.empty_before = len(before)
        for day in before:
            del self.days[day]


def credit_cases(state: State, restorations: dict[int, dict[str, Any]]) -> list[CreditCase]:
    """Each penalty with its notice, evidence, objection and restoration (and cure)."""
    evidence: dict[int, list[int]] = {}
    for row in state.notice_evidence.rows():
        evidence.setdefault(row.notice, []).append(row.evidence)
    cases = []
    for penalty in sorted(state.penalties.rows(), key=lambda row: row.seq):
        notice = state.credit_notices.get(penalty.notice)
        assert notice is not None
        case = CreditCase(
            penalty.rule,
            penalty.member,
            sorted(evidence.get(notice.seq, [])),
            notice.seq,
            notice.objection_seq,
            penalty.seq,
            penalty.decision_no,
            penalty.measure,
            local_date(parse_time(penalty.issued)).isoformat(),
        )
        if penalty.restored_seq is not None:
            case.restored = penalty.restored_seq
            case.cure = restorations[penalty.restored_seq].get("cure")
        cases.append(case)
    return cases


def percent(permille: int) -> str:
    """Per-mille as a percentage with one decimal, from integers."""
    whole, tenth = divmod(permille, PERMILLE_PER_PERCENT)
    return f"{whole}.{tenth} %"


def nights_table(nights: Nights) -> Table:
    title = "Nights: each business day closed after midnight, approved by every region"
    caption = None
    if nights.empty_before:
        caption = f"and {nights.empty_before} empty nights of the enrolment weeks before"
    table = Table(title=title, caption=caption)
    headings = (
        "day",
        "included",
        "gross 元",
        "net 元",
        "instr.",
        "netted",
        "paid",
        "confirmed",
        "overdue",
    )
    for heading in headings:
        table.add_column(heading, justify="left" if heading == "day" else "right", no_wrap=True)
    for figures in sorted(nights.days.values(), key=lambda f: f.day):
        closed = figures.closed
        overdue = f"{figures.overdue} {yuan(figures.overdue_fen)}" if figures.overdue else "0"
        table.add_row(
            figures.day,
            f"{figures.included:,}" if closed else "open",
            yuan(figures.gross_fen) if closed else "",
            yuan(figures.net_fen) if closed else "",
            f"{figures.instructions:,}" if closed else "",
            percent(figures.reduction_permille) if closed else "",
            f"{figures.paid:,}",
            f"{figures.confirmed:,}",
            overdue if closed else "",
        )
    return table


def credit_table(cases: list[CreditCase]) -> Table:
    table = Table(title="Credit due process (seqs on the log)")
    for heading in ("rule", "member", "cites", "notice", "objection", "decided", "restored"):
        table.add_column(heading, no_wrap=heading != "cites")
    for case in cases:
        restored = "—" if case.restored is None else str(case.restored)
        if case.cure is not None:
            restored += f" cure {case.cure}"
        table.add_row(
            case.rule,
            case.member,
            ", ".join(str(seq) for seq in case.evidence),
            str(case.notice),
            "—" if case.objection is None else str(case.objection),
            f"{case.penalty} {case.measure}",
            restored,
        )
    return table


def overdue_story(state: State, cases: list[CreditCase], reports: Path) -> list[str]:
    """The overdue settlement's story, line by line, from the log: the instruction, the
    nights that list it, notice, objection, decision, payment, confirmation, restoration."""
    lines: list[str] = []
    for case in cases:
        if case.rule != "overdue_settlement" or not case.evidence:
            continue
        listed = state.overdue_listed.get((case.evidence[0], case.member), set())
        for night_seq, index in sorted(listed):
            lines += _instruction_story(state, case, night_seq, index, reports)
    return lines


def _instruction_story(
    state: State, case: CreditCase, night_seq: int, index: int, reports: Path
) -> list[str]:
    night = state.nights.get(night_seq)
    instruction = state.instructions.get(night_seq, index)
    assert night is not None and instruction is not None
    report = json.loads((reports / f"{night.day}.json").read_bytes())
    reference = report["instructions"][index]["reference"]
    listing = sorted(
        row.day
        for row in state.nights.rows()
        if (night_seq, index) in state.overdue_listed.get((row.seq, case.member), set())
    )
    steps = sorted(
        (row.seq, row.kind, row.amount_fen)
        for row in state.settlements.rows()
        if (row.night, row.index) == (night_seq, index)
    )
    payments = ", ".join(f"{kind} {yuan(amount)} at seq {seq}" for seq, kind, amount in steps)
    objection = "no objection" if case.objection is None else f"objection at seq {case.objection}"
    restored = (
        "not restored yet"
        if case.restored is None
        else f"restored at seq {case.restored} citing confirmation {case.cure}"
    )
    return [
        f"instruction {index} of the night of {night.day} ({reference}):",
        f"  {instruction.payer} owes {instruction.payee} {yuan(instruction.amount_fen)}, "
        f"due {instruction.due}",
        f"  listed overdue by the nights of {', '.join(listing)}",
        f"  notice at seq {case.notice} citing the night at seq {case.evidence[0]}; {objection}",
        f"  decided at seq {case.penalty} on {case.decided}: {case.decision_no}, {case.measure}",
        f"  {payments or 'nothing paid'}",
        f"  {restored}",
    ]
