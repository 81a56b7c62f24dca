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
# The genesis and the members a test enrols before its first other entry are logged this
# long before START: their commitments bind the purchases a test dates days back.
SETUP_LEAD = timedelta(days=60)


class World:
    """Keys for every principal, a log clock, and the State the entries build."""

    def __init__(self, seed: int = 1, config: AllianceConfig | None = None) -> None:
        self.config = config or load_config()
        self.ring = Keyring(seed=seed)
        self.factory = EntryFactory(seed)
        self.state = State()
        self.clock = Clock(START)
        # The setup clock logs the genesis and the enrolments made before any other entry.
        self._setup: Clock | None = Clock(START - SETUP_LEAD)
        self._serial = itertools.count(1)
        self.enrolled: list[str] = []
        self._submit_at(
            genesis_submission(self.config, self.ring, self.factory, self._setup.now),
            self._setup.now,
        )

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
        """Admit ``sub`` at the next seq, logged at the clock; raises the rule's
        RejectedError. Ends the setup: later enrolments are logged at the clock too."""
        self._setup = None
        return self._submit_at(sub, self.now)

    def _submit_at(self, sub: dict[str, Any], logged: datetime) -> int:
        seq = self.state.size
        ctx = make_context(seq, logged, format_utc(logged), sub["entry"], sub["signatures"])
        admit(self.state, ctx)
        return seq

    def link(self, member: str, *peers: str) -> int:
        """Add ``peers`` to ``member``'s network (member.network_changed, signed by its
        region and co-signed by the member)."""
        row = self.state.member(member)
        assert row is not None
        network = sorted(self.state.network_of.get(member, set()) | set(peers))
        body = {"member": member, "network": network}
        return self.submit(
            self.sign_by("member.network_changed", [region_principal(row.region), member], body)
        )

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
        network: list[str] | None = None,
    ) -> str:
        """Enrol a member with stores [(store id, division)]; returns its USCC. Its
        network is ``network``, by default every member this world enrolled before it
        (so a later member honours an earlier one's receipts, not the other way round)."""
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
            network=list(self.enrolled) if network is None else network,
        )
        signer = region_principal(region)
        if self._setup is None:
            self.submit(self.sign("member.enrolled", signer, body))
        else:  # before any other entry: logged at the setup clock, a second apart
            moment = self._setup.advance(seconds=1)
            entry = self.factory.entry("member.enrolled", signer, body, moment)
            self._submit_at(submitted(entry, self.ring.keys[signer]), moment)
        self.enrolled.append(member_id)
        return member_id
