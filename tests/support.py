"""An in-memory alliance for rule tests: a State plus keys and a clock, no database."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import ledger.kinds  # noqa: F401  (registers every kind)
from ledger.state import State, admit, make_context, region_principal
from ops.config import AllianceConfig, load_config
from ops.world import (
    Clock,
    EntryFactory,
    Keyring,
    genesis_submission,
    member_body,
    uscc,
)
from schemas.entry import format_utc
from signing.entry import submitted

START = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)


class World:
    """Keys for every principal, a log clock, and the State the entries build."""

    def __init__(self, seed: int = 1, config: AllianceConfig | None = None) -> None:
        self.config = config or load_config()
        self.ring = Keyring(seed=seed)
        self.factory = EntryFactory(seed)
        self.state = State()
        self.clock = Clock(START)
        self._serial = itertools.count(1)
        self.submit(genesis_submission(self.config, self.ring, self.factory, self.now))

    @property
    def now(self) -> datetime:
        return self.clock.now

    def tick(self, **delta: float) -> None:
        self.clock.advance(**delta)

    def sign(self, kind: str, signer: str, body: dict[str, Any], **time: float) -> dict[str, Any]:
        """A `submitted` by ``signer``; ``time`` shifts the entry time from the clock."""
        entry = self.factory.entry(kind, signer, body, self.now + timedelta(**time))
        return submitted(entry, self.ring.keys[signer])

    def sign_by(
        self, kind: str, signers: list[str], body: dict[str, Any], **time: float
    ) -> dict[str, Any]:
        """A `submitted` by ``signers[0]`` that every one of ``signers`` signed."""
        entry = self.factory.entry(kind, signers[0], body, self.now + timedelta(**time))
        return submitted(entry, *[self.ring.keys[signer] for signer in signers])

    def submit(self, sub: dict[str, Any]) -> int:
        """Admit ``sub`` at the next seq; raises the rule's RejectedError."""
        seq = self.state.size
        ctx = make_context(seq, self.now, format_utc(self.now), sub["entry"], sub["signatures"])
        admit(self.state, ctx)
        return seq

    def new_uscc(self, region: str) -> str:
        return uscc(region, next(self._serial))

    def enroll(
        self,
        region: str = "31",
        *,
        kind: str = "merchant",
        stores: list[tuple[str, str]] | None = None,
        return_days: int = 7,
        excluded: list[str] | None = None,
        member_id: str | None = None,
    ) -> str:
        """Enrol a member with stores [(store id, division)]; returns its USCC."""
        member_id = member_id or self.new_uscc(region)
        key = self.ring.ensure(member_id).public.wire()
        body = member_body(
            member_id,
            region,
            key,
            kind=kind,
            stores=stores,
            return_days=return_days,
            excluded=excluded,
        )
        self.submit(self.sign("member.enrolled", region_principal(region), body))
        return member_id
