"""POST /v1/entries and POST /v1/entries:batch: durable appends, duplicates, per-item
results, caps and back-pressure, every refusal a problem document."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient

from ledger.app import Ledger
from schemas.limits import BATCH_REQUEST_ENTRIES_MAX, SUBMISSION_BYTES_MAX
from tests.api.support import assert_problem, client_for
from tests.conftest import Alliance


def test_one_entry_is_appended_then_answered_as_a_duplicate(
    alliance: Alliance, client: TestClient
) -> None:
    document = alliance.enroll_doc("31")
    first = client.post("/v1/entries", json=document)
    assert first.status_code == 201, first.text
    assert first.headers["location"] == f"/v1/entries/{first.json()['seq']}"
    assert set(first.json()) == {"seq", "leaf_hash"}
    assert alliance.ledger.size() == first.json()["seq"] + 1  # durable when answered
    again = client.post("/v1/entries", json=document)
    assert again.status_code == 200
    assert again.json() == first.json()


def test_a_batch_answers_each_document_in_order(alliance: Alliance, client: TestClient) -> None:
    good = [alliance.enroll_doc("31"), alliance.enroll_doc("32")]
    forged = json.loads(json.dumps(good[1]))
    forged["entry"]["id"] = "00000000-0000-4000-8000-000000000000"  # its signature breaks
    response = client.post(
        "/v1/entries:batch", json={"entries": [good[0], {"x": 1}, forged, good[1]]}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    results = body["results"]
    assert [item.get("seq") for item in results] == [1, None, None, 2]
    assert results[0]["duplicate"] is False
    assert results[1]["type"].endswith("/malformed") and results[1]["status"] == 400
    assert results[2]["status"] in (400, 401)
    assert (body["appended"], body["refused"]) == (2, 2)
    again = client.post("/v1/entries:batch", json={"entries": good}).json()
    assert [(r["seq"], r["duplicate"]) for r in again["results"]] == [(1, True), (2, True)]


def test_refusals_are_problems(alliance: Alliance, client: TestClient) -> None:
    assert_problem(client.post("/v1/entries", content=b"{not json"), 400, "malformed")
    assert_problem(client.post("/v1/entries", content=b"\xff\xfe"), 400, "malformed")
    assert_problem(client.post("/v1/entries", json=[1, 2]), 400, "malformed")
    assert_problem(client.post("/v1/entries", json={"v": 1.5}), 400, "malformed")
    document = alliance.enroll_doc("31")
    document["signatures"] = []
    body = client.post("/v1/entries", json=document)
    assert body.status_code in (400, 401, 422)
    assert body.headers["content-type"].startswith("application/problem+json")
    assert_problem(client.post("/v1/entries:batch", json={"entries": []}), 400, "malformed")
    assert_problem(client.post("/v1/entries:batch", json=[]), 400, "malformed")
    assert_problem(client.get("/v1/entries:batch"), 405, "method-not-allowed")


def test_a_policy_violation_is_422(alliance: Alliance, client: TestClient) -> None:
    document = alliance.enroll_doc("31")
    assert client.post("/v1/entries", json=document).status_code == 201
    member = document["entry"]["body"]["member"]
    again = alliance.factory.signed(
        alliance.ring, "member.enrolled", "region:31", document["entry"]["body"], alliance.clock()
    )
    assert member["id"] == again["entry"]["body"]["member"]["id"]
    assert_problem(client.post("/v1/entries", json=again), 422, "policy-violation")


def test_bodies_are_capped(client: TestClient) -> None:
    big = b"[" + b" " * SUBMISSION_BYTES_MAX + b"]"
    body = assert_problem(client.post("/v1/entries", content=big), 413, "limit-exceeded")
    assert str(SUBMISSION_BYTES_MAX) in body["detail"]
    too_many = {"entries": [{}] * (BATCH_REQUEST_ENTRIES_MAX + 1)}
    assert_problem(client.post("/v1/entries:batch", json=too_many), 413, "limit-exceeded")


def test_a_full_queue_is_503_with_retry_after(alliance: Alliance, client: TestClient) -> None:
    client.app.state.services.admission.limit = 0  # type: ignore[attr-defined]
    response = client.post("/v1/entries", json=alliance.enroll_doc("31"))
    assert_problem(response, 503, "queue-full")
    assert int(response.headers["retry-after"]) >= 1
    batch = client.post("/v1/entries:batch", json={"entries": [alliance.enroll_doc("31")]})
    assert_problem(batch, 503, "queue-full")
    assert alliance.ledger.size() == 1  # nothing was written


def test_a_server_without_the_operator_key_refuses_writes(alliance: Alliance) -> None:
    reader = Ledger(alliance.engine, None, alliance.clock)
    alliance.ledger = reader
    client = client_for(alliance)
    response = client.post("/v1/entries", json=alliance.enroll_doc("31"))
    assert_problem(response, 503, "not-ready")
    assert client.get("/checkpoint").status_code == 200  # reads go on
