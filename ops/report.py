"""Human and JSON output for the audit."""

from __future__ import annotations

import json
from collections import Counter

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ledger.audit import AuditReport
from signing.keys import b64encode


def audit_summary(report: AuditReport) -> dict[str, object]:
    state = report.state
    obligations = Counter(getattr(row, "status", "?") for row in state.obligations.rows())
    return {
        "ok": report.ok,
        "size": report.size,
        "root": b64encode(report.root),
        "checkpoint_size": report.checkpoint_size,
        "cosigned_by": report.cosigned_by,
        "witnesses_declared": report.witnesses_declared,
        "members": len(state.members),
        "obligations": dict(sorted(obligations.items())),
        "findings": [finding.wire() for finding in report.findings],
    }


def print_audit(report: AuditReport, as_json: bool) -> None:
    summary = audit_summary(report)
    if as_json:
        typer.echo(json.dumps(summary, ensure_ascii=False, sort_keys=True))
        return
    console = Console()
    table = Table(title="Audit", show_header=False)
    table.add_row("entries", str(report.size))
    table.add_row("root", str(summary["root"]))
    table.add_row("checkpoint size", str(report.checkpoint_size))
    table.add_row("cosigned by regions", ", ".join(report.cosigned_by) or "none")
    # Every witness the log declared is required; show them so a shortfall is visible.
    table.add_row("witnesses declared", ", ".join(report.witnesses_declared) or "none")
    table.add_row("members", str(summary["members"]))
    table.add_row("obligations", json.dumps(summary["obligations"]))
    console.print(table)
    if report.ok:
        console.print("[bold green]audit passed[/]: every check holds")
        return
    for finding in report.findings:
        # Findings quote the audited data: print it literally, never as markup.
        console.print(f"[red]finding[/] {escape(str(finding))}", highlight=False, soft_wrap=True)
    console.print(f"[bold red]audit failed[/]: {len(report.findings)} finding(s)")


def _yuan(amount_fen: int) -> str:
    whole, cents = divmod(amount_fen, 100)
    return f"¥{whole:,}.{cents:02d}"


def print_nights(summaries: list[dict[str, object]]) -> None:
    """The nights closed (or found closed), one row each."""
    console = Console()
    if not summaries:
        console.print("no business day is due")
        return
    table = Table(title="Nights")
    for name in ("day", "seq", "obligations", "gross", "net", "reduction", "instructions"):
        table.add_column(name, justify="left" if name == "day" else "right")
    table.add_column("overdue", justify="right")
    table.add_column("appended")
    for night in summaries:
        permille = int(str(night["reduction_permille"]))
        table.add_row(
            str(night["day"]),
            str(night["seq"]),
            f"{night['obligations']:,}",
            _yuan(int(str(night["gross_fen"]))),
            _yuan(int(str(night["net_fen"]))),
            f"{permille // 10}.{permille % 10} %",
            f"{night['instructions']:,}",
            f"{night['overdue']:,}",
            "yes" if night["appended"] else "no (closed before)",
        )
    console.print(table)
