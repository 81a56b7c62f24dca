"""Principals' keys, entry builders, a log clock and fresh PostgreSQL schemas: one copy
of each, shared by `alliance init`, the demo, the benchmarks and the tests."""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

from sqlalchemy import text
from sqlalchemy.engine import make_url

from ledger.calendar import LOCAL, local_date
from ledger.db import make_engine
from ledger.state import OPERATOR, region_principal
from ops.config import AllianceConfig
from schemas.errors import KeyFileError, invariant
from schemas.identifiers import make_uscc, receipt_ref
from signing.entry import submitted
from signing.keys import (
    KEY_FOLDER_MODE,
    PrivateKey,
    fsync_key_folder,
    principal_file_name,
    witness_file_name,
)

SHANGHAI = LOCAL  # ledger.calendar: UTC+8, no daylight saving since 1991


def witness_name(origin: str, code: str) -> str:
    """A witness's C2SP key name: no spaces or '+', unique per region and log."""
    return f"{origin}/witness/region-{code}"


def entry_time(moment: datetime) -> str:
    """Entry times are local (Asia/Shanghai) RFC 3339 with an explicit offset."""
    return moment.astimezone(SHANGHAI).isoformat(timespec="seconds")


@dataclass
class Clock:
    """A log clock that moves only when told to (never by sleeping): the sequencer's
    clock and the time of entries, in the demo and the tests."""

    now: datetime

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now

    def set(self, moment: datetime) -> None:
        """Move to ``moment``; a log clock never goes back."""
        invariant(moment >= self.now, f"the clock went back to {moment}")
        self.now = moment


def uscc(region: str, serial: int) -> str:
    """A valid USCC, distinct per (region, serial) for serials below 10**7: the numbered
    members of the bench and the tests (the demo draws realistic ones)."""
    return make_uscc(f"9{region[0]}{region}0000MA{serial:07d}")


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

    def save(self, directory: Path, passphrase: bytes | None = None) -> list[Path]:
        """DIR/<principal>.pem (`:` written `-`) and DIR/region-NN.witness.pem, each a new
        file (KeyFileError if one exists). All or nothing: on any failure the files this
        call made are removed before the error goes on. Returns the paths written, for
        ``remove_saved`` should what the keys were made for (the genesis) fail."""
        named = [(principal_file_name(p), key) for p, key in self.keys.items()]
        named += [(witness_file_name(code), key) for code, key in self.witnesses.items()]
        for name, _ in named:
            if Path(name).name != name or name.startswith("."):
                raise KeyFileError(f"{name!r} is not a plain file name for a key")
        try:
            directory.mkdir(mode=KEY_FOLDER_MODE, parents=True, exist_ok=True)
        except OSError as exc:
            raise KeyFileError(f"cannot create keys folder {directory}: {exc}") from exc
        written: list[Path] = []
        try:
            for name, key in named:
                key.save(directory / name, passphrase, sync_folder=False)
                written.append(directory / name)
            fsync_key_folder(directory)
        except BaseException:
            self.remove_saved(written)
            raise
        return written

    @staticmethod
    def remove_saved(paths: list[Path]) -> None:
        """Delete key files a ``save`` wrote (a private key must not outlive a failed
        init), and make the removal durable."""
        for path in paths:
            path.unlink(missing_ok=True)
        for folder in {path.parent for path in paths}:
            fsync_key_folder(folder)

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
    network: list[str] | None = None,
) -> dict[str, Any]:
    """A `member.enrolled` body. ``stores`` are (store id, division) pairs, by default
    one store "S1" in the region's first district; ``key`` is the wire form of the key;
    ``network`` the members whose receipts it honours and bills."""
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
            "network": network or [],
        }
    }


def numbered_stores(region: str, count: int) -> list[tuple[str, str]]:
    """Stores S1..S<count>, all in the region's first district."""
    return [(f"S{n}", f"{region}0101") for n in range(1, count + 1)]


class ReturnItem(NamedTuple):
    """One returned line of a receipt. ``line`` 0 numbers the items 1, 2, … in order, and
    ``line_qty`` 0 says the line sold exactly the units returned."""

    sku: str
    category: str
    qty: int
    refund_fen: int
    line: int = 0
    line_qty: int = 0


def local_day(moment: str | datetime) -> str:
    """The Asia/Shanghai date (YYYY-MM-DD) of an entry-style time or an aware datetime;
    a date passes through."""
    if isinstance(moment, str) and len(moment) == len("2026-01-01"):
        return moment
    when = datetime.fromisoformat(moment) if isinstance(moment, str) else moment
    return local_date(when).isoformat()


def receipt_wire(
    merchant: str, store: str, number: str, purchased: str | datetime, amount_fen: int
) -> dict[str, Any]:
    """The receipt of a `return.recorded` body, by its ``ref`` (the number itself never
    leaves the till); ``purchased`` is a local date, an entry-style time or a datetime."""
    return {
        "merchant": merchant,
        "store": store,
        "ref": receipt_ref(merchant, store, number),
        "purchased": local_day(purchased),
        "amount_fen": amount_fen,
    }


def return_body(
    receipt: dict[str, Any],
    accepted_store: str,
    items: Sequence[ReturnItem],
    accepted: str | datetime,
) -> dict[str, Any]:
    """A `return.recorded` body: the receipt (``receipt_wire``), the store that took the
    goods back, when it refunded the consumer, and the items; the refund is the sum of
    the items' refunds."""
    wire_items = []
    for number, item in enumerate(items, start=1):
        wire = item._asdict()
        wire["line"] = item.line or number
        wire["line_qty"] = item.line_qty or item.qty
        wire_items.append(wire)
    return {
        "receipt": receipt,
        "accepted_store": accepted_store,
        "accepted": accepted if isinstance(accepted, str) else entry_time(accepted),
        "refund_fen": sum(item.refund_fen for item in items),
        "items": wire_items,
    }


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


# --- fresh PostgreSQL schemas ------------------------------------------------------------


def schema_url(base: str, schema: str) -> str:
    """``base`` with ``?options=-csearch_path%3D<schema>``: every connection of an engine
    on it then lives in ``schema``."""
    parsed = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
    return parsed.render_as_string(hide_password=False)


@contextmanager
def fresh_schema(base: str, schema: str) -> Iterator[str]:
    """A new, empty schema ``schema`` in the PostgreSQL database of ``base``: yields its
    ``schema_url`` and drops it, with all it holds, on the way out."""
    admin = make_engine(base)
    try:
        with admin.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
        try:
            yield schema_url(base, schema)
        finally:
            with admin.begin() as connection:
                connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    finally:
        admin.dispose()
