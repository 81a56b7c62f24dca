"""The demo's figures, read back from the exported log and the audit's replayed state,
and the tables that print them."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from ledger.audit import AuditReport
from ledger.export import ENTRIES_FILE, REPORTS_DIR
from ledger.rows import EndorsementRow, MemberRow, ObligationRow
from ops.config import AllianceConfig
from ops.demo.catalogue import REGION_SHORT, yuan
from ops.demo.nightly_summary import (
    Nights,
    credit_cases,
    credit_table,
    nights_table,
    overdue_story,
)
from ops.demo.stage import DAY_ZERO
from signing.keys import b64encode

OBLIGATION_STATUSES = ("pending", "effective", "held", "void")


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
    nights: Nights = field(default_factory=Nights)
    story: list[str] = field(default_factory=list)  # the overdue settlement, step by step
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
    for member in state.members.rows():
        if isinstance(member, MemberRow):
            regions[member.region].members += 1
            member_region[member.id] = member.region
    kinds: Counter[str] = Counter()
    nights = Nights()
    restorations: dict[int, dict[str, Any]] = {}
    with (directory / ENTRIES_FILE).open("rb") as lines:
        for line in lines:
            record = json.loads(line)
            entry = record["entry"]
            kinds[entry["kind"]] += 1
            nights.note(record, directory / REPORTS_DIR)
            if entry["kind"] == "credit.restored":
                restorations[int(record["seq"])] = entry["body"]
            if entry["kind"] == "return.recorded":
                figures = regions[member_region[entry["signer"]]]
                figures.returns += 1
                figures.refunded_fen += int(entry["body"]["refund_fen"])
                seller = member_region[entry["body"]["receipt"]["merchant"]]
                figures.cross_region += seller != member_region[entry["signer"]]
    for endorsement in state.endorsements.rows():
        if isinstance(endorsement, EndorsementRow):
            if endorsement.decision == "approve":
                regions[endorsement.region].approved += 1
            else:
                regions[endorsement.region].rejected += 1
    obligations = dict.fromkeys(OBLIGATION_STATUSES, (0, 0))
    for obligation in state.obligations.rows():
        if isinstance(obligation, ObligationRow):
            count, amount = obligations.get(obligation.status, (0, 0))
            obligations[obligation.status] = (count + 1, amount + obligation.amount_fen)
    root = b64encode(report.root)
    nights.trim(DAY_ZERO.date())
    nights.cases = credit_cases(state, restorations)
    story = overdue_story(state, nights.cases, directory / REPORTS_DIR)
    return Summary(
        kinds,
        obligations,
        regions,
        refused,
        report.size,
        root,
        report.cosigned_by,
        nights,
        story,
    )


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
    console.print(nights_table(summary.nights))
    console.print(credit_table(summary.nights.cases))
    if summary.story:
        console.print("[bold]An overdue settlement, from the log[/]")
        for line in summary.story:
            console.print(line, highlight=False)
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
