"""Region sign-in (a challenge signed by the region's current key, a session cookie) and
the regulator desk's and reconciliation page's reads over HTTP (issue 10)."""

from __future__ import annotations

import csv
import io
from typing import Any

from fastapi.testclient import TestClient

from api.app import create_app
from ledger.desk import REVIEW_SLA_S
from ledger.sessions import challenge_message
from ops.world import entry_time
from reconciliation.nightly import verified_night
from schemas.limits import SESSION_CHALLENGE_TTL_S, SESSION_TTL_S
from signing.keys import PrivateKey, b64encode
from tests.api.support import assert_problem, enrol, signed_get, submit
from tests.conftest import Alliance
from tests.ledger.builders import one_item_return
from tests.reconciliation.nights import closed, make_town


def sign_in(client: TestClient, region: str, key: PrivateKey, *, nonce: str | None = None) -> Any:
    """POST /v1/session with ``key``'s signature over a fresh (or the given) challenge."""
    if nonce is None:
        nonce = client.post("/v1/session/challenge").json()["nonce"]
    sig = b64encode(key.sign(challenge_message(nonce, region, key.key_id)))
    body = {"region": region, "key": key.key_id, "nonce": nonce, "sig": sig}
    return client.post("/v1/session", json=body)


def _local_return(alliance: Alliance, region: str, refund_fen: int = 2_500) -> tuple[str, int]:
    seller = enrol(alliance, region, stores=[("S1", f"{region}0101")])
    buyer = enrol(alliance, region, stores=[("B1", f"{region}0102")])
    purchased = entry_time(alliance.clock())
    body = one_item_return(
        seller, purchased, number="L-1", refund_fen=refund_fen, accepted_store="B1"
    )
    return buyer, submit(alliance, "return.recorded", buyer, body)


def test_a_region_signs_in_and_reads_its_queue(alliance: Alliance, client: TestClient) -> None:
    buyer, seq = _local_return(alliance, "32")
    assert_problem(client.get("/v1/regions/32/queue"), 403, "forbidden")
    alliance.clock.advance(seconds=REVIEW_SLA_S + 60)  # the entry has waited past the SLA
    response = sign_in(client, "32", alliance.ring.keys["region:32"])
    assert response.status_code == 200, response.text
    assert response.json()["region"] == "32"
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Max-Age=900" in cookie
    assert "Secure" not in cookie  # plain http here; https sets it
    assert client.get("/v1/session").json()["region"] == "32"
    queue = client.get("/v1/regions/32/queue").json()
    assert queue["total"] == 1 and queue["sla_s"] == REVIEW_SLA_S
    [item] = queue["items"]
    assert (item["seq"], item["kind"], item["signer"]) == (seq, "return.recorded", buyer)
    assert item["amount_fen"] == 2_500 and item["creditor"] == buyer
    assert item["age_s"] >= REVIEW_SLA_S and item["overdue"] is True
    assert_problem(client.get("/v1/regions/31/queue"), 403, "forbidden")
    decision = {"targets": [seq], "decision": "approve", "reason": ""}
    submit(alliance, "endorsement", "region:32", decision)
    assert client.get("/v1/regions/32/queue").json()["total"] == 0
    assert client.delete("/v1/session").status_code == 204
    assert client.get("/v1/session").json()["role"] == "public"
    assert_problem(client.get("/v1/regions/32/queue"), 403, "forbidden")


def test_the_cookie_is_secure_over_https(alliance: Alliance) -> None:
    secure = TestClient(create_app(alliance.ledger, alliance.clock), base_url="https://testserver")
    response = sign_in(secure, "32", alliance.ring.keys["region:32"])
    assert response.status_code == 200, response.text
    assert "Secure" in response.headers["set-cookie"]


def test_sign_in_refusals(alliance: Alliance, client: TestClient) -> None:
    region_32 = alliance.ring.keys["region:32"]
    # another region's key, a key the log does not hold, a replayed or unknown nonce
    assert_problem(sign_in(client, "32", alliance.ring.keys["region:31"]), 401, "bad-signature")
    assert_problem(sign_in(client, "32", PrivateKey.generate()), 401, "bad-signature")
    nonce = client.post("/v1/session/challenge").json()["nonce"]
    assert sign_in(client, "32", region_32, nonce=nonce).status_code == 200
    assert_problem(sign_in(client, "32", region_32, nonce=nonce), 401, "bad-signature")
    assert_problem(sign_in(client, "32", region_32, nonce="x" * 43), 401, "bad-signature")
    # a signature over another region's message
    nonce = client.post("/v1/session/challenge").json()["nonce"]
    sig = b64encode(region_32.sign(challenge_message(nonce, "31", region_32.key_id)))
    body = {"region": "32", "key": region_32.key_id, "nonce": nonce, "sig": sig}
    assert_problem(client.post("/v1/session", json=body), 401, "bad-signature")
    # an expired challenge
    nonce = client.post("/v1/session/challenge").json()["nonce"]
    alliance.clock.advance(seconds=SESSION_CHALLENGE_TTL_S + 1)
    assert_problem(sign_in(client, "32", region_32, nonce=nonce), 401, "bad-signature")
    assert_problem(client.post("/v1/session", json={"region": "32"}), 400, "malformed")
    assert_problem(client.post("/v1/session", content=b"{"), 400, "malformed")
    assert_problem(client.post("/v1/session", json=[1]), 400, "malformed")


def test_signing_in_again_ends_the_session_it_replaces(
    alliance: Alliance, client: TestClient
) -> None:
    """A cookie copied before the region signed in again (or one fixed in the browser
    beforehand) must not outlive the session the new cookie replaced."""
    key = alliance.ring.keys["region:32"]
    assert sign_in(client, "32", key).status_code == 200
    first = client.cookies["alliance_session"]
    assert sign_in(client, "32", key).status_code == 200
    assert client.cookies["alliance_session"] != first
    stolen = TestClient(client.app)
    stolen.cookies.set("alliance_session", first)
    assert stolen.get("/v1/session").json()["role"] == "public"
    assert client.get("/v1/session").json()["region"] == "32"


def test_a_sign_in_body_is_not_read_past_its_bound(client: TestClient) -> None:
    """Anyone may post to /v1/session: a body of megabytes must be refused (413) before
    it is read whole, not parsed and then refused as malformed."""
    big = b'{"region": "32", "pad": "' + b"x" * (2 * 1024 * 1024) + b'"}'
    assert_problem(client.post("/v1/session", content=big), 413, "limit-exceeded")
    streamed = (b"x" * 64 * 1024 for _ in range(64))  # no Content-Length to trust
    assert_problem(client.post("/v1/session", content=streamed), 413, "limit-exceeded")


def test_a_session_ends_after_its_ttl(alliance: Alliance, client: TestClient) -> None:
    assert sign_in(client, "32", alliance.ring.keys["region:32"]).status_code == 200
    assert client.get("/v1/regions/32/picture").status_code == 200
    alliance.clock.advance(seconds=SESSION_TTL_S + 1)
    assert client.get("/v1/session").json()["role"] == "public"
    assert_problem(client.get("/v1/regions/32/picture"), 403, "forbidden")


def test_the_picture_counts_returns_and_flows(alliance: Alliance, client: TestClient) -> None:
    _local_return(alliance, "32", refund_fen=700)
    picture = signed_get(client, alliance, "region:32", "/v1/regions/32/picture").json()
    [day] = picture["returns_per_day"]
    assert (day["accepted"], day["accepted_fen"], day["sold"], day["sold_fen"]) == (1, 700, 1, 700)
    [flow] = picture["flows"]
    assert (flow["debtor_region"], flow["creditor_region"], flow["amount_fen"]) == ("32", "32", 700)
    assert picture["disputes"] == [] and picture["flags"] == []
    assert [count for _, count in picture["overdue_by_age"]] == [0, 0, 0, 0, 0]
    other = signed_get(client, alliance, "region:31", "/v1/regions/31/picture").json()
    assert other["returns_per_day"] == [] and other["flows"] == []


def test_nights_instructions_and_a_statement_csv(alliance: Alliance, client: TestClient) -> None:
    town = make_town(alliance)
    closed(town, refund_fen=6_000)
    night = verified_night(alliance.ledger, town.day)
    day = town.day.isoformat()
    assert_problem(client.get("/v1/reconciliations"), 403, "forbidden")
    assert sign_in(client, "31", alliance.ring.keys["region:31"]).status_code == 200
    [summary] = client.get("/v1/reconciliations").json()["nights"]
    totals = night.body["totals"]
    assert (summary["day"], summary["gross_fen"], summary["net_fen"]) == (
        day,
        totals["gross_fen"],
        totals["net_fen"],
    )
    listed = client.get(f"/v1/reconciliations/{day}/instructions").json()["instructions"]
    assert len(listed) == totals["instructions"] >= 1
    assert {item["status"] for item in listed} == {"due"}
    member = listed[0]["payer"]
    response = client.get(f"/v1/reconciliations/{day}/statements/{member}.csv")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    assert response.headers["cache-control"] == "no-store"  # a member's accounts
    raw = response.content
    assert raw.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert rows[0][:4] == ["对账日 day", day, "成员 member", member]
    assert any(row and row[0] == "净额 net" for row in rows)
