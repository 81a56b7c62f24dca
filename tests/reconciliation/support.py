"""Shared builders for the reconciliation tests: obligations, the shipped policy calendar,
and a hypothesis strategy of nights."""

from __future__ import annotations

from datetime import date

from hypothesis import strategies as st

from ops.config import load_config
from reconciliation.netting import Obligation
from schemas.bodies import CalendarModel

DAY = date(2026, 12, 1)
CUTOFF_ROOT = bytes(range(32))
SETTLEMENT_DAYS = 3
MEMBERS = [f"M{n}" for n in range(8)]


def shipped_calendar() -> CalendarModel:
    """The calendar of the policy shipped in ops/yrd.json: weekends off, fixed holidays."""
    return CalendarModel.model_validate(load_config().policy["calendar"])


def ob(seq: int, debtor: str, creditor: str, amount_fen: int, kind: str = "return") -> Obligation:
    return Obligation(seq, kind, debtor, creditor, amount_fen)


@st.composite
def nights(draw: st.DrawFn, max_size: int = 40) -> list[Obligation]:
    """Obligations among a few members (ties and cancelling debts are likely), distinct
    seqs in no particular order, amounts from 1 fen to large but safe."""
    count = draw(st.integers(0, max_size))
    seqs = draw(st.lists(st.integers(0, 10_000), min_size=count, max_size=count, unique=True))
    members = st.sampled_from([*MEMBERS, "91310000MA00000011", "Z"])
    amounts = st.one_of(st.integers(1, 1000), st.integers(1, 2**40))
    result = []
    for seq in seqs:
        debtor = draw(members)
        creditor = draw(members.filter(lambda m, d=debtor: m != d))
        result.append(ob(seq, debtor, creditor, draw(amounts), draw(st.sampled_from(KINDS))))
    return result


KINDS = ["return", "advance", "reversal"]
