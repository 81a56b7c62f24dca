"""`alliance demo` end to end, at a small size: audit, determinism, key files, summary."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ledger.audit import audit_directory
from ledger.export import ENTRIES_FILE
from ledger.rows import KeyRow
from ops.cli import app
from ops.demo import DemoOutcome, Schedule, run_demo, simulate, yuan
from ops.demo.stage import DAY_ZERO
from schemas.errors import AlreadyInitialisedError, ConfigError
from signing.keys import PrivateKey, b64encode

DAYS = 2
MERCHANTS = 24


@dataclass(frozen=True)
class Run:
    db_url: str
    out: Path
    keys: Path
    outcome: DemoOutcome


def _run(base: Path, seed: int, *, keys: bool = False) -> Run:
    base.mkdir(parents=True)
    db_url = f"sqlite:///{base / 'demo.db'}"
    key_dir = base / "keys"
    outcome = simulate(
        db_url,
        days=DAYS,
        merchants=MERCHANTS,
        seed=seed,
        keys=key_dir if keys else None,
        out=base / "export",
    )
    return Run(db_url, base / "export", key_dir, outcome)


@pytest.fixture(scope="module")
def first(tmp_path_factory: pytest.TempPathFactory) -> Run:
    return _run(tmp_path_factory.mktemp("demo") / "first", seed=1, keys=True)


@pytest.fixture(scope="module")
def second(tmp_path_factory: pytest.TempPathFactory) -> Run:
    return _run(tmp_path_factory.mktemp("demo") / "second", seed=1)


def test_the_demo_passes_its_audit(first: Run) -> None:
    report = first.outcome.report
    assert report.ok, [str(finding) for finding in report.findings]
    assert report.cosigned_by == ["31", "32", "33", "34"]
    assert report.size == first.outcome.summary.size == report.checkpoint_size


def test_the_summary_shows_the_alliance_at_work(first: Run) -> None:
    summary = first.outcome.summary
    assert summary.cross_region_returns > 0
    assert summary.rejections > 0
    assert summary.refused.total() > 0
    kinds = summary.kinds
    for kind in ("return.recorded", "advance.paid", "endorsement", "claim.disputed"):
        assert kinds[kind] > 0, kind
    for kind in ("member.suspended", "member.reinstated", "member.keys_changed"):
        assert kinds[kind] == 1, kind
    # two days: notices and an objection; decisions wait for the objection period
    assert (kinds["credit.notice"], kinds["credit.objection"], kinds["credit.penalty"]) == (2, 1, 0)
    assert summary.obligations["pending"] == (0, 0), "every region decided everything"
    assert summary.obligations["void"][0] > 0
    assert summary.obligations["effective"][0] > 0
    members = sum(figures.members for figures in summary.regions.values())
    assert members == MERCHANTS + 3  # the zone fund and two platforms
    assert all(figures.returns > 0 for figures in summary.regions.values())


def test_the_same_seed_gives_the_same_log(first: Run, second: Run) -> None:
    assert second.outcome.summary.root == first.outcome.summary.root
    assert (second.out / ENTRIES_FILE).read_bytes() == (first.out / ENTRIES_FILE).read_bytes()


def test_another_seed_gives_another_log(
    first: Run, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "export"
    db_url = f"sqlite:///{tmp_path / 'other.db'}"
    assert run_demo(db_url, days=DAYS, merchants=MERCHANTS, seed=2, out=out)
    printed = capsys.readouterr().out
    for heading in ("audit passed", "Entries by kind", "Obligations by status", "Regions"):
        assert heading in printed, heading
    assert "Refused by the log" in printed
    assert b64encode(audit_directory(out).root) != first.outcome.summary.root


def test_key_files_are_named_as_design_7_says(first: Run) -> None:
    names = {path.name for path in first.keys.glob("*.pem")}
    state = first.outcome.report.state
    members = [str(key[0]) for key in state.members.rows_by_key]
    expected = {"operator.pem"}
    expected |= {f"region-{code}.pem" for code in ("31", "32", "33", "34")}
    expected |= {f"region-{code}.witness.pem" for code in ("31", "32", "33", "34")}
    expected |= {f"{member}.pem" for member in members}
    assert names == expected


def test_the_saved_key_of_a_rotated_member_is_its_current_key(first: Run) -> None:
    state = first.outcome.report.state
    rotated = [
        row.principal
        for row in state.principal_keys.rows()
        if isinstance(row, KeyRow) and row.until_seq is not None
    ]
    assert len(rotated) == 1
    saved = PrivateKey.load(first.keys / f"{rotated[0]}.pem")
    assert state.current_keys[rotated[0]] == {saved.key_id}


def test_the_demo_refuses_a_database_that_holds_a_ledger(first: Run, tmp_path: Path) -> None:
    with pytest.raises(AlreadyInitialisedError, match="already holds a ledger"):
        simulate(first.db_url, days=1, merchants=MERCHANTS, out=tmp_path / "export")


def test_a_single_day_at_the_smallest_size_still_audits(tmp_path: Path) -> None:
    outcome = simulate(f"sqlite:///{tmp_path / 'one.db'}", days=1, merchants=8, out=tmp_path / "x")
    assert outcome.report.ok, [str(finding) for finding in outcome.report.findings]
    assert outcome.summary.kinds["credit.notice"] == 1  # day 0's rejection; no dispute resolved
    assert outcome.summary.kinds["member.reinstated"] == 1


@pytest.fixture(scope="module")
def ten_days(tmp_path_factory: pytest.TempPathFactory) -> DemoOutcome:
    base = tmp_path_factory.mktemp("ten")
    return simulate(f"sqlite:///{base / 'ten.db'}", days=10, merchants=8, out=base / "x")


def test_ten_days_tell_the_credit_story_from_notice_to_restoration(
    ten_days: DemoOutcome,
) -> None:
    """A refused return (proved by its region's rejection), a false claim (proved by an
    upheld dispute) and an overdue settlement (proved by the night listing it) go through
    notice, objection (the false claim's and the overdue debtor's), decision after the
    objection period, and restoration once the cure is logged (a false claim waits a
    year)."""
    outcome = ten_days
    assert outcome.report.ok, [str(finding) for finding in outcome.report.findings]
    state = outcome.report.state
    penalties = {row.rule: row for row in state.penalties.rows()}
    assert sorted(penalties) == ["false_claim", "overdue_settlement", "refused_return"]
    for row in penalties.values():
        notice = state.credit_notices.get(row.notice)
        assert notice is not None and notice.decision_seq == row.seq
        assert row.issued >= notice.objection_until
    false_claim = state.credit_notices.get(penalties["false_claim"].notice)
    assert false_claim is not None and false_claim.objection_seq is not None
    assert penalties["false_claim"].measure == "warning"  # lighter once the member was heard
    assert penalties["refused_return"].restored_seq is not None
    assert penalties["false_claim"].restored_seq is None
    assert penalties["overdue_settlement"].restored_seq is not None
    assert outcome.summary.kinds["credit.restored"] == 2


def test_ten_days_close_every_night_and_settle_it(ten_days: DemoOutcome) -> None:
    """Every day of the run is closed and approved by every region (the enrolment weeks'
    nights too), its instructions are paid and confirmed, and the summary shows it."""
    state = ten_days.report.state
    business = [(DAY_ZERO.date() + timedelta(days=n)).isoformat() for n in range(10)]
    assert set(business) <= set(state.night_of_day)
    assert all(row.status == "approved" for row in state.nights.rows())
    figures = ten_days.summary.nights.days
    assert sorted(figures) == business and ten_days.summary.nights.empty_before == 31
    assert all(day.closed and day.included > 0 for day in figures.values())
    assert all(day.net_fen <= day.gross_fen for day in figures.values())
    assert ten_days.summary.kinds["settlement.paid"] > 0
    assert ten_days.summary.kinds["settlement.confirmed"] > 0


def test_the_overdue_penalty_is_restored_after_the_cure(ten_days: DemoOutcome) -> None:
    """The one instruction left unpaid is listed overdue by every night after its due
    date until it is paid; the notice cites such a night, and the restoration cites the
    confirmation that discharged it, logged after the decision."""
    state = ten_days.report.state
    listed = {key: value for key, value in state.overdue_listed.items() if value}
    assert listed, "at least one instruction is listed overdue"
    [instruction] = {item for items in listed.values() for item in items}
    penalty = next(row for row in state.penalties.rows() if row.rule == "overdue_settlement")
    evidence = [
        row.evidence for row in state.notice_evidence.rows() if row.notice == penalty.notice
    ]
    assert [(seq, penalty.member) in listed for seq in evidence] == [True]
    row = state.instructions.get(*instruction)
    assert row is not None and row.confirmed_fen == row.amount_fen
    cure = state.last_confirmation[instruction]
    assert penalty.seq < cure < (penalty.restored_seq or 0)
    story = ten_days.summary.story
    assert any("listed overdue by the nights of" in line for line in story)
    assert story[-1].strip() == f"restored at seq {penalty.restored_seq} citing confirmation {cure}"


def test_too_small_a_demo_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        simulate(f"sqlite:///{tmp_path / 'tiny.db'}", days=1, merchants=3, out=tmp_path / "x")


def test_schedule_fits_any_length() -> None:
    assert (Schedule(1).suspend_day, Schedule(1).reinstate_day) == (0, None)
    assert (Schedule(7).notice_day, Schedule(2).notice_day, Schedule(1).notice_day) == (1, 1, 0)


@pytest.mark.parametrize(
    ("fen", "text"),
    [(0, "¥0.00"), (5, "¥0.05"), (123_456_789, "¥1,234,567.89"), (-1_050, "-¥10.50")],
)
def test_yuan_formats_integer_fen(fen: int, text: str) -> None:
    assert yuan(fen) == text


def test_a_region_witness_runs_from_the_demo_keys_alone(first: Run) -> None:
    """The demo leaves trust.json beside the keys, so a region's witness (or node) can be
    run afterwards with nothing but its key file."""
    assert (first.keys / "trust.json").read_bytes() == (first.out / "trust.json").read_bytes()
    key = first.keys / "region-31.witness.pem"
    result = CliRunner().invoke(
        app, ["witness", "--region", "31", "--key", str(key), "--db", first.db_url]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["region"] == "31"


def test_the_demo_runs_unchanged_with_five_regions(tmp_path: Path) -> None:
    """Regions come from the configuration, not from code (issue 7 §6): with Hunan's
    configuration its regulator enrols members, endorses, approves nights and cosigns."""
    config = Path(__file__).resolve().parents[2] / "docs" / "hunan.json"
    outcome = simulate(
        f"sqlite:///{tmp_path / 'five.db'}",
        days=2,
        merchants=30,
        out=tmp_path / "export",
        config_path=config,
    )
    report = outcome.report
    assert report.ok, report.findings
    assert report.cosigned_by == ["31", "32", "33", "34", "43"]
    state = report.state
    assert any(member.region == "43" for member in state.members.rows())
    nights = state.nights.rows()
    nights = list(nights)
    assert nights and all(night.status == "approved" for night in nights)
    decided = {row.region for row in state.endorsements.rows() if row.target == nights[-1].seq}
    assert decided == {"31", "32", "33", "34", "43"}


def test_a_region_the_catalogue_has_no_places_for_is_a_config_error(tmp_path: Path) -> None:
    config = json.loads((Path(__file__).resolve().parents[2] / "docs" / "hunan.json").read_text())
    config["regions"].append({"code": "44", "name": "广东省市场监督管理局"})
    path = tmp_path / "six.json"
    path.write_text(json.dumps(config, ensure_ascii=False), encoding="utf-8")
    with pytest.raises(ConfigError, match="no places in region 44"):
        simulate(f"sqlite:///{tmp_path / 'six.db'}", days=1, merchants=8, config_path=path)
