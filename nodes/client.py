"""What a node asks of the log, and the in-process implementation (an HTTP one follows
with the API). Everything it returns is checked by the node before use."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from ledger.app import Ledger


class LogClient(Protocol):
    def checkpoint(self) -> str:
        """The latest signed checkpoint note, with its cosignatures."""

    def leaves(self, start: int, end: int) -> list[bytes]:
        """The leaves start ≤ seq < end."""

    def consistency(self, old: int, new: int) -> list[bytes]: ...

    def awaiting(self, region: str) -> list[int]:
        """Seqs the server believes await ``region``'s decision (a hint only)."""

    def submit(self, document: dict[str, Any]) -> dict[str, Any]: ...

    def cosigned(self, region: str) -> str | None:
        """The note (with cosignatures) of the newest checkpoint the server holds a
        cosignature of ``region``'s witness on (a hint: the witness verifies it)."""

    def add_cosignature(self, region: str, size: int, line: str, timestamp_s: int) -> None: ...


@dataclass
class LocalClient:
    """A LogClient over a Ledger in the same process."""

    ledger: Ledger

    def checkpoint(self) -> str:
        return self.ledger.signed_checkpoint().note

    def leaves(self, start: int, end: int) -> list[bytes]:
        return self.ledger.leaves(start, end)

    def consistency(self, old: int, new: int) -> list[bytes]:
        if old in (0, new):
            return []
        return self.ledger.consistency(old, new).hashes

    def awaiting(self, region: str) -> list[int]:
        return self.ledger.reads().awaiting(region)

    def submit(self, document: dict[str, Any]) -> dict[str, Any]:
        return self.ledger.submit(document).wire()

    def cosigned(self, region: str) -> str | None:
        found = self.ledger.last_cosigned(region)
        return None if found is None else found.note

    def add_cosignature(self, region: str, size: int, line: str, timestamp_s: int) -> None:
        self.ledger.add_cosignature(region, size, line, timestamp_s)


__all__ = ["LocalClient", "LogClient"]
