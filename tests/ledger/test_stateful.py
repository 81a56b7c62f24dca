"""Hypothesis state machine: random valid and invalid operations on the alliance.

After every step: seqs are gapless (the state size is the number of accepted entries),
postings balance per entry, no receipt is refunded beyond its amount, and a refused
operation changed nothing. At teardown the projections equal a replay of the accepted
entries from scratch, and every accepted entry's signatures verify.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from ledger.kinds.money import postings_of
from ledger.rows import EndorsableRow, ObligationRow, ReceiptRow
from schemas.canonical import canonical
from schemas.errors import RejectedError
from schemas.identifiers import receipt_ref
from signing.entry import verify_entry_signature
from signing.keys import PublicKey
from tests.ledger.builders import LedgerWorld, advance_body, return_body, snapshot

REGIONS = ("31", "32", "33", "34")
CATEGORIES = ("apparel", "shoes", "fresh_perishable", "gold_jewellery", "toys")


class AllianceMachine(RuleBasedStateMachine):
    """Drives an in-memory alliance; the state is the system under test."""

    def __init__(self) -> None:
        super().__init__()
        self.world = LedgerWorld(seed=7)
        self.merchants: list[str] = []
        self.fund = ""
        self.receipts = 0
        self.accepted = 0
        self.refused = 0

    @initialize()
    def enrol(self) -> None:
        for region in REGIONS:
            member = self.world.enroll(region, stores=[("S1", f"{region}0101")])
            self.merchants.append(member)
        self.fund = self.world.enroll(
            "31", kind="fund", stores=[("F1", "310118"), ("F2", "320509")]
        )

    # --- helpers -------------------------------------------------------------------------

    def _try(self, sub: dict[str, Any]) -> bool:
        before = snapshot(self.world.state)
        try:
            self.world.submit(sub)
        except RejectedError:
            assert snapshot(self.world.state) == before, "a refusal changed the state"
            self.refused += 1
            return False
        self.accepted += 1
        return True

    def _pending(self) -> list[EndorsableRow]:
        return [
            row
            for row in self.world.state.endorsables.rows()
            if isinstance(row, EndorsableRow) and row.status == "pending"
        ]

    # --- rules ---------------------------------------------------------------------------

    @rule(
        seller=st.integers(0, 3),
        buyer=st.integers(0, 3),
        refund=st.integers(1, 12_000),
        days_ago=st.sampled_from([0.5, 3, 6.5, 8, 30]),
        category=st.sampled_from(CATEGORIES),
        reuse=st.booleans(),
    )
    def record_return(
        self, seller: int, buyer: int, refund: int, days_ago: float, category: str, reuse: bool
    ) -> None:
        if not reuse or self.receipts == 0:
            self.receipts += 1
        body = return_body(
            self.world,
            self.merchants[seller],
            number=f"R-{self.receipts:05d}",
            amount_fen=10_000,
            refund_fen=refund,
            purchased_days_ago=days_ago,
            categories=(category,),
        )
        if reuse:
            # A later return on a known receipt must repeat its purchase time.
            known = self.world.state.receipts.get(
                self.merchants[seller],
                "S1",
                receipt_ref(self.merchants[seller], "S1", f"R-{self.receipts:05d}"),
            )
            if known is not None and known.purchased is not None:
                body["receipt"]["purchased"] = known.purchased
        self._try(self.world.sign("return.recorded", self.merchants[buyer], body))

    @rule(liable=st.integers(0, 3), amount=st.integers(1, 90_000), case=st.integers(0, 20))
    def pay_advance(self, liable: int, amount: int, case: int) -> None:
        body = advance_body(self.merchants[liable], f"CASE-{case}", amount)
        self._try(self.world.sign("advance.paid", self.fund, body))

    @precondition(lambda self: bool(self._pending()))
    @rule(data=st.data(), approve=st.booleans(), region=st.sampled_from(REGIONS))
    def endorse(self, data: st.DataObject, approve: bool, region: str) -> None:
        target = data.draw(st.sampled_from(self._pending())).target
        body = {
            "targets": [target],
            "decision": "approve" if approve else "reject",
            "reason": "" if approve else "receipt_not_genuine",
        }
        self._try(self.world.sign("endorsement", f"region:{region}", body))

    @precondition(lambda self: bool(self.world.state.obligations))
    @rule(data=st.data(), by_debtor=st.booleans())
    def dispute(self, data: st.DataObject, by_debtor: bool) -> None:
        rows = list(self.world.state.obligations.rows())
        target = data.draw(st.sampled_from(rows))
        assert isinstance(target, ObligationRow)
        signer = target.debtor if by_debtor else target.creditor
        if signer == self.fund:
            signer = self.merchants[0]
        body = {"target": target.seq, "reason": "not_our_sale"}
        self._try(self.world.sign("claim.disputed", signer, body))

    @precondition(lambda self: bool(self.world.state.disputes))
    @rule(data=st.data(), upheld=st.booleans())
    def resolve(self, data: st.DataObject, upheld: bool) -> None:
        dispute = data.draw(st.sampled_from(list(self.world.state.disputes.rows())))
        debtor = self.world.state.member(dispute.debtor)
        assert debtor is not None
        body = {"dispute": dispute.seq, "outcome": "upheld" if upheld else "dismissed"}
        self._try(self.world.sign("dispute.resolved", f"region:{debtor.region}", body))

    @rule(member=st.integers(0, 3), suspend=st.booleans())
    def status(self, member: int, suspend: bool) -> None:
        uscc = self.merchants[member]
        kind = "member.suspended" if suspend else "member.reinstated"
        region = REGIONS[member]
        self._try(self.world.sign(kind, f"region:{region}", {"member": uscc, "reason": "检查"}))

    @rule(signer=st.integers(0, 3))
    def forged(self, signer: int) -> None:
        """A return whose signature is by the wrong member's key is always refused."""
        body = return_body(self.world, self.merchants[0], number="R-forged")
        sub = self.world.sign("return.recorded", self.merchants[signer], body)
        other = self.world.ring.keys[self.merchants[(signer + 1) % 4]]
        sub["signatures"] = [{"key": other.key_id, "sig": sub["signatures"][0]["sig"]}]
        assert not self._try(sub)

    @rule(hours=st.integers(1, 72))
    def tick(self, hours: int) -> None:
        self.world.tick(hours=hours)

    # --- invariants ----------------------------------------------------------------------

    @invariant()
    def gapless(self) -> None:
        assert self.world.state.size == len(self.world.log)

    @invariant()
    def postings_balance(self) -> None:
        """Each obligation's two derived postings sum to zero, whatever its status."""
        for row in self.world.state.obligations.rows():
            payable, receivable = postings_of(row)
            assert (payable.seq, receivable.seq) == (row.seq, row.seq)
            assert payable.amount_fen + receivable.amount_fen == 0

    @invariant()
    def no_over_refund(self) -> None:
        """A receipt counts exactly its live returns, within its amount; with none it is free."""
        live: dict[tuple[str, str, str], list[int]] = {}
        for returned in self.world.state.receipt_returns.rows():
            if returned.status == "live":
                key = (returned.merchant, returned.store, returned.ref)
                live.setdefault(key, []).append(returned.refund_fen)
        for row in self.world.state.receipts.rows():
            assert isinstance(row, ReceiptRow)
            refunds = live.get((row.merchant, row.store, row.ref), [])
            assert (row.refunded_fen, row.returns) == (sum(refunds), len(refunds))
            if refunds:
                assert row.amount_fen is not None
                assert 0 < row.refunded_fen <= row.amount_fen
            else:
                assert (row.amount_fen, row.purchased) == (None, None)

    def teardown(self) -> None:
        replayed = self.world.replay()
        assert replayed.all_tables() == self.world.state.all_tables()
        assert replayed.size == self.world.state.size
        self._verify_all()

    def _verify_all(self) -> None:
        """Every accepted entry's signatures verify under a key its signer held then."""
        state = self.world.state
        for seq, (_moment, sub) in enumerate(self.world.log[1:], start=1):
            entry_bytes = canonical(sub["entry"])
            for signature in sub["signatures"]:
                row = state.key(signature["key"])
                assert row is not None, f"seq {seq} signed by an unknown key"
                assert row.from_seq <= seq
                assert row.until_seq is None or seq < row.until_seq
                public = PublicKey.from_wire({"key": row.key_id, "pub": row.pub})
                verify_entry_signature(entry_bytes, signature, public)
        kinds = Counter(sub["entry"]["kind"] for _, sub in self.world.log)
        event(f"accepted kinds: {len(kinds)}")
        event(f"refused some: {self.refused > 0}")


AllianceMachine.TestCase.settings = settings(
    max_examples=40,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestAlliance = AllianceMachine.TestCase
