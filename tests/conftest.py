"""Shared fixtures: a fresh database per test on SQLite and PostgreSQL, a migrated engine,
and a deterministic alliance (keys from seed 1, genesis, witness cosignatures) on it.

PostgreSQL is the database named by env ALLIANCE_TEST_PG (default
postgresql+psycopg://postgres@127.0.0.1:5432/test); each test gets its own schema,
dropped afterwards. If the server is unreachable the PostgreSQL tests are skipped, or
FAIL when env CI=true (CI must exercise PostgreSQL).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from ledger.app import Ledger
from ledger.db import make_engine
from ledger.schema import migrate
from ledger.sequencer import Sequencer
from ops.config import AllianceConfig, load_config
from ops.service import run_witness, trust_from_ledger
from ops.world import Clock, EntryFactory, Keyring, genesis_submission
from tests.dbtools import PgServer, enroll_doc, new_schema_name, pg_base_url, uscc
from tests.support import START

BACKENDS = ["sqlite", "postgresql"]


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer | str]:
    """The PostgreSQL test server, or the reason it is unavailable (reported per test,
    so SQLite tests never depend on it)."""
    base = pg_base_url()
    try:
        server = PgServer(base)
    except Exception as exc:  # any failure to connect or migrate
        yield f"PostgreSQL at {base} unavailable: {type(exc).__name__}: {exc}"
        return
    yield server
    server.close()


def require_pg(pg_server: PgServer | str) -> PgServer:
    if isinstance(pg_server, str):
        if _in_ci():
            pytest.fail(f"{pg_server} (CI=true: PostgreSQL tests must run)", pytrace=False)
        pytest.skip(pg_server)
    return pg_server


@pytest.fixture
def pg_url(pg_server: PgServer | str) -> Iterator[str]:
    """A fresh, migrated PostgreSQL schema; dropped (CASCADE) at teardown."""
    server = require_pg(pg_server)
    schema = new_schema_name()
    url = server.create(schema)
    yield url
    server.drop(schema)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'ledger.db'}"


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest) -> str:
    """A fresh database: a SQLite file in tmp_path, or a fresh PostgreSQL schema."""
    name = "pg_url" if request.param == "postgresql" else "sqlite_url"
    return str(request.getfixturevalue(name))


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """The project's engine on ``db_url``, migrated to the newest revision."""
    engine = make_engine(db_url)
    if engine.dialect.name == "sqlite":
        migrate(engine)  # PostgreSQL schemas arrive migrated (tests.dbtools.PgServer)
    yield engine
    engine.dispose()


@dataclass
class Alliance:
    """A deterministic alliance on a database: genesis at seq 0, cosigned by every
    region's witness, and a Sequencer whose log clock the test advances."""

    url: str
    engine: Engine
    config: AllianceConfig
    ring: Keyring
    factory: EntryFactory
    clock: Clock
    ledger: Ledger
    serial: int = 0
    regions_named: list[str] = field(default_factory=list)  # by serial - 1

    @property
    def sequencer(self) -> Sequencer:
        return self.ledger.writer

    def new_uscc(self, region: str = "31") -> str:
        self.serial += 1
        self.regions_named.append(region)
        return uscc(region, self.serial)

    def named(self) -> list[str]:
        """Every USCC this alliance has named so far, in order."""
        return [uscc(code, serial) for serial, code in enumerate(self.regions_named, 1)]

    def enroll_doc(self, region: str = "31", **body: Any) -> dict[str, Any]:
        """A valid member.enrolled of a new member, timed at the log clock. Its network
        is by default every member this alliance named before it (so a later member
        honours an earlier one's receipts)."""
        body.setdefault("network", self.named())
        member = self.new_uscc(region)
        return enroll_doc(self.ring, self.factory, member, self.clock(), region, **body)

    def cosign(self) -> None:
        trust = trust_from_ledger(self.ledger)
        for region in self.config.regions:
            key = self.ring.witnesses[region.code]
            run_witness(self.ledger, region.code, key, trust, self.clock())


def make_alliance(url: str, engine: Engine) -> Alliance:
    config = load_config()
    ring = Keyring(seed=1)
    factory = EntryFactory(seed=1)
    clock = Clock(START)
    genesis = genesis_submission(config, ring, factory, clock())
    ledger = Ledger(engine, ring.keys["operator"], clock)
    appended = ledger.submit(genesis)
    assert appended.seq == 0
    alliance = Alliance(url, engine, config, ring, factory, clock, ledger)
    alliance.cosign()
    return alliance


@pytest.fixture
def alliance(db_url: str, engine: Engine) -> Alliance:
    return make_alliance(db_url, engine)
