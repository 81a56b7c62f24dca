"""A real `alliance serve` (uvicorn) on 127.0.0.1 in its own process, on both backends:
schemathesis drives every operation of /openapi.json (no 5xx, every response conforms
to the document: status, content type, headers, schema), and a write and the public
lookup go through the network."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import checks

from tests.api.support import busy, serving
from tests.conftest import Alliance

EXAMPLES_PER_OPERATION = 40


@pytest.fixture
def server(alliance: Alliance, tmp_path: Path) -> Iterator[tuple[str, Alliance]]:
    busy(alliance)
    keys = tmp_path / "keys"
    alliance.ring.keys["operator"].save(keys / "operator.pem")
    with serving(alliance.url, keys) as url:
        yield url, alliance


CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_headers_conformance,
    checks.response_schema_conformance,
    checks.negative_data_rejection,
]


def test_every_operation_conforms(server: tuple[str, Alliance]) -> None:
    """Schemathesis's generated cases, operation by operation (driven from here rather
    than its pytest plugin: the server is a fixture of this test's backend)."""
    url, _ = server
    api = schemathesis.openapi.from_url(f"{url}/openapi.json")
    operations = [result.ok() for result in api.get_all_operations()]
    assert len(operations) >= 11
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def conforms(case: Any) -> None:
            case.call_and_validate(checks=CHECKS)

        conforms()


def test_writes_and_lookups_over_the_network(server: tuple[str, Alliance]) -> None:
    url, alliance = server
    # The server logs at the wall clock: the entry must be timed near it.
    alliance.clock.set(max(alliance.clock(), datetime.now(UTC)))
    document = alliance.enroll_doc("34")
    with httpx.Client(base_url=url, timeout=30) as client:
        created = client.post("/v1/entries", json=document)
        assert created.status_code == 201, created.text
        assert client.post("/v1/entries", json=document).status_code == 200
        member = document["entry"]["body"]["member"]["id"]
        page = client.get(f"/v1/public/members/{member}")
        assert page.status_code == 200 and page.json()["member"]["uscc"] == member
        assert client.get("/checkpoint").text.startswith(alliance.ledger.log_keys().origin)
        assert "alliance_append_seconds" in client.get("/metrics").text
        missing = client.get("/v1/entries/999999")
        assert missing.status_code == 404
        assert missing.headers["content-type"].startswith("application/problem+json")
