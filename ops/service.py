"""Operations behind the CLI commands, kept free of CLI concerns so tests call them.
Every one goes through the front door (ledger.app.Ledger) and the region nodes."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from ledger.app import Ledger, LogKeys, operator_verifier
from ledger.audit import Trust
from nodes.client import LocalClient
from nodes.endorse import EndorseNode, Judge, NodeRules, no_opinion
from nodes.witness import WitnessNode
from ops.config import load_config
from ops.world import EntryFactory, Keyring, genesis_submission
from schemas.errors import AlreadyInitialisedError, ConfigError, invariant
from schemas.files import FileRefused, write_new
from signing.keys import PrivateKey

TRUST_FILE_NAME = "trust.json"
TRUST_FILE_MODE = 0o644  # the trust root is public: every auditor and node reads it


def trust_of(keys: LogKeys, operator_vkey: str) -> dict[str, Any]:
    """The trust root (DESIGN §7): origin, log key and every declared witness key."""
    return {
        "origin": keys.origin,
        "log_key": operator_vkey,
        "witness_keys": {code: v.vkey for code, v in sorted(keys.witnesses.items())},
    }


def trust_from_ledger(ledger: Ledger) -> Trust:
    """The trust root as the log declares it now: the operator key that signed its
    newest checkpoint (after a rotation, the outgoing key until the new writer signs; see
    ledger.state.operator_keys_at) and every witness, joined regions' too. For nodes run
    beside the log (the demo and tests); a region's own node reads trust.json, which the
    operator publishes again after a region joins or the operator key changes."""
    keys = ledger.log_keys()
    verifier = operator_verifier(keys, ledger.signed_checkpoint().note)
    invariant(verifier is not None, "the newest verified checkpoint has no declared signer")
    assert verifier is not None
    return Trust(keys.origin, verifier, dict(keys.witnesses))


def initialize(url: str, keys: Path, config_path: Path | None, now: datetime) -> dict[str, Any]:
    """Schema, fresh keys for the operator, every region and its witness, the genesis,
    the trust root (keys/trust.json) and every witness's first cosignature. If anything
    fails before the genesis is durable, the private keys written are removed again."""
    config = load_config(config_path)
    if (keys / "operator.pem").exists():
        raise AlreadyInitialisedError(
            f"{keys} already holds an operator key; choose an empty folder"
        )
    ring = Keyring()
    genesis = genesis_submission(config, ring, EntryFactory(), now)
    written = ring.save(keys)
    # The keys are on disk before the genesis that names them is appended.
    try:
        ledger = Ledger.create(url, genesis, ring.keys["operator"], clock=lambda: now)
    except BaseException:
        Keyring.remove_saved(written)  # a failed init leaves no private key behind
        raise
    # Durable: the genesis and the first checkpoint. Now the trust root and cosignatures.
    trust = trust_from_ledger(ledger)
    _write_new(keys / TRUST_FILE_NAME, trust_of(ledger.log_keys(), trust.log.vkey))
    client = LocalClient(ledger)
    for region in config.regions:
        # Each witness's state file starts at the genesis it cosigns here: from now on
        # it never trusts the server's word for what it cosigned (no first-use trust).
        state = keys / witness_state_file_name(region.code)
        WitnessNode(region.code, ring.witnesses[region.code], trust, state).cosign(client, now)
    return {
        "seq": 0,
        "origin": config.origin,
        "regions": [region.code for region in config.regions],
        "keys": str(keys),
        "trust": str(keys / TRUST_FILE_NAME),
    }


def witness_state_file_name(region: str) -> str:
    """Beside the witness key: what the region's witness last cosigned."""
    return f"region-{region}.witness.state.json"


def _write_new(path: Path, value: dict[str, Any]) -> None:
    """Create ``path`` exclusively (schemas.files.write_new: never through a planted
    link, never over an existing file)."""
    data = (json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True) + "\n").encode()
    try:
        write_new(path, data, TRUST_FILE_MODE)
    except FileRefused as exc:
        if exc.exists:
            raise AlreadyInitialisedError(exc.reason) from exc
        raise ConfigError(exc.reason) from exc


def run_endorse(
    ledger: Ledger,
    region: str,
    key: PrivateKey,
    trust: Trust,
    now: datetime,
    *,
    rules: NodeRules | None = None,
    queue: Path | None = None,
    judge: Judge = no_opinion,
) -> dict[str, object]:
    node = EndorseNode(region, key, trust, rules or NodeRules(), queue)
    return node.run(LocalClient(ledger), now, judge).wire(region)


def run_witness(
    ledger: Ledger, region: str, key: PrivateKey, trust: Trust, now: datetime
) -> dict[str, object]:
    return WitnessNode(region, key, trust).cosign(LocalClient(ledger), now).wire()


__all__ = ["initialize", "run_endorse", "run_witness", "trust_from_ledger", "trust_of"]
