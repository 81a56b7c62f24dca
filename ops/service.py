"""Operations behind the CLI commands, kept free of CLI concerns so tests call them."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from ledger import projections, store
from ledger.endorse import Judge, approve_all, endorse
from ledger.export import log_verifier, origin_of
from ledger.schema import migrate
from ledger.sequencer import Sequencer, lock_log, replay
from ledger.state import State
from ledger.witness import cosign_latest
from ops.config import load_config
from ops.world import EntryFactory, Keyring, genesis_submission
from schemas.errors import ConflictError
from signing.keys import PrivateKey


def initialize(
    engine: Engine, keys: Path, config_path: Path | None, now: datetime
) -> dict[str, Any]:
    """Schema, fresh keys for the operator, every region and its witness, the genesis,
    and every witness's first cosignature."""
    config = load_config(config_path)
    migrate(engine)
    with engine.connect() as connection:
        if store.head_size(connection) > 0:
            raise ConflictError("this database already holds a ledger")
    if (keys / "operator.pem").exists():
        raise ConflictError(f"{keys} already holds an operator key; choose an empty folder")
    ring = Keyring()
    genesis = genesis_submission(config, ring, EntryFactory(), now)
    ring.save(keys)
    # The keys are on disk before the genesis that names them is appended.
    sequencer = Sequencer(engine, ring.keys["operator"], clock=lambda: now)
    appended = sequencer.submit(genesis)
    # Durable: the genesis and the first checkpoint. Now each witness cosigns it.
    for region in config.regions:
        run_witness(engine, region.code, ring.witnesses[region.code], now)
    return {
        "seq": appended.seq,
        "origin": config.origin,
        "regions": [region.code for region in config.regions],
        "keys": str(keys),
    }


def rebuild_projections(engine: Engine) -> dict[str, Any]:
    """Replay the log into a fresh state, compare it with the stored projections, and
    rewrite them from the replay (the log is the truth)."""
    with engine.begin() as connection:
        lock_log(connection)
        before = projections.read_all(connection)
        state = State()
        size = store.head_size(connection)
        replay(state, store.read_entries(connection, 0, size), verify=True)
        rebuilt = projections.state_rows(state)
        projections.clear(connection)
        projections.write_all(connection, {n: t.values() for n, t in state.tables.items()})
        after = projections.read_all(connection)
    differing = sorted(name for name in rebuilt if before[name] != rebuilt[name])
    return {
        "entries": size,
        "rows": sum(len(rows) for rows in rebuilt.values()),
        "identical": not differing and after == rebuilt,
        "differing_tables": differing,
    }


def run_endorse(
    engine: Engine,
    region: str,
    key: PrivateKey,
    operator: PrivateKey,
    judge: Judge = approve_all,
    now: datetime | None = None,
    sequencer: Sequencer | None = None,
) -> dict[str, Any]:
    moment = now or datetime.now(UTC)
    writer = sequencer or Sequencer(engine, operator, clock=lambda: moment)
    factory = EntryFactory()
    approved, rejected = endorse(engine, region, key, factory.entry, writer.submit, moment, judge)
    return {"region": region, "approved": approved, "rejected": rejected}


def run_witness(
    engine: Engine, region: str, key: PrivateKey, now: datetime | None = None
) -> dict[str, Any]:
    with engine.connect() as connection:
        latest = store.latest_checkpoint(connection)
        origin = origin_of(connection)
        verifier = log_verifier(connection, origin, latest.note if latest else "")
    result = cosign_latest(engine, region, key, verifier, now or datetime.now(UTC))
    return {
        "region": region,
        "witness": result.witness,
        "size": result.size,
        "previous": result.old_size,
    }


__all__ = ["Keyring", "initialize", "rebuild_projections", "run_endorse", "run_witness"]
