"""Helpers for the API tests: a TestClient over an alliance, a small busy log, and a real
`alliance serve` in its own process (the web tests use it too)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from api.app import create_app
from ledger.calendar import local_date
from ops.process import alliance_server, serve_args
from ops.world import entry_time, member_body
from schemas.errors import PROBLEM_TYPE_BASE
from signing.entry import submitted
from signing.http import signed_headers
from signing.keys import PrivateKey
from tests.conftest import Alliance
from tests.ledger.builders import advance_body, one_item_return

PROBLEM = "application/problem+json"
ROOT = Path(__file__).resolve().parents[2]


@contextmanager
def serving(db_url: str, keys: Path) -> Iterator[str]:
    """`alliance serve --db db_url --keys keys` on a free port of 127.0.0.1, in its own
    process (ops.process, the one helper the bench, the demo and the tests share); yields
    its base URL once /healthz answers, and stops it afterwards."""
    with alliance_server(serve_args(db_url, keys)) as url:
        yield url


def client_for(alliance: Alliance) -> TestClient:
    # raise_server_exceptions: a bug surfaces as the exception, never as a quiet 500.
    return TestClient(create_app(alliance.ledger, alliance.clock))


def signed_get(
    client: TestClient,
    alliance: Alliance,
    principal: str,
    path: str,
    *,
    key: PrivateKey | None = None,
    nonce: str | None = None,
    created_delta_s: int = 0,
) -> Any:
    """GET ``path`` signed (RFC 9421) by ``principal``'s key of the alliance's keyring
    (or ``key``), created at the log clock (plus ``created_delta_s``)."""
    signing_key = key or alliance.ring.keys[principal]
    created = int(alliance.clock().timestamp()) + created_delta_s
    url = f"{client.base_url}{path}"
    headers = signed_headers("GET", url, signing_key, created=created, nonce=nonce)
    return client.get(path, headers=headers)


def assert_problem(response: Any, status: int, slug: str) -> dict[str, Any]:
    """``response`` is an RFC 9457 problem of ``status`` with the stable ``type``."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = response.json()
    assert body["type"] == PROBLEM_TYPE_BASE + slug
    assert body["status"] == status
    assert "Traceback" not in response.text
    return body


def sign(alliance: Alliance, kind: str, signer: str, body: dict[str, Any], *co: str) -> Any:
    alliance.ring.ensure(signer)
    entry = alliance.factory.entry(kind, signer, body, alliance.clock())
    return submitted(entry, *[alliance.ring.keys[name] for name in (signer, *co)])


def submit(alliance: Alliance, kind: str, signer: str, body: dict[str, Any], *co: str) -> int:
    return alliance.ledger.submit(sign(alliance, kind, signer, body, *co)).seq


def enrol(alliance: Alliance, region: str, **fields: Any) -> str:
    fields.setdefault("network", alliance.named())
    member = alliance.new_uscc(region)
    key = alliance.ring.ensure(member).public.wire()
    submit(
        alliance, "member.enrolled", f"region:{region}", member_body(member, region, key, **fields)
    )
    return member


@dataclass
class Busy:
    seller: str
    buyer: str
    returns: list[int]
    advance: int
    notice: int
    penalty: int


def busy(alliance: Alliance) -> Busy:
    """A seller (two stores, exclusions) and a buyer that honours it; three returns the
    buyer accepted for the seller's sales (one approved by both regions), a notice and
    a penalty (a warning) on the seller."""
    seller = enrol(
        alliance, "31", stores=[("S1", "310101"), ("S2", "310104")], excluded=["toys", "shoes"]
    )
    buyer = enrol(alliance, "32", stores=[("B1", "320101")])
    fund = enrol(alliance, "33", kind="fund", stores=[])
    returns = []
    for number in ("R-1", "R-2", "R-3"):
        body = one_item_return(
            seller,
            entry_time(alliance.clock()),
            number=number,
            refund_fen=4_321,
            accepted_store="B1",
        )
        returns.append(submit(alliance, "return.recorded", buyer, body))
    advance = submit(alliance, "advance.paid", fund, advance_body(seller, "C-1", 9_000))
    for region, targets in (("31", [returns[0], advance]), ("32", returns[:1]), ("33", [advance])):
        decision = {"targets": targets, "decision": "approve", "reason": ""}
        submit(alliance, "endorsement", f"region:{region}", decision)
    alliance.clock.advance(days=1)
    notice = {
        "member": seller,
        "rule": "serious_violation",
        "points": 60,
        "measure": "delisting",
        "evidence": [advance],  # approved by both regions: the fund paid its customer
        "deadline": local_date(alliance.clock() + timedelta(days=3)).isoformat(),
    }
    notice_seq = submit(alliance, "credit.notice", "region:31", notice)
    alliance.clock.advance(days=4)
    penalty = {
        "notice": notice_seq,
        "objection": None,
        "decision_no": "沪联信〔2026〕1号",
        "member": seller,
        "rule": "serious_violation",
        "points": 10,
        "measure": "warning",
        "until": entry_time(alliance.clock() + timedelta(days=30)),
    }
    penalty_seq = submit(alliance, "credit.penalty", "region:31", penalty)
    return Busy(seller, buyer, returns, advance, notice_seq, penalty_seq)
