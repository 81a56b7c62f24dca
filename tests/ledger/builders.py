"""Bodies, a recording World and refusal checks for the money and credit rule tests."""

from __future__ import annotations

import copy
import hashlib
from datetime import datetime, timedelta
from typing import Any

import pytest

from ledger.kinds.money import postings_of
from ledger.rows import ObligationRow, PostingRow, ReceiptRow
from ledger.state import State, admit, make_context
from ops.config import AllianceConfig
from ops.world import ReturnItem, entry_time, receipt_wire
from ops.world import return_body as world_return_body
from schemas.entry import format_utc
from schemas.errors import RejectedError
from schemas.identifiers import receipt_ref
from tests.support import World


class LedgerWorld(World):
    """A World that keeps every admitted submission, so tests can replay the log."""

    def __init__(self, seed: int = 1, config: AllianceConfig | None = None) -> None:
        self.log: list[tuple[datetime, dict[str, Any]]] = []
        super().__init__(seed, config)

    def _submit_at(self, sub: dict[str, Any], logged: datetime) -> int:
        seq = super()._submit_at(sub, logged)
        self.log.append((logged, sub))
        return seq

    def replay(self) -> State:
        """A fresh State rebuilt from the recorded log."""
        state = State()
        for seq, (moment, sub) in enumerate(self.log):
            ctx = make_context(seq, moment, format_utc(moment), sub["entry"], sub["signatures"])
            admit(state, ctx)
        return state

    def region_of(self, member: str) -> str:
        row = self.state.member(member)
        assert row is not None
        return f"region:{row.region}"


LINE_QTY = 100  # units each receipt line of return_body() sold


def days_ago(world: World, days: float) -> str:
    """An RFC 3339 entry-style time ``days`` before the world's clock."""
    return entry_time(world.now - timedelta(days=days))


def return_body(
    world: World,
    seller: str,
    *,
    store: str = "S1",
    accepted_store: str = "S1",
    number: str = "R-0001",
    amount_fen: int = 10_000,
    refund_fen: int = 6_000,
    purchased_days_ago: float = 2,
    categories: tuple[str, ...] = ("apparel",),
    purchased: str | None = None,
    accepted: datetime | str | None = None,
) -> dict[str, Any]:
    """A `return.recorded` body, refunded at the world's clock unless ``accepted`` says
    otherwise; the refund is split evenly over ``categories`` (one receipt line each)."""
    share, rest = divmod(refund_fen, len(categories))
    # Each category is one receipt line that sold LINE_QTY units: repeated partial
    # returns of a receipt never run into the line limit unless a test means them to.
    items = [
        ReturnItem(f"SKU{i}", category, 1, share + (rest if i == 0 else 0), i + 1, LINE_QTY)
        for i, category in enumerate(categories)
    ]
    when = purchased or days_ago(world, purchased_days_ago)
    receipt = receipt_wire(seller, store, number, when, amount_fen)
    return world_return_body(receipt, accepted_store, items, accepted or world.now)


def one_item_return(
    seller: str,
    purchased: str,
    *,
    number: str = "R-1",
    amount_fen: int = 10_000,
    refund_fen: int = 100,
    store: str = "S1",
    accepted_store: str = "S1",
    sku: str = "SKU1",
    category: str = "apparel",
    accepted: datetime | str | None = None,
) -> dict[str, Any]:
    """A `return.recorded` body of one returned item, refunded ``refund_fen``;
    ``purchased`` is an entry-style time or a local date; ``accepted`` defaults to the
    purchase time (a return at the till the consumer bought at, the day the seller was
    enrolled: its commitment starts that day)."""
    receipt = receipt_wire(seller, store, number, purchased, amount_fen)
    item = ReturnItem(sku, category, 1, refund_fen)
    if accepted is None:
        accepted = entry_time(datetime.fromisoformat(purchased))
    return world_return_body(receipt, accepted_store, [item], accepted)


def advance_body(
    liable: str, case: str = "CASE-1", amount_fen: int = 50_000, basis: str = "civil_code_524"
) -> dict[str, Any]:
    """An `advance.paid` body (the default basis is a pooled fund's, 民法典 524)."""
    return {
        "liable": liable,
        "case": case,
        "basis": basis,
        "amount_fen": amount_fen,
        "evidence_hash": hashlib.sha256(f"case file {case}".encode()).hexdigest(),
    }


def endorsement(
    world: World, signer: str, targets: list[int], decision: str = "approve", reason: str = ""
) -> dict[str, Any]:
    """A signed `endorsement` by ``signer`` (not submitted)."""
    body = {"targets": targets, "decision": decision, "reason": reason}
    return world.sign("endorsement", signer, body)


def endorse(world: World, region: str, targets: list[int], decision: str = "approve") -> int:
    reason = "" if decision == "approve" else "receipt_not_genuine"
    return world.submit(endorsement(world, f"region:{region}", targets, decision, reason))


def snapshot(state: State) -> tuple[object, ...]:
    return (
        state.size,
        state.last_logged,
        [copy.deepcopy(t.rows_by_key) for t in state.all_tables()],
        copy.deepcopy(state.member_penalties),
        copy.deepcopy(state.current_keys),
        copy.deepcopy(state.rejections),
        copy.deepcopy(state.resolutions),
        copy.deepcopy(state.evidence_notices),
    )


def refused(
    world: World, sub: dict[str, Any], error: type[RejectedError], *fragments: str
) -> RejectedError:
    """Submit ``sub``, expect ``error`` whose message names every fragment, and check
    the state did not change at all."""
    before = snapshot(world.state)
    with pytest.raises(error) as caught:
        world.submit(sub)
    for fragment in fragments:
        assert fragment in caught.value.detail, caught.value.detail
    assert snapshot(world.state) == before
    return caught.value


def obligation(world: World, seq: int) -> ObligationRow:
    row = world.state.obligations.get(seq)
    assert isinstance(row, ObligationRow)
    return row


def postings_by_seq(state: State) -> dict[int, list[PostingRow]]:
    """The postings of every obligation of ``state``, by source seq (derived, as the
    ``postings`` view derives them: they are not stored)."""
    return {row.seq: list(postings_of(row)) for row in state.obligations.rows()}


def receipt(state: State, merchant: str, number: str, store: str = "S1") -> ReceiptRow | None:
    """The receipt row of paper receipt ``number`` (the log keys it by its ref)."""
    return state.receipts.get(merchant, store, receipt_ref(merchant, store, number))


def due_regions(state: State, target: int) -> list[str]:
    """The regions that must decide ``target``, from its child rows, sorted."""
    return sorted(row.region for row in state.endorsement_dues.rows() if row.target == target)


def decisions(state: State, target: int) -> dict[str, str]:
    """region -> decision made on ``target``."""
    return {row.region: row.decision for row in state.endorsements.rows() if row.target == target}
