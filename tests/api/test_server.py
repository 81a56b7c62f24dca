"""A real `alliance serve` (uvicorn) on 127.0.0.1 in its own process, on both backends:
schemathesis drives every operation of /openapi.json (no 5xx, every response conforms
to the document: status, content type, headers, schema), and a write and the public
lookup go through the network."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import checks

from tests.api.support import busy
from tests.conftest import Alliance

ROOT = Path(__file__).resolve().parents[2]
READY_ATTEMPTS = 300  # × up to 0.1 s waiting on the process: a bounded 30 s at most
EXAMPLES_PER_OPERATION = 40


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _wait_ready(url: str, process: subprocess.Popen[bytes]) -> None:
    """Poll /healthz until it answers 200; each failed attempt waits on the process
    itself (up to 0.1 s), so a server that dies is reported at once with its stderr."""
    for _ in range(READY_ATTEMPTS):
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        try:
            process.wait(timeout=0.1)
        except subprocess.TimeoutExpired:
            continue
        _, stderr = process.communicate()
        pytest.fail(f"alliance serve exited {process.returncode}: {stderr.decode()[-2000:]}")
    process.kill()
    pytest.fail(f"alliance serve was not ready after {READY_ATTEMPTS} attempts")


@pytest.fixture
def server(alliance: Alliance, tmp_path: Path) -> Iterator[tuple[str, Alliance]]:
    busy(alliance)
    keys = tmp_path / "keys"
    alliance.ring.keys["operator"].save(keys / "operator.pem")
    port = _free_port()
    command = [sys.executable, "-m", "ops.cli", "serve", "--db", alliance.url]
    command += ["--keys", str(keys), "--port", str(port)]
    env = os.environ | {"PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(url, process)
        yield url, alliance
    finally:
        process.terminate()
        try:
            process.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()


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
