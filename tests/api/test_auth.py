"""RFC 9421 request signatures and the scope table (issue 9, "Who may read what"):
every cross-tenant read refused with 403, every bad signature with 401, the allowed
reads served."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from ledger.projections import FIELD_NAMES
from ops.world import entry_time
from schemas.limits import HTTP_SIGNATURE_SKEW_S, SUBMISSION_BYTES_MAX
from signing.http import signed_headers
from tests.api.support import assert_problem, enrol, signed_get, submit
from tests.conftest import Alliance
from tests.ledger.builders import one_item_return
from tests.reconciliation.nights import (
    approve_night,
    one_closed_night,
    pay,
)


def _local_return(alliance: Alliance, region: str) -> tuple[str, str, int]:
    """A seller and an acceptor both of ``region``, and a return between them (its
    endorsement dues name ``region`` alone)."""
    seller = enrol(alliance, region, stores=[("S1", f"{region}0101")])
    buyer = enrol(alliance, region, stores=[("B1", f"{region}0102")])
    purchased = entry_time(alliance.clock())
    body = one_item_return(seller, purchased, number="L-1", refund_fen=2_500, accepted_store="B1")
    return seller, buyer, submit(alliance, "return.recorded", buyer, body)


def test_a_region_reads_entries_touching_it_only(alliance: Alliance, client: TestClient) -> None:
    seller, buyer, seq = _local_return(alliance, "32")
    path = f"/v1/entries/{seq}"
    for principal in ("operator", "region:32", seller, buyer):
        response = signed_get(client, alliance, principal, path)
        assert response.status_code == 200, (principal, response.text)
        assert response.json()["kind"] == "return.recorded"
    outsider = enrol(alliance, "31")
    for principal in ("region:31", "region:33", outsider):
        refused = assert_problem(signed_get(client, alliance, principal, path), 403, "forbidden")
        assert "2500" not in str(refused)
    assert_problem(client.get(path), 403, "forbidden")  # unsigned: public
    metrics = client.get("/metrics").text
    assert "alliance_refused_reads_total 4.0" in metrics


def test_obligations_are_read_by_the_member_its_region_and_the_operator(
    alliance: Alliance, client: TestClient
) -> None:
    seller, buyer, seq = _local_return(alliance, "32")
    other = enrol(alliance, "31")
    path = f"/v1/members/{seller}/obligations"
    for principal in (seller, "region:32", "operator"):
        response = signed_get(client, alliance, principal, path)
        assert response.status_code == 200, (principal, response.text)
        body = response.json()
        assert body["member"] == seller
        assert [row["seq"] for row in body["obligations"]] == [seq]
        assert body["obligations"][0]["debtor"] == seller
        assert list(body["obligations"][0]) == list(FIELD_NAMES["obligations"])
    for principal in (other, buyer, "region:31"):  # member X reading Y's: refused
        assert_problem(signed_get(client, alliance, principal, path), 403, "forbidden")
    assert_problem(client.get(path), 403, "forbidden")
    unknown = "/v1/members/91310000MA1K000001/obligations"
    assert_problem(signed_get(client, alliance, "operator", unknown), 404, "not-found")
    assert_problem(signed_get(client, alliance, "region:31", unknown), 403, "forbidden")


def test_entry_bundles_are_for_the_operator_only(alliance: Alliance, client: TestClient) -> None:
    member = enrol(alliance, "31")
    assert signed_get(client, alliance, "operator", "/tile/entries/000.p/2").status_code == 200
    for principal in ("region:31", member):
        response = signed_get(client, alliance, principal, "/tile/entries/000.p/2")
        assert_problem(response, 403, "forbidden")
    assert client.get("/tile/0/000.p/2").status_code == 200  # hash tiles stay public


def test_a_replaced_key_is_refused(alliance: Alliance, client: TestClient) -> None:
    member = enrol(alliance, "31")
    path = f"/v1/members/{member}/obligations"
    old = alliance.ring.keys[member]
    assert signed_get(client, alliance, member, path).status_code == 200
    new = alliance.ring.rotate(member, 2)
    body = {"member": member, "keys": [new.public.wire()]}
    submit(alliance, "member.keys_changed", "region:31", body)
    assert_problem(signed_get(client, alliance, member, path, key=old), 401, "bad-signature")
    assert signed_get(client, alliance, member, path, key=new).status_code == 200


def test_a_replayed_request_is_refused(alliance: Alliance, client: TestClient) -> None:
    member = enrol(alliance, "31")
    path = f"/v1/members/{member}/obligations"
    assert signed_get(client, alliance, member, path, nonce="n-1").status_code == 200
    replay = signed_get(client, alliance, member, path, nonce="n-1")
    assert_problem(replay, 401, "bad-signature")
    assert signed_get(client, alliance, member, path, nonce="n-2").status_code == 200


@pytest.mark.parametrize("delta", [-HTTP_SIGNATURE_SKEW_S - 1, HTTP_SIGNATURE_SKEW_S + 1])
def test_created_outside_the_skew_is_refused(
    alliance: Alliance, client: TestClient, delta: int
) -> None:
    member = enrol(alliance, "31")
    path = f"/v1/members/{member}/obligations"
    late = signed_get(client, alliance, member, path, created_delta_s=delta)
    assert_problem(late, 401, "bad-signature")
    within = delta - 2 if delta > 0 else delta + 2
    assert signed_get(client, alliance, member, path, created_delta_s=within).status_code == 200


def test_an_unknown_key_or_a_bad_signature_is_refused(
    alliance: Alliance, client: TestClient
) -> None:
    member = enrol(alliance, "31")
    path = f"/v1/members/{member}/obligations"
    stranger = alliance.ring.ensure("nobody")
    assert_problem(signed_get(client, alliance, member, path, key=stranger), 401, "bad-signature")
    headers = signed_headers(
        "GET", f"{client.base_url}{path}", alliance.ring.keys[member], created=_now(alliance)
    )
    headers["signature"] = headers["signature"][:-6] + "AAAAA:"
    assert_problem(client.get(path, headers=headers), 401, "bad-signature")
    for broken in ("sig1=()", "sig1", 'garbage=("@method");created=x'):
        response = client.get(path, headers={**headers, "signature-input": broken})
        assert_problem(response, 401, "bad-signature")


def _now(alliance: Alliance) -> int:
    return int(alliance.clock().timestamp())


def test_a_tampered_path_or_body_is_refused(alliance: Alliance, client: TestClient) -> None:
    member = enrol(alliance, "31")
    other = enrol(alliance, "31")
    key = alliance.ring.keys[member]
    signed_path = f"/v1/members/{member}/obligations"
    headers = signed_headers("GET", f"{client.base_url}{signed_path}", key, created=_now(alliance))
    tampered = client.get(f"/v1/members/{other}/obligations", headers=headers)
    assert_problem(tampered, 401, "bad-signature")
    query = client.get(f"{signed_path}?x=1", headers=headers)  # @query is covered too
    assert_problem(query, 401, "bad-signature")
    url = f"{client.base_url}{signed_path}"
    with_body = signed_headers("GET", url, key, created=_now(alliance), body=b"one")
    assert "content-digest" in with_body
    response = client.request("GET", signed_path, headers=with_body, content=b"two")
    assert_problem(response, 401, "bad-signature")
    no_digest = signed_headers("GET", url, key, created=_now(alliance))
    response = client.request("GET", signed_path, headers=no_digest, content=b"one")
    assert_problem(response, 401, "bad-signature")  # a body must be covered
    fine = signed_headers("GET", url, key, created=_now(alliance), body=b"one")
    assert client.request("GET", signed_path, headers=fine, content=b"one").status_code == 200


def test_a_night_is_read_whole_by_regions_and_in_part_by_its_members(
    alliance: Alliance, client: TestClient
) -> None:
    town, night = one_closed_night(alliance)
    path = f"/v1/reconciliations/{town.day.isoformat()}"
    for principal in ("operator", "region:31", "region:33"):
        body = signed_get(client, alliance, principal, path).json()
        assert body["seq"] == night.seq and "report" in body and "statement" not in body
    mine = signed_get(client, alliance, town.seller, path)
    assert mine.status_code == 200, mine.text
    statement = mine.json()["statement"]
    assert "report" not in mine.json() and statement["member"] == town.seller
    assert statement["instructions"] and all("proof" in i for i in statement["instructions"])
    assert_problem(client.get(path), 403, "forbidden")
    missing = f"/v1/reconciliations/{(town.day - timedelta(days=30)).isoformat()}"
    assert_problem(signed_get(client, alliance, "operator", missing), 404, "not-found")
    approve_night(town, night.seq)
    paid = f"/v1/entries/{pay(town, night.seq, 1_000)}"  # the seller pays the buyer
    for principal in (town.seller, town.buyer, "region:32"):
        assert signed_get(client, alliance, principal, paid).status_code == 200, principal
    assert_problem(signed_get(client, alliance, town.third, paid), 403, "forbidden")


def test_a_declared_auditor_reads_bundles(alliance: Alliance) -> None:
    """The hook for policy-declared auditors: a key handed to the app as an auditor's
    reads what the operator reads (until the log declares auditors, none is)."""
    app = create_app(alliance.ledger, alliance.clock)
    auditor = alliance.ring.ensure("auditor-a")
    app.state.services = replace(
        app.state.services, auditors={auditor.key_id: ("auditor-a", auditor.public)}
    )
    client = TestClient(app)
    seller, _, seq = _local_return(alliance, "32")
    paths = ("/tile/entries/000.p/2", f"/v1/entries/{seq}", f"/v1/members/{seller}/obligations")
    for path in paths:
        assert signed_get(client, alliance, "auditor-a", path).status_code == 200, path


def test_a_signed_body_past_the_limit_is_refused_unread(
    alliance: Alliance, client: TestClient
) -> None:
    member = enrol(alliance, "31")
    path = f"/v1/members/{member}/obligations"
    body = b"x" * (SUBMISSION_BYTES_MAX + 1)
    url = f"{client.base_url}{path}"
    key = alliance.ring.keys[member]
    headers = signed_headers("GET", url, key, created=_now(alliance), body=body)
    response = client.request("GET", path, headers=headers, content=body)
    assert_problem(response, 413, "limit-exceeded")
