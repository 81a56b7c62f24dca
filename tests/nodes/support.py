"""Shared pieces of the node tests: merchants and returns on an alliance, and a LogClient
that lies (it wraps the honest LocalClient and changes what it serves)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ledger.app import Ledger
from ledger.state import leaf_context
from nodes.client import LocalClient
from ops.world import ReturnItem, entry_time, receipt_wire, return_body
from tests.conftest import Alliance


def merchants(alliance: Alliance) -> tuple[str, str]:
    """A seller in region 31 and a buyer (the accepting merchant) in region 32."""
    seller = alliance.enroll_doc("31")
    buyer = alliance.enroll_doc("32", network=[seller["entry"]["body"]["member"]["id"]])
    for result in alliance.ledger.submit_many([seller, buyer]):
        assert not isinstance(result, Exception), result
    return (
        seller["entry"]["body"]["member"]["id"],
        buyer["entry"]["body"]["member"]["id"],
    )


def record_return(alliance: Alliance, seller: str, buyer: str, refund_fen: int, number: str) -> int:
    """A cross-region return: ``buyer`` refunded, at its store S1, goods ``seller`` sold
    at its store S1; returns its seq."""
    now = alliance.clock()
    receipt = receipt_wire(seller, "S1", number, entry_time(now), 100_000)
    body = return_body(receipt, "S1", [ReturnItem("SKU1", "apparel", 1, refund_fen)], now)
    signed = alliance.factory.signed(alliance.ring, "return.recorded", buyer, body, now)
    return alliance.ledger.submit(signed).seq


def decisions(ledger: Ledger, start: int) -> list[tuple[str, dict[str, Any]]]:
    """(signer, body) of every endorsement logged at or after ``start``."""
    found = []
    for seq, leaf in enumerate(ledger.leaves(start, ledger.size()), start):
        entry = leaf_context(leaf, expected_seq=seq).entry
        if entry["kind"] == "endorsement":
            found.append((str(entry["signer"]), dict(entry["body"])))
    return found


@dataclass
class Hostile:
    """A LogClient over the honest one that serves what the test sets, and records what
    the node sent it (so a test can assert that nothing was submitted or cosigned)."""

    honest: LocalClient
    note: str | None = None  # served as the latest checkpoint
    flip: tuple[int, bytes, bytes] | None = None  # (seq, old, new): that leaf edited
    hide: int = 0  # leaves left off the end of every answer
    hint: list[int] = field(default_factory=list)  # seqs added to awaiting()
    cosigned_note: str | None = None  # served by cosigned() when use_cosigned
    use_cosigned: bool = False
    proof: list[bytes] | None = None  # served as every consistency proof
    submitted: list[dict[str, Any]] = field(default_factory=list)
    cosignatures: list[tuple[str, int, str]] = field(default_factory=list)
    consistency_asked: list[tuple[int, int]] = field(default_factory=list)

    def checkpoint(self) -> str:
        return self.note if self.note is not None else self.honest.checkpoint()

    def leaves(self, start: int, end: int) -> list[bytes]:
        leaves = self.honest.leaves(start, end)
        if self.flip is not None and start <= self.flip[0] < end:
            seq, old, new = self.flip
            leaf = leaves[seq - start]
            assert leaf.count(old) >= 1, (old, leaf)
            leaves[seq - start] = leaf.replace(old, new, 1)
        return leaves[: len(leaves) - self.hide]

    def consistency(self, old: int, new: int) -> list[bytes]:
        self.consistency_asked.append((old, new))
        return self.proof if self.proof is not None else self.honest.consistency(old, new)

    def awaiting(self, region: str) -> list[int]:
        return sorted({*self.honest.awaiting(region), *self.hint})

    def submit(self, document: dict[str, Any]) -> dict[str, Any]:
        self.submitted.append(document)
        return self.honest.submit(document)

    def cosigned(self, region: str) -> str | None:
        return self.cosigned_note if self.use_cosigned else self.honest.cosigned(region)

    def add_cosignature(self, region: str, size: int, line: str, timestamp_s: int) -> None:
        self.cosignatures.append((region, size, line))
        self.honest.add_cosignature(region, size, line, timestamp_s)
