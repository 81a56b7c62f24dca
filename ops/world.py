"""Principals' keys and entry builders, shared by `alliance init`, the demo and tests."""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from ledger.state import OPERATOR, region_principal
from ops.config import AllianceConfig
from schemas.errors import KeyFileError
from signing.entry import submitted
from signing.keys import PrivateKey, principal_file_name, witness_file_name

SHANGHAI = timezone(timedelta(hours=8), "Asia/Shanghai")


def witness_name(origin: str, code: str) -> str:
    """A witness's C2SP key name: no spaces or '+', unique per region and log."""
    return f"{origin}/witness/region-{code}"


def entry_time(moment: datetime) -> str:
    """Entry times are local (Asia/Shanghai) RFC 3339 with an explicit offset."""
    return moment.astimezone(SHANGHAI).isoformat(timespec="seconds")


@dataclass
class Keyring:
    """Signing keys by principal, and witness keys by region code."""

    keys: dict[str, PrivateKey] = field(default_factory=dict)
    witnesses: dict[str, PrivateKey] = field(default_factory=dict)
    seed: int | None = None

    def _new_key(self, label: str) -> PrivateKey:
        if self.seed is None:
            return PrivateKey.generate()
        return PrivateKey.from_seed(f"{self.seed}/{label}".encode())

    def ensure(self, principal: str) -> PrivateKey:
        if principal not in self.keys:
            self.keys[principal] = self._new_key(principal)
        return self.keys[principal]

    def ensure_witness(self, code: str) -> PrivateKey:
        if code not in self.witnesses:
            self.witnesses[code] = self._new_key(f"witness/{code}")
        return self.witnesses[code]

    def rotate(self, principal: str, generation: int) -> PrivateKey:
        self.keys[principal] = self._new_key(f"{principal}#{generation}")
        return self.keys[principal]

    def save(self, directory: Path, passphrase: bytes | None = None) -> None:
        """DIR/<principal>.pem (`:` written `-`) and DIR/region-NN.witness.pem."""
        directory.mkdir(parents=True, exist_ok=True)
        for principal, key in self.keys.items():
            key.save(directory / principal_file_name(principal), passphrase)
        for code, key in self.witnesses.items():
            key.save(directory / witness_file_name(code), passphrase)

    @classmethod
    def load(cls, directory: Path, passphrase: bytes | None = None) -> Keyring:
        if not directory.is_dir():
            raise KeyFileError(f"keys folder {directory} does not exist")
        ring = cls()
        for path in sorted(directory.glob("*.pem")):
            name = path.name.removesuffix(".pem")
            if name.endswith(".witness"):
                code = name.removesuffix(".witness").removeprefix("region-")
                ring.witnesses[code] = PrivateKey.load(path, passphrase)
            else:
                principal = name.replace("region-", "region:", 1)
                ring.keys[principal] = PrivateKey.load(path, passphrase)
        return ring


def member_body(
    member_id: str,
    region: str,
    key: dict[str, str],
    *,
    kind: str = "merchant",
    name: str | None = None,
    stores: list[tuple[str, str]] | None = None,
    return_days: int = 7,
    excluded: list[str] | None = None,
) -> dict[str, Any]:
    """A `member.enrolled` body. ``stores`` are (store id, division) pairs, by default
    one store "S1" in the region's first district; ``key`` is the wire form of the key."""
    store_list = stores if stores is not None else [("S1", f"{region}0101")]
    return {
        "member": {
            "id": member_id,
            "name": name or f"member {member_id}",
            "kind": kind,
            "region": region,
            "stores": [{"id": s, "division": d, "name": f"store {s}"} for s, d in store_list],
            "commitment": {"return_days": return_days, "excluded": excluded or []},
            "keys": [key],
        }
    }


def numbered_stores(region: str, count: int) -> list[tuple[str, str]]:
    """Stores S1..S<count>, all in the region's first district."""
    return [(f"S{n}", f"{region}0101") for n in range(1, count + 1)]


class EntryFactory:
    """Builds entries with fresh (or, under a seed, reproducible) ids."""

    def __init__(self, seed: int | None = None) -> None:
        # Reproducible ids for the demo and tests only; without a seed ids are uuid4.
        self._random = random.Random(seed) if seed is not None else None  # noqa: S311

    def new_id(self) -> str:
        if self._random is None:
            return str(uuid.uuid4())
        return str(uuid.UUID(int=self._random.getrandbits(128), version=4))

    def entry(self, kind: str, signer: str, body: dict[str, Any], time: datetime) -> dict[str, Any]:
        return {
            "v": 1,
            "kind": kind,
            "id": self.new_id(),
            "time": entry_time(time),
            "signer": signer,
            "body": body,
        }

    def signed(
        self, keyring: Keyring, kind: str, signer: str, body: dict[str, Any], time: datetime
    ) -> dict[str, Any]:
        """A `submitted` signed by ``signer``'s key."""
        return submitted(self.entry(kind, signer, body, time), keyring.keys[signer])


def genesis_submission(
    config: AllianceConfig, keyring: Keyring, factory: EntryFactory, time: datetime
) -> dict[str, Any]:
    """The genesis, signed by the operator and by every region."""
    regions = []
    for region in config.regions:
        key = keyring.ensure(region_principal(region.code))
        witness = keyring.ensure_witness(region.code)
        regions.append(
            {
                "code": region.code,
                "name": region.name,
                "keys": [key.public.wire()],
                "witness": {
                    "name": witness_name(config.origin, region.code),
                    "pub": witness.public.b64,
                },
            }
        )
    operator = keyring.ensure(OPERATOR)
    body = {
        "origin": config.origin,
        "regions": regions,
        "operator_keys": [operator.public.wire()],
        "policy": config.policy,
    }
    entry = factory.entry("region.genesis", OPERATOR, body, time)
    signers = [operator] + [keyring.keys[region_principal(r.code)] for r in config.regions]
    return submitted(entry, *signers)
