"""The public lookup (一站式查询): search, a member's page, and the return check, with the
writer's own rules; never an amount, a receipt or a note."""

from __future__ import annotations

import base64
from datetime import date, timedelta

from fastapi.testclient import TestClient

from ledger import merkle
from ledger.calendar import local_date, period_end
from schemas.limits import SEARCH_PAGE_SIZE_MAX
from tests.api.support import assert_problem, busy, enrol, sign
from tests.conftest import Alliance


def test_search_by_uscc_name_or_store_name(alliance: Alliance, client: TestClient) -> None:
    scenario = busy(alliance)
    by_id = client.get("/v1/public/members", params={"q": scenario.seller}).json()
    assert [m["uscc"] for m in by_id["members"]] == [scenario.seller]
    by_name = client.get("/v1/public/members", params={"q": f"member {scenario.buyer}"}).json()
    assert [m["uscc"] for m in by_name["members"]] == [scenario.buyer]
    by_store = client.get("/v1/public/members", params={"q": "store B1"}).json()
    assert [m["uscc"] for m in by_store["members"]] == [scenario.buyer]
    everyone = client.get("/v1/public/members", params={"q": "member", "limit": 2}).json()
    assert len(everyone["members"]) == 2
    wild = client.get("/v1/public/members", params={"q": "%"}).json()
    assert wild["members"] == []  # a LIKE wildcard is a plain character here


def test_search_errors(client: TestClient) -> None:
    assert_problem(client.get("/v1/public/members"), 400, "malformed")
    assert_problem(client.get("/v1/public/members", params={"q": ""}), 400, "malformed")
    assert_problem(client.get("/v1/public/members", params={"q": "   "}), 400, "malformed")
    assert_problem(client.get("/v1/public/members", params={"q": "x" * 65}), 400, "malformed")
    too_many = {"q": "m", "limit": SEARCH_PAGE_SIZE_MAX + 1}
    assert_problem(client.get("/v1/public/members", params=too_many), 400, "malformed")


def test_a_nul_in_the_query_is_refused_on_both_backends(
    alliance: Alliance, client: TestClient
) -> None:
    """A hostile query string with a NUL: PostgreSQL raised (a 500 per request, logged
    with its traceback), SQLite's LIKE matched every member. Both now refuse it."""
    busy(alliance)
    for query in ("\x00", "member\x00x"):
        answer = client.get("/v1/public/members", params={"q": query})
        assert assert_problem(answer, 400, "malformed")["field"] == "q"


def test_member_page(alliance: Alliance, client: TestClient) -> None:
    scenario = busy(alliance)
    response = client.get(f"/v1/public/members/{scenario.seller}")
    assert response.status_code == 200, response.text
    page = response.json()
    assert page["member"]["status"] == "active"
    assert [s["status"] for s in page["status_history"]] == ["active"]
    assert [(s["store_id"], s["open"]) for s in page["stores"]] == [("S1", True), ("S2", True)]
    assert page["commitment"]["return_days"] == 7
    assert page["commitment"]["excluded"] == ["shoes", "toys"]
    assert (page["stars"], page["measure"]) == (4, "warning")
    [measure] = page["measures"]
    assert measure["decision_no"] == "沪联信〔2026〕1号"
    assert (measure["evidence_items"], measure["seq"]) == (1, scenario.penalty)
    counts = page["counts"]
    assert counts["returns_honoured"] == 1  # approved by both regions
    assert counts["returns_accepted"] == 0
    assert counts["advances_recovered"] == 0  # no night has netted it yet
    buyer = client.get(f"/v1/public/members/{scenario.buyer}").json()
    assert buyer["counts"]["returns_accepted"] == 3
    root = alliance.ledger.signed_checkpoint().root
    proven = {p["seq"]: p["kind"] for p in page["proofs"]}
    assert proven[scenario.penalty] == "credit.penalty"
    assert proven[scenario.notice] == "credit.notice"
    assert all(kind.startswith(("member.", "credit.")) for kind in proven.values())
    for item in page["proofs"]:
        proof = item["proof"]
        hashes = [base64.b64decode(h) for h in proof["hashes"]]
        leaf_hash = base64.b64decode(proof["leaf_hash"])
        merkle.verify_inclusion(leaf_hash, item["seq"], page["tree_size"], hashes, root)
    text = response.text
    assert "4321" not in text and "9000" not in text and "R-1" not in text  # no amounts, receipts
    assert "amount" not in text and "refund" not in text


def test_member_page_errors(client: TestClient) -> None:
    assert_problem(client.get("/v1/public/members/91310000MA00000000"), 404, "not-found")
    assert_problem(client.get("/v1/public/members/short"), 400, "malformed")
    assert_problem(client.get("/v1/public/members/91310000MA0000000I"), 400, "malformed")


def _check(client: TestClient, uscc: str, store: str, purchased: date) -> dict[str, object]:
    params = {"uscc": uscc, "store": store, "purchased": purchased.isoformat()}
    response = client.get("/v1/public/check", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


def test_check_within_and_after_the_window(alliance: Alliance, client: TestClient) -> None:
    member = enrol(alliance, "31", stores=[("S1", "310101")], excluded=["toys"])
    today = local_date(alliance.clock())
    answer = _check(client, member, "S1", today)
    policy = alliance.ledger.state().policy
    until = period_end(today, 7, policy.calendar)
    assert answer["returnable"] is True and answer["reason"] == "returnable"
    assert answer["until"] == until.isoformat()
    assert answer["last_day"] == (until.date() - timedelta(days=1)).isoformat()
    assert answer["excluded"] == ["toys"]
    assert "fresh_perishable" in answer["statutory_excluded"]  # type: ignore[operator]
    assert "gold_jewellery" in answer["local_excluded"]  # type: ignore[operator]
    alliance.clock.advance(days=30)
    later = _check(client, member, "S1", today)
    assert (later["returnable"], later["reason"]) == (False, "window-closed")
    assert later["last_day"] == answer["last_day"]


def test_check_before_enrolment_and_at_a_closed_store(
    alliance: Alliance, client: TestClient
) -> None:
    member = enrol(alliance, "31", stores=[("S1", "310101"), ("S2", "310104")])
    today = local_date(alliance.clock())
    before = _check(client, member, "S1", today - timedelta(days=3))
    assert (before["returnable"], before["reason"]) == (False, "not-committed")
    alliance.clock.advance(days=2)
    body = {"member": member, "opened": [], "closed": ["S2"]}
    alliance.ledger.submit(sign(alliance, "member.stores_changed", "region:31", body, member))
    alliance.clock.advance(days=2)
    closed = _check(client, member, "S2", local_date(alliance.clock()))
    assert (closed["returnable"], closed["reason"]) == (False, "store-not-open")
    assert _check(client, member, "S2", today)["returnable"] is True  # bought while open


def test_check_errors(alliance: Alliance, client: TestClient) -> None:
    member = enrol(alliance, "31")
    today = local_date(alliance.clock())
    base = {"uscc": member, "store": "S1", "purchased": today.isoformat()}
    future = base | {"purchased": (today + timedelta(days=1)).isoformat()}
    assert_problem(client.get("/v1/public/check", params=future), 400, "malformed")
    assert_problem(client.get("/v1/public/check", params=base | {"store": "S9"}), 404, "not-found")
    unknown = base | {"uscc": "91310000MA00000000"}
    assert_problem(client.get("/v1/public/check", params=unknown), 404, "not-found")
    bad_date = base | {"purchased": "2026-13-01"}
    assert_problem(client.get("/v1/public/check", params=bad_date), 400, "malformed")
    assert_problem(client.get("/v1/public/check", params={"uscc": member}), 400, "malformed")
