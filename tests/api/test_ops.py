"""/healthz, /metrics and the OpenAPI document's problem types."""

from __future__ import annotations

import os

import pytest
from fastapi.testclient import TestClient

from api.problems import problem_types
from ledger.app import Ledger
from schemas.errors import PROBLEM_TYPE_BASE
from tests.api.support import assert_problem, busy, client_for
from tests.conftest import Alliance


def test_healthz_is_ready_while_the_writer_holds_the_log(
    alliance: Alliance, client: TestClient
) -> None:
    assert client.get("/healthz").json() == {"status": "ready", "tree_size": 1}
    alliance.ledger = Ledger(alliance.engine, None, alliance.clock)
    response = client_for(alliance).get("/healthz")
    assert_problem(response, 503, "not-ready")
    assert "retry-after" in response.headers


def test_healthz_is_not_ready_when_the_database_is_gone(alliance: Alliance) -> None:
    if alliance.engine.dialect.name != "sqlite":
        pytest.skip("a SQLite file can be removed under the server; a schema is not the point")
    client = client_for(alliance)
    alliance.ledger.writer.forget()
    alliance.engine.dispose()
    path = alliance.engine.url.database
    assert path is not None
    os.remove(path)
    assert_problem(client.get("/healthz"), 503, "not-ready")


def test_metrics(alliance: Alliance, client: TestClient) -> None:
    scenario = busy(alliance)
    client.post("/v1/entries", json=alliance.enroll_doc("31"))
    client.post("/v1/entries:batch", json={"entries": [alliance.enroll_doc("32")]})
    client.get(f"/v1/entries/{scenario.returns[1]}")  # refused: a return
    text = client.get("/metrics").text
    size = alliance.ledger.size()
    assert f"alliance_tree_size {float(size)}" in text
    assert 'alliance_append_seconds_count{route="entry"} 1.0' in text
    assert 'alliance_append_seconds_count{route="batch"} 1.0' in text
    assert "alliance_batch_request_entries_count 1.0" in text
    assert "alliance_queue_depth 0.0" in text
    assert 'alliance_witness_cosignature_age_seconds{region="31"}' in text
    assert 'alliance_endorsement_backlog{region="31"} 2.0' in text
    assert 'alliance_problems_total{type="forbidden"} 1.0' in text
    assert "alliance_refused_reads_total 1.0" in text
    # Every transaction of the writer since the app started: the two posts' among them.
    figures = dict(line.rsplit(" ", 1) for line in text.splitlines() if line[:1] != "#")
    assert float(figures["alliance_group_commit_entries_count"]) >= 2
    assert float(figures["alliance_group_commit_entries_sum"]) >= 2
    assert float(figures['alliance_group_commit_entries_bucket{le="4096.0"}']) >= 2


def test_openapi_lists_every_problem_type(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    listed = {item["type"]: item["status"] for item in document["x-problem-types"]}
    for cls in problem_types():
        assert listed[PROBLEM_TYPE_BASE + cls.type_slug] == cls.status
    enum = document["components"]["schemas"]["Problem"]["properties"]["type"]["enum"]
    assert set(enum) == set(listed)
    for path in ("/v1/entries", "/v1/public/check", "/tile/{path}", "/checkpoint"):
        operations = document["paths"][path]
        for operation in operations.values():
            assert "application/problem+json" in operation["responses"]["404"]["content"]
