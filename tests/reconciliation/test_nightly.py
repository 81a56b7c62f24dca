"""The nightly job and the settlement kinds on a real log, on both backends: cutoff,
eligibility, exactly once, in order, regions approving or voiding a night, paying and
confirming, overdue, reversal after settlement, and the stored report checked against
its entry."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from ledger import store
from ledger.audit import audit_directory
from ledger.calendar import local_date
from ledger.kinds.settlement import escalations, night_report
from ops.service import run_endorse, trust_from_ledger
from ops.world import entry_time
from reconciliation.nightly import _signed_night, close_day, close_due, due_days, verified_night
from reconciliation.report import closed_body
from schemas.canonical import canonical
from schemas.errors import PolicyError, TamperedError
from tests.conftest import Alliance
from tests.ledger.builders import one_item_return
from tests.reconciliation.nights import (
    Town,
    approve,
    approve_night,
    closed,
    confirm,
    make_town,
    night_of,
    pay,
    sale,
    submit,
    to_next_day,
)


@pytest.fixture
def town(alliance: Alliance) -> Town:
    return make_town(alliance)


# --- closing ------------------------------------------------------------------------------


def test_a_night_nets_the_effective_returns_of_its_day(town: Town) -> None:
    first = sale(town, town.seller, town.buyer, "R-1", 6_000)
    second = sale(town, town.buyer, town.third, "R-2", 2_500)
    pending = submit(  # never approved: not effective, not included
        town,
        "return.recorded",
        town.buyer,
        one_item_return(town.seller, entry_time(town.alliance.clock()), number="R-3"),
    )
    to_next_day(town.alliance)
    [night] = close_due(town.alliance.ledger)
    assert night.appended and night.day == town.day
    report = night.body
    assert report["totals"]["obligations"] == 2
    assert report["totals"]["gross_fen"] == 8_500
    stored = night_of(town)
    document = json.loads(stored.report)
    assert document["included"] == [first, second]
    assert pending not in document["included"]
    assert [(p["member"], p["net_fen"]) for p in document["positions"]] == sorted(
        [(town.seller, -6_000), (town.buyer, 3_500), (town.third, 2_500)]
    )
    assert [(i["payer"], i["payee"], i["amount_fen"]) for i in document["instructions"]] == [
        (town.seller, town.buyer, 3_500),
        (town.seller, town.third, 2_500),
    ]
    assert document["cutoff"]["tree_size"] == night.seq  # nothing logged since midnight


def test_running_the_job_again_appends_nothing_and_returns_the_same_night(town: Town) -> None:
    sale(town, town.seller, town.buyer, "R-1", 6_000)
    to_next_day(town.alliance)
    [first] = close_due(town.alliance.ledger)
    size = town.alliance.ledger.size()
    again = close_day(town.alliance.ledger, town.day)
    assert not again.appended
    assert (again.seq, again.report, again.body) == (first.seq, first.report, first.body)
    assert close_due(town.alliance.ledger) == []
    assert town.alliance.ledger.size() == size


def test_a_day_is_never_closed_before_its_cutoff(town: Town) -> None:
    sale(town, town.seller, town.buyer, "R-1", 6_000)
    size = town.alliance.ledger.size()
    assert due_days(town.alliance.ledger.state(), town.alliance.clock()) == []
    with pytest.raises(PolicyError, match="cannot be closed before 00:00 on the next day"):
        close_day(town.alliance.ledger, town.day)
    assert town.alliance.ledger.size() == size


def test_missed_nights_close_in_order_and_empty_days_too(town: Town) -> None:
    sale(town, town.seller, town.buyer, "R-1", 6_000)
    alliance = town.alliance
    for _ in range(3):
        to_next_day(alliance, minutes=600)
    later = sale(town, town.seller, town.buyer, "R-2", 1_000)  # on day + 3
    to_next_day(alliance)
    nights = close_due(alliance.ledger)
    assert [night.day for night in nights] == [town.day + timedelta(days=n) for n in range(4)]
    assert [night.body["totals"]["obligations"] for night in nights] == [1, 0, 0, 1]
    document = json.loads(nights[3].report)
    assert document["included"] == [later]


def test_a_later_day_is_not_closed_before_an_earlier_one(town: Town) -> None:
    to_next_day(town.alliance)
    to_next_day(town.alliance)
    with pytest.raises(PolicyError, match="is not closed yet: nights close in order"):
        close_day(town.alliance.ledger, town.day + timedelta(days=1))


def test_an_obligation_effective_after_the_cutoff_waits_for_the_next_night(town: Town) -> None:
    purchased = entry_time(town.alliance.clock())
    body = one_item_return(town.seller, purchased, number="R-1", refund_fen=700)
    seq = submit(town, "return.recorded", town.buyer, body)
    approve(town, seq, "31")
    to_next_day(town.alliance, minutes=5)
    approve(town, seq, "32")  # its last approval after midnight
    nights = close_due(town.alliance.ledger)
    assert nights[0].body["totals"]["obligations"] == 0
    to_next_day(town.alliance)
    [second] = close_due(town.alliance.ledger)
    assert json.loads(second.report)["included"] == [seq]


def test_a_held_obligation_is_left_out_until_its_dispute_ends(town: Town) -> None:
    seq = sale(town, town.seller, town.buyer, "R-1", 6_000)
    submit(town, "claim.disputed", town.seller, {"target": seq, "reason": "not_our_sale"})
    to_next_day(town.alliance)
    [night] = close_due(town.alliance.ledger)
    assert night.body["totals"]["obligations"] == 0


def test_a_tampered_stored_report_is_refused(town: Town) -> None:
    sale(town, town.seller, town.buyer, "R-1", 6_000)
    to_next_day(town.alliance)
    [night] = close_due(town.alliance.ledger)
    with town.alliance.engine.begin() as connection:
        # An attacker with an INSERT grant cannot update; it plants a report of another day.
        store.insert_reports(
            connection, [((town.day - timedelta(days=1)).isoformat(), night.seq + 100, b"{}")]
        )
    with pytest.raises(TamperedError):
        verified_night(town.alliance.ledger, town.day - timedelta(days=1))


def test_the_report_table_is_append_only(town: Town) -> None:
    sale(town, town.seller, town.buyer, "R-1", 6_000)
    to_next_day(town.alliance)
    close_due(town.alliance.ledger)
    with (
        pytest.raises(DBAPIError, match="append-only"),
        town.alliance.engine.begin() as connection,
    ):
        connection.execute(text("UPDATE night_reports SET seq = seq + 1"))


# --- regions, paying, confirming ---------------------------------------------------------


def test_instructions_are_payable_only_once_every_region_approved(town: Town) -> None:
    night = closed(town)
    with pytest.raises(PolicyError, match="not yet approved by every region"):
        pay(town, night, 1_000)
    approve(town, night, "31", "32", "33")
    with pytest.raises(PolicyError, match="not yet approved by every region"):
        pay(town, night, 1_000)
    approve(town, night, "34")
    assert town.alliance.ledger.state().nights.get(night).status == "approved"  # type: ignore[union-attr]
    pay(town, night, 1_000)


def test_paying_in_parts_and_confirming_discharges_the_instruction(town: Town) -> None:
    night = closed(town)
    approve_night(town, night)
    pay(town, night, 4_000)
    with pytest.raises(PolicyError, match="confirms more than was paid"):
        confirm(town, night, 4_001)
    confirm(town, night, 4_000)
    with pytest.raises(PolicyError, match="pays beyond the instruction"):
        pay(town, night, 2_001)
    pay(town, night, 2_000)
    confirm(town, night, 2_000)
    state = town.alliance.ledger.state()
    row = state.instructions.get(night, 0)
    assert row is not None and (row.paid_fen, row.confirmed_fen) == (6_000, 6_000)
    assert (night, 0) not in state.undischarged
    with pytest.raises(PolicyError, match="already discharged"):
        confirm(town, night, 1)


def test_only_the_payer_pays_and_only_the_payee_confirms(town: Town) -> None:
    night = closed(town)
    approve_night(town, night)
    with pytest.raises(PolicyError, match="is paid by"):
        pay(town, night, 1_000, signer=town.third)
    pay(town, night, 1_000)
    with pytest.raises(PolicyError, match="is confirmed by its payee"):
        confirm(town, night, 1_000, signer=town.seller)


def test_a_rejected_night_is_void_and_its_obligations_go_to_the_next(town: Town) -> None:
    night = closed(town)
    approve(town, night, "31")
    body = {"targets": [night], "decision": "reject", "reason": "report_mismatch"}
    submit(town, "endorsement", "region:32", body)
    state = town.alliance.ledger.state()
    assert state.nights.get(night).status == "void"  # type: ignore[union-attr]
    with pytest.raises(PolicyError, match="is void"):
        pay(town, night, 1_000)
    to_next_day(town.alliance)
    [next_night] = close_due(town.alliance.ledger)
    assert next_night.body["totals"]["obligations"] == 1


def test_an_unpaid_instruction_is_overdue_in_later_reports(town: Town) -> None:
    night = closed(town)
    approve_night(town, night)
    due = town.alliance.ledger.state().instructions.get(night, 0).due  # type: ignore[union-attr]
    pay(town, night, 1_000)
    confirm(town, night, 1_000)
    while local_date(town.alliance.clock()) <= date.fromisoformat(due) + timedelta(days=1):
        to_next_day(town.alliance)
    nights = close_due(town.alliance.ledger)
    document = json.loads(nights[-1].report)
    [overdue] = document["overdue"]
    assert overdue["day"] == town.day.isoformat() and overdue["index"] == 0
    assert overdue["amount_fen"] == 5_000 and overdue["payer"] == town.seller
    assert overdue["days"] == (date.fromisoformat(document["day"]) - date.fromisoformat(due)).days
    assert nights[-1].body["totals"]["overdue"] == 1
    credit = town.alliance.ledger.state().credit.get(town.seller)
    assert credit is not None and credit.overdue_settlements == 1  # counted once
    assert json.loads(nights[0].report)["overdue"] == []  # not before due


def test_an_upheld_dispute_after_settlement_reverses_the_claim(town: Town) -> None:
    seq = sale(town, town.seller, town.buyer, "R-1", 6_000)
    to_next_day(town.alliance)
    [night] = close_due(town.alliance.ledger)
    approve_night(town, night.seq)
    dispute = submit(town, "claim.disputed", town.seller, {"target": seq, "reason": "not_our_sale"})
    body = {"dispute": dispute, "outcome": "upheld"}
    resolution = submit(town, "dispute.resolved", "region:31", body, "region:32")
    state = town.alliance.ledger.state()
    claim = state.obligations.get(seq)
    reversal = state.obligations.get(resolution)
    assert claim is not None and claim.status == "effective" and claim.reconciled == night.seq
    assert reversal is not None and (reversal.kind, reversal.amount_fen) == ("reversal", 6_000)
    assert (reversal.debtor, reversal.creditor) == (town.buyer, town.seller)
    to_next_day(town.alliance)
    [after] = close_due(town.alliance.ledger)
    assert json.loads(after.report)["included"] == [resolution]


# --- export and audit ------------------------------------------------------------------


def exported(town: Town, tmp_path: Path) -> Path:
    night = closed(town)
    approve_night(town, night)
    pay(town, night, 6_000)
    confirm(town, night, 6_000)
    to_next_day(town.alliance)
    close_due(town.alliance.ledger)
    town.alliance.cosign()
    return town.alliance.ledger.export(tmp_path / "export").directory


def test_the_auditor_recomputes_every_night_byte_for_byte(town: Town, tmp_path: Path) -> None:
    directory = exported(town, tmp_path)
    names = sorted(path.name for path in (directory / "reconciliations").iterdir())
    assert names == [f"{town.day + timedelta(days=n)}.json" for n in range(2)]
    report = audit_directory(directory)
    assert report.ok, report.findings
    assert len(report.state.nights.rows()) == 2


def test_the_audit_finds_an_altered_report(town: Town, tmp_path: Path) -> None:
    directory = exported(town, tmp_path)
    path = directory / "reconciliations" / f"{town.day}.json"
    document = json.loads(path.read_bytes())
    document["instructions"][0]["amount_fen"] += 1
    path.write_bytes(canonical(document))
    report = audit_directory(directory)
    assert [finding.code for finding in report.findings] == ["report-mismatch"]


def test_the_audit_finds_a_forged_or_missing_night(town: Town, tmp_path: Path) -> None:
    directory = exported(town, tmp_path)
    folder = directory / "reconciliations"
    (folder / "2026-01-01.json").write_bytes(b"{}")
    (folder / f"{town.day}.json").unlink()
    codes = sorted(finding.code for finding in audit_directory(directory).findings)
    assert codes == ["report-extra", "report-missing"]


def test_every_region_node_recomputes_the_night_and_approves_it(town: Town) -> None:
    """Each node follows the log from scratch, replays the night against its own
    recomputation (and the cutoff root of the tree it hashed) and approves it."""
    night = closed(town)
    alliance = town.alliance
    trust = trust_from_ledger(alliance.ledger)
    for region in ("31", "32", "33", "34"):
        key = alliance.ring.keys[f"region:{region}"]
        outcome = run_endorse(alliance.ledger, region, key, trust, alliance.clock())
        assert outcome["approved"] == 1 and outcome["queued"] == []
    row = alliance.ledger.state().nights.get(night)
    assert row is not None and row.status == "approved"


def test_a_payment_left_unconfirmed_is_escalated_to_the_payees_region(town: Town) -> None:
    night = closed(town)
    approve_night(town, night)
    paid = pay(town, night, 6_000)
    state = town.alliance.ledger.state
    assert escalations(state(), town.alliance.clock() + timedelta(days=3)) == []
    [late] = escalations(state(), town.alliance.clock() + timedelta(days=4, minutes=1))
    assert (late.payee, late.region, late.unconfirmed_fen, late.paid_seq, late.days) == (
        town.buyer,
        "32",
        6_000,
        paid,
        4,
    )
    confirm(town, night, 6_000)
    assert escalations(state(), town.alliance.clock() + timedelta(days=9)) == []


def test_a_night_closed_in_the_same_batch_as_other_entries(town: Town) -> None:
    """The writer reads the cutoff's root before the batch's log rows stream to the
    database (a COPY in progress holds the connection on PostgreSQL)."""
    sale(town, town.seller, town.buyer, "R-1", 6_000)
    to_next_day(town.alliance)
    alliance = town.alliance
    ledger = alliance.ledger
    state = ledger.state()
    cutoff = state.size  # the first entry after midnight is the batch's first
    body = closed_body(night_report(state, town.day, cutoff, ledger.root_at(cutoff)))
    purchased = entry_time(alliance.clock())
    later = one_item_return(town.seller, purchased, number="R-2", refund_fen=100)
    documents = [
        alliance.factory.signed(
            alliance.ring, "return.recorded", town.buyer, later, alliance.clock()
        ),
        _signed_night(ledger, body, alliance.clock(), alliance.factory.new_id),
    ]
    results = ledger.submit_many(documents)
    assert [getattr(result, "seq", result) for result in results] == [cutoff, cutoff + 1]
    assert verified_night(ledger, town.day).body["cutoff"]["tree_size"] == cutoff
