"""`alliance serve --read-db`: the log's reads from a real PostgreSQL streaming replica.

The test runs its own primary (initdb, on a free port of 127.0.0.1) and a hot standby
made from it with pg_basebackup, so the shared server's configuration is never touched
(its pg_hba.conf admits no replication connection). Run as root, the server binaries run
as the ``postgres`` user (PostgreSQL refuses root). Without the server binaries the test
is skipped, or fails when env CI=true.
"""

from __future__ import annotations

import base64
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from ledger import merkle
from ledger.app import Ledger
from ledger.db import make_engine
from ledger.schema import migrate
from ops.service import trust_from_ledger
from schemas.errors import ConfigError
from signing.checkpoint import open_checkpoint
from tests.conftest import Alliance, make_alliance

SERVER_BIN_GLOB = "/usr/lib/postgresql/*/bin"
SERVER_USER = "postgres"
CATCH_UP_DEADLINE_S = 60.0
POLL_S = 0.1


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def _server_bin() -> Path | None:
    found = sorted(Path("/").glob(SERVER_BIN_GLOB.lstrip("/")))
    for folder in reversed(found):  # the newest major version
        if (folder / "initdb").is_file() and (folder / "pg_basebackup").is_file():
            return folder
    on_path = shutil.which("initdb")
    return Path(on_path).parent if on_path else None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _poll(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + CATCH_UP_DEADLINE_S
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {CATCH_UP_DEADLINE_S} s")
        time.sleep(POLL_S)


@dataclass
class Servers:
    folder: Path
    binaries: Path

    def run(self, *command: str) -> None:
        """A server binary, as the postgres user when the test runs as root."""
        prefix = ["runuser", "-u", SERVER_USER, "--"] if os.geteuid() == 0 else []
        argv = [*prefix, str(self.binaries / command[0]), *command[1:]]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
        assert done.returncode == 0, f"{command[0]} failed: {done.stderr[-2000:]}"

    def start(self, data: Path, port: int, *settings: str) -> str:
        options = f"-p {port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off"
        options += "".join(f" -c {setting}" for setting in settings)
        self.run("pg_ctl", "-D", str(data), "-l", str(data) + ".log", "-o", options, "-w", "start")
        return f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"

    def stop(self, data: Path) -> None:
        if (data / "postmaster.pid").exists():
            self.run("pg_ctl", "-D", str(data), "-m", "immediate", "-w", "stop")


@dataclass
class Pair:
    primary_url: str
    replica_url: str
    replica_port: int


@pytest.fixture(scope="module")
def pair() -> Iterator[Pair]:
    binaries = _server_bin()
    if binaries is None:
        if _in_ci():
            pytest.fail("no PostgreSQL server binaries (CI=true: the replica test must run)")
        pytest.skip("no PostgreSQL server binaries (initdb, pg_basebackup)")
    folder = Path(tempfile.mkdtemp(prefix="alliance-replica-"))
    if os.geteuid() == 0:
        shutil.chown(folder, SERVER_USER, SERVER_USER)
    servers = Servers(folder, binaries)
    primary, replica = folder / "primary", folder / "replica"
    try:
        servers.run("initdb", "-D", str(primary), "-U", "postgres", "--auth=trust", "-E", "UTF8")
        primary_port = _free_port()
        primary_url = servers.start(primary, primary_port, "wal_level=replica")
        servers.run(
            "pg_basebackup", "-h", "127.0.0.1", "-p", str(primary_port), "-U", "postgres",
            "-D", str(replica), "-R", "-X", "stream", "-c", "fast",
        )  # fmt: skip
        replica_port = _free_port()
        replica_url = servers.start(replica, replica_port, "hot_standby=on")
        yield Pair(primary_url, replica_url, replica_port)
    finally:
        servers.stop(replica)
        servers.stop(primary)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def alliance(pair: Pair) -> Iterator[Alliance]:
    engine = make_engine(pair.primary_url)
    migrate(engine)
    yield make_alliance(pair.primary_url, engine)
    engine.dispose()


@pytest.fixture(scope="module")
def replica(pair: Pair, alliance: Alliance) -> Iterator[Ledger]:
    ledger = Ledger.replica(pair.replica_url)
    yield ledger
    ledger.close()


def _caught_up(replica: Ledger, alliance: Alliance) -> None:
    size = alliance.ledger.signed_checkpoint().size
    _poll(lambda: replica.signed_checkpoint().size == size, "the replica catching up")


def _replay(pair: Pair, action: str) -> None:
    libpq = f"postgresql://postgres@127.0.0.1:{pair.replica_port}/postgres"
    with psycopg.connect(libpq, autocommit=True) as connection:
        if action == "resume":
            connection.execute("SELECT pg_wal_replay_resume()")
        else:
            connection.execute("SELECT pg_wal_replay_pause()")
            state = "SELECT pg_get_wal_replay_pause_state()"
            _poll(lambda: connection.execute(state).fetchone() == ("paused",), "replay paused")


def _b64(text: str) -> bytes:
    return base64.b64decode(text)


def test_a_replica_proof_verifies_against_the_primarys_checkpoint(
    alliance: Alliance, replica: Ledger
) -> None:
    for _ in range(5):
        alliance.ledger.submit(alliance.enroll_doc("31"))
    alliance.cosign()
    _caught_up(replica, alliance)
    client = TestClient(create_app(alliance.ledger, alliance.clock, replica=replica))
    trust = trust_from_ledger(alliance.ledger)
    checkpoint = open_checkpoint(alliance.ledger.signed_checkpoint().note, trust.log)
    proof = client.get(
        "/v1/proofs/inclusion", params={"seq": 3, "tree_size": checkpoint.size}
    ).json()
    hashes = [_b64(h) for h in proof["hashes"]]
    leaf_hash = merkle.leaf_hash(alliance.ledger.leaves(3, 4)[0])
    assert _b64(proof["leaf_hash"]) == leaf_hash
    merkle.verify_inclusion(leaf_hash, 3, checkpoint.size, hashes, checkpoint.root)
    # A write through the same app goes to the primary; the replica never appends.
    appended = client.post("/v1/entries", json=alliance.enroll_doc("32"))
    assert appended.status_code in (200, 201), appended.text
    assert alliance.ledger.size() == checkpoint.size + 1
    with pytest.raises(ConfigError):
        replica.submit(alliance.enroll_doc("33"))


def test_a_lagging_replica_serves_nothing_beyond_its_own_checkpoint(
    pair: Pair, alliance: Alliance, replica: Ledger
) -> None:
    alliance.cosign()
    _caught_up(replica, alliance)
    _replay(pair, "pause")
    try:
        behind = replica.signed_checkpoint().size
        for _ in range(3):
            alliance.ledger.submit(alliance.enroll_doc("31"))
        alliance.cosign()
        ahead = alliance.ledger.signed_checkpoint().size
        assert ahead == behind + 3
        from_replica = TestClient(create_app(alliance.ledger, alliance.clock, replica=replica))
        from_primary = TestClient(create_app(alliance.ledger, alliance.clock))
        own, newer = f"/tile/0/000.p/{behind}", f"/tile/0/000.p/{ahead}"
        assert from_primary.get(newer).status_code == 200
        assert from_replica.get(newer).status_code == 404
        assert from_replica.get(own).content == from_primary.get(own).content
        note = from_replica.get("/checkpoint").text
        assert note == replica.signed_checkpoint().note
        assert f"\n{behind}\n" in note
        proof = from_replica.get("/v1/proofs/inclusion", params={"seq": behind})
        assert proof.status_code == 404
    finally:
        _replay(pair, "resume")
    _caught_up(replica, alliance)
    from_replica = TestClient(create_app(alliance.ledger, alliance.clock, replica=replica))
    assert from_replica.get(f"/tile/0/000.p/{ahead}").status_code == 200
