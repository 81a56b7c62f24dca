"""The reconcile bench at a tiny size: the report's shape, the night's determinism and the
baseline's netting, never a speed."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from ops.cli import app
from reconciliation.bench import bench_reconcile, raw_netting, synthetic_night
from reconciliation.netting import Obligation, instructions, positions
from schemas.errors import LimitError, MalformedError
from schemas.identifiers import validate_uscc
from schemas.limits import BENCH_RECONCILE_MEMBERS_MAX, BENCH_RECONCILE_OBLIGATIONS_MAX
from tests.reconciliation.support import DAY

KEYS = {
    "bench",
    "backend",
    "obligations",
    "members",
    "instructions",
    "seconds",
    "raw_seconds",
    "ratio",
    "peak_rss_mb",
}


def test_report_shape() -> None:
    report = bench_reconcile(300, 12)
    assert set(report) == KEYS
    assert (report["bench"], report["backend"]) == ("reconcile", "memory")
    assert (report["obligations"], report["members"]) == (300, 12)
    assert isinstance(report["instructions"], int) and 0 < report["instructions"] <= 11
    for key in ("seconds", "raw_seconds", "ratio", "peak_rss_mb"):
        assert isinstance(report[key], float) and report[key] >= 0, key


def test_night_is_reproducible_and_valid() -> None:
    rows = synthetic_night(500, 7)
    assert rows == synthetic_night(500, 7)
    assert [row[0] for row in rows] == list(range(1, 1000, 2))
    night = [Obligation(*row) for row in rows]  # every row is a valid obligation
    assert {o.kind for o in night} == {"return", "advance"}
    members = {o.debtor for o in night} | {o.creditor for o in night}
    assert len(members) == 7
    assert all(validate_uscc(member) == member for member in members)


def test_raw_baseline_nets_like_ours() -> None:
    rows = synthetic_night(2000, 40)
    ours = instructions(positions(Obligation(*row) for row in rows), DAY, None, 1)
    assert raw_netting(rows) == [(i.payer, i.payee, i.amount_fen) for i in ours]


@pytest.mark.parametrize(
    ("obligations", "members", "error"),
    [
        (0, 10, MalformedError),
        (10, 1, MalformedError),
        (BENCH_RECONCILE_OBLIGATIONS_MAX + 1, 10, LimitError),
        (10, BENCH_RECONCILE_MEMBERS_MAX + 1, LimitError),
    ],
)
def test_refuses_sizes_out_of_range(obligations: int, members: int, error: type[Exception]) -> None:
    with pytest.raises(error):
        synthetic_night(obligations, members)


def test_cli_prints_one_json_line() -> None:
    result = CliRunner().invoke(
        app, ["bench", "reconcile", "--obligations", "50", "--members", "5", "--json"]
    )
    assert result.exit_code == 0, result.output
    (line,) = result.output.splitlines()
    report = json.loads(line)
    assert set(report) == {*KEYS, "machine"}
    assert report["obligations"] == 50


def test_cli_refuses_out_of_range() -> None:
    result = CliRunner().invoke(app, ["bench", "reconcile", "--members", "1"])
    assert result.exit_code == 1
    assert "--members must be at least 2, not 1" in result.output
