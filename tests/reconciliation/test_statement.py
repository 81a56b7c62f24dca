"""A member's statement (`alliance statement`), and `alliance reconcile` from the CLI."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ops.cli import app
from reconciliation.nightly import close_due, verified_night
from reconciliation.report import InstructionProof, verify_instruction
from reconciliation.statement import statement, statement_csv, yuan
from schemas.errors import NotFoundError, VerificationError
from signing.keys import b64decode
from tests.conftest import Alliance
from tests.reconciliation.nights import Town, make_town, sale, to_next_day


@pytest.fixture
def town(alliance: Alliance) -> Town:
    return make_town(alliance)


def night(town: Town) -> None:
    sale(town, town.seller, town.buyer, "R-1", 6_000)
    sale(town, town.buyer, town.third, "R-2", 2_550)
    to_next_day(town.alliance)
    close_due(town.alliance.ledger)


def test_yuan_is_exact_from_integers() -> None:
    assert [yuan(v) for v in (0, 5, 100, 123_456, -2_550)] == [
        "0.00",
        "0.05",
        "1.00",
        "1234.56",
        "-25.50",
    ]


def test_a_statement_lists_the_members_obligations_totals_and_proven_instructions(
    town: Town,
) -> None:
    night(town)
    result = statement(town.alliance.ledger, town.buyer, town.day)
    wire = result.wire()
    assert [
        (o["kind"], o["counterparty"], o["direction"], o["amount"]) for o in wire["obligations"]
    ] == [
        ("return", town.seller, "receivable", "60.00"),
        ("return", town.third, "payable", "25.50"),
    ]
    assert (wire["receivable"], wire["payable"], wire["net"]) == ("60.00", "25.50", "34.50")
    [instruction] = wire["instructions"]
    assert (instruction["payer"], instruction["payee"]) == (town.seller, town.buyer)
    # Anyone holding the night's entry checks the proof on its own.
    body = verified_night(town.alliance.ledger, town.day).body
    proof = instruction.pop("proof")
    parsed = InstructionProof(
        proof["index"], proof["tree_size"], tuple(b64decode(h) for h in proof["hashes"])
    )
    verify_instruction(body, instruction, parsed)
    instruction["amount_fen"] += 1
    with pytest.raises(VerificationError):
        verify_instruction(body, instruction, parsed)


def test_the_csv_opens_in_excel_with_the_chinese_intact(town: Town) -> None:
    night(town)
    text = statement_csv(statement(town.alliance.ledger, town.seller, town.day))
    assert text.startswith("\ufeff对账日 day,")
    assert "应付合计 payable,60.00\r\n" in text
    assert "净额 net,-60.00\r\n" in text


def test_a_member_without_a_position_gets_a_clear_error(town: Town) -> None:
    night(town)
    stranger = town.alliance.new_uscc("34")
    with pytest.raises(NotFoundError, match="has no position"):
        statement(town.alliance.ledger, stranger, town.day)


def test_the_cli_closes_the_due_days_once_and_prints_statements(
    town: Town, db_url: str, tmp_path: Path
) -> None:
    sale(town, town.seller, town.buyer, "R-1", 6_000)
    keys = tmp_path / "keys"
    town.alliance.ring.save(keys)
    runner = CliRunner()
    base = ["--db", db_url, "--keys", str(keys)]
    first = runner.invoke(app, ["reconcile", *base, "--json"])
    assert first.exit_code == 0, first.output
    nights = json.loads(first.output)
    assert nights[0]["day"] == town.day.isoformat() and nights[0]["appended"]
    days = [n["day"] for n in nights]
    assert days == [(town.day + timedelta(days=i)).isoformat() for i in range(len(days))]
    again = runner.invoke(app, ["reconcile", *base, "--day", town.day.isoformat(), "--json"])
    assert again.exit_code == 0, again.output
    [same] = json.loads(again.output)
    assert (same["seq"], same["appended"]) == (nights[0]["seq"], False)
    csv_run = runner.invoke(
        app,
        [
            "statement",
            *base,
            "--member",
            town.buyer,
            "--day",
            town.day.isoformat(),
            "--format",
            "csv",
        ],
    )
    assert csv_run.exit_code == 0 and csv_run.output.startswith("\ufeff")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["reconcile", "--day", "2026-02-31"], "--day must be a date YYYY-MM-DD"),
        (["statement", "--member", "X", "--day", "yesterday"], "--day must be a date"),
        (["statement", "--member", "X", "--day", "2026-11-23", "--format", "xls"], "json or csv"),
    ],
)
def test_cli_mistakes_are_one_line_errors(
    town: Town, db_url: str, tmp_path: Path, args: list[str], message: str
) -> None:
    keys = tmp_path / "keys"
    town.alliance.ring.save(keys)
    result = CliRunner().invoke(app, [*args, "--db", db_url, "--keys", str(keys)])
    assert result.exit_code == 1
    assert message in result.output and "Traceback" not in result.output
