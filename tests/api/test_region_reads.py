"""The role reads of issue 9 beyond obligations: a member's statement of a night, and
each region's work lists (pending endorsements, disputes awaiting a decision, overdue
instructions). Each allowed reader served, every other refused 403 and counted."""

from __future__ import annotations

from datetime import date, timedelta

from fastapi.testclient import TestClient

from ledger.projections import FIELD_NAMES
from ops.world import entry_time
from reconciliation.nightly import close_due
from tests.api.support import assert_problem, signed_get
from tests.api.support import submit as submit_entry
from tests.conftest import Alliance
from tests.ledger.builders import one_item_return
from tests.reconciliation.nights import make_town, one_closed_night, sale, submit, to_next_day


def _refused(client: TestClient, alliance: Alliance, path: str, *principals: str) -> None:
    for principal in principals:
        assert_problem(signed_get(client, alliance, principal, path), 403, "forbidden")
    assert_problem(client.get(path), 403, "forbidden")  # unsigned: the public


def _refused_count(client: TestClient) -> float:
    for line in client.get("/metrics").text.splitlines():
        if line.startswith("alliance_refused_reads_total "):
            return float(line.split()[1])
    return 0.0


def test_a_statement_is_read_by_the_member_its_region_and_the_operator(
    alliance: Alliance, client: TestClient
) -> None:
    town, night = one_closed_night(alliance)
    path = f"/v1/members/{town.seller}/statement?day={town.day.isoformat()}"
    for principal in (town.seller, "region:31", "operator"):
        response = signed_get(client, alliance, principal, path)
        assert response.status_code == 200, (principal, response.text)
        body = response.json()
        assert (body["member"], body["reconciliation"]) == (town.seller, night.seq)
        assert body["payable_fen"] == 3_000 and body["net_fen"] == -3_000
        assert body["instructions"] and all("proof" in i for i in body["instructions"])
    before = _refused_count(client)
    _refused(client, alliance, path, town.buyer, "region:32")
    assert _refused_count(client) == before + 3
    no_night = f"/v1/members/{town.seller}/statement?day={date(2020, 1, 1).isoformat()}"
    assert_problem(signed_get(client, alliance, "operator", no_night), 404, "not-found")


def test_a_region_reads_its_pending_endorsements(alliance: Alliance, client: TestClient) -> None:
    town = make_town(alliance)
    purchased = entry_time(alliance.clock())
    body = one_item_return(town.seller, purchased, number="P-1", refund_fen=1_000)
    seq = submit(town, "return.recorded", town.buyer, body)
    for region in ("31", "32"):
        path = f"/v1/endorsements/pending?region={region}"
        for principal in (f"region:{region}", "operator"):
            response = signed_get(client, alliance, principal, path)
            assert response.status_code == 200, response.text
            found = response.json()
            assert found["region"] == region
            assert [item["seq"] for item in found["entries"]] == [seq]
    path = "/v1/endorsements/pending?region=31"
    _refused(client, alliance, path, "region:32", town.seller)
    empty = signed_get(client, alliance, "region:33", "/v1/endorsements/pending?region=33")
    assert empty.json()["entries"] == []


def test_disputes_awaiting_a_decision_per_region(alliance: Alliance, client: TestClient) -> None:
    town = make_town(alliance)
    target = sale(town, town.seller, town.buyer, "D-1", 2_000)
    dispute = submit(
        town, "claim.disputed", town.seller, {"target": target, "reason": "not_our_sale"}
    )
    for region in ("31", "32"):
        path = f"/v1/disputes/awaiting?region={region}"
        response = signed_get(client, alliance, f"region:{region}", path)
        assert response.status_code == 200, response.text
        [row] = response.json()["disputes"]
        assert (row["seq"], row["target"], row["debtor"]) == (dispute, target, town.seller)
        assert row["regions"] == ["31", "32"] and row["amount_fen"] == 2_000
    third = signed_get(client, alliance, "operator", "/v1/disputes/awaiting?region=33")
    assert third.json()["disputes"] == []
    _refused(client, alliance, "/v1/disputes/awaiting?region=31", "region:33", town.seller)
    resolved = {"dispute": dispute, "outcome": "dismissed"}
    submit(town, "dispute.resolved", "region:31", resolved, "region:32")
    after = signed_get(client, alliance, "region:31", "/v1/disputes/awaiting?region=31")
    assert after.json()["disputes"] == []


def test_overdue_instructions_per_region(alliance: Alliance, client: TestClient) -> None:
    town = make_town(alliance)
    sale(town, town.seller, town.buyer, "O-1", 4_000)
    to_next_day(alliance)
    [night] = close_due(alliance.ledger)
    instructions = signed_get(
        client, alliance, "operator", f"/v1/members/{town.seller}/statement?day={town.day}"
    ).json()["instructions"]
    due = date.fromisoformat(instructions[0]["due"])
    on_time = signed_get(
        client, alliance, "region:31", f"/v1/instructions/overdue?region=31&day={due}"
    )
    assert on_time.status_code == 200, on_time.text
    assert on_time.json()["instructions"] == []
    late = f"day={due + timedelta(days=1)}"
    for region in ("31", "32"):
        path = f"/v1/instructions/overdue?region={region}&{late}"
        [row] = signed_get(client, alliance, f"region:{region}", path).json()["instructions"]
        assert (row["night"], row["payer"], row["amount_fen"]) == (night.seq, town.seller, 4_000)
        assert row["confirmed_fen"] == 0
        assert list(row) == list(FIELD_NAMES["instructions"])  # an object, in column order
    third = signed_get(client, alliance, "operator", f"/v1/instructions/overdue?region=33&{late}")
    assert third.json()["instructions"] == []
    _refused(client, alliance, f"/v1/instructions/overdue?region=31&{late}", "region:32")
    bad = signed_get(client, alliance, "operator", "/v1/instructions/overdue?region=3x")
    assert_problem(bad, 400, "malformed")


def _adopt(alliance: Alliance, policy: dict[str, object]) -> int:
    regions = [f"region:{region.code}" for region in alliance.config.regions]
    return submit_entry(alliance, "policy.adopted", "operator", policy, *regions)


def test_auditors_declared_in_the_policy_read_as_auditors(
    alliance: Alliance, client: TestClient
) -> None:
    """An auditor's key is accepted once a policy declares it, and refused again from the
    policy that drops it; a key nobody declared never is."""
    auditor = alliance.ring.ensure("auditor-a")
    alliance.ring.ensure("auditor-b")
    path = "/tile/entries/000.p/2"
    assert_problem(signed_get(client, alliance, "auditor-a", path), 401, "bad-signature")
    policy: dict[str, object] = dict(alliance.config.policy)
    declared = {**policy, "auditors": [{"name": "auditor-a", "keys": [auditor.public.wire()]}]}
    _adopt(alliance, declared)
    alliance.clock.advance(seconds=1)
    assert signed_get(client, alliance, "auditor-a", path).status_code == 200
    town = make_town(alliance)
    pending = signed_get(client, alliance, "auditor-a", "/v1/endorsements/pending?region=31")
    assert pending.status_code == 200, pending.text
    assert signed_get(client, alliance, "auditor-a", f"/v1/members/{town.seller}/obligations")
    assert_problem(signed_get(client, alliance, "auditor-b", path), 401, "bad-signature")
    _adopt(alliance, policy)  # the auditor is dropped from this seq on
    alliance.clock.advance(seconds=1)
    assert_problem(signed_get(client, alliance, "auditor-a", path), 401, "bad-signature")
