"""Following the log as a region's node does: fetch the leaves up to the latest
checkpoint signed by the trusted log key, prove they hash to its root from the tree this
node verified before, and replay each through the alliance's rules with every signature
checked under the keys the log itself declared. The node's state is what it verified."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import ledger.kinds  # noqa: F401  (registers every kind)
from ledger import merkle
from ledger.audit import Trust
from ledger.state import Context, State, admit, leaf_context
from nodes.client import LogClient
from schemas.errors import MalformedError, RejectedError, VerificationError
from schemas.limits import FETCH_LEAVES_MAX
from signing.checkpoint import Checkpoint, open_checkpoint


@dataclass
class Follower:
    """A verified replica of the log's state, grown by ``sync()``."""

    trust: Trust
    state: State = field(default_factory=State)
    frontier: dict[merkle.TileKey, bytes] = field(default_factory=dict)
    root: bytes = merkle.EMPTY_ROOT
    # Set once a sync failed: the state may hold leaves that did not verify, so the
    # follower refuses to serve; start a new one.
    broken: bool = False
    # Called after each admitted leaf, so a node can keep what it will need.
    keep: Callable[[State, Context], None] | None = None

    def sync(self, client: LogClient) -> Checkpoint:
        """Catch up with the latest checkpoint; returns it. Raises VerificationError if
        the checkpoint is not the trusted log's, the leaves do not hash to its root, or
        a leaf breaks the rules."""
        if self.broken:
            raise VerificationError("this follower saw a log that did not verify")
        self.broken = True
        try:
            checkpoint = open_checkpoint(client.checkpoint(), self.trust.log)
        except MalformedError as exc:  # the server's garbage, not the caller's mistake
            raise VerificationError(f"the log served no checkpoint: {exc.detail}") from exc
        if checkpoint.origin != self.trust.origin:
            raise VerificationError(f"checkpoint of {checkpoint.origin}, not {self.trust.origin}")
        size = self.state.size
        if checkpoint.size < size:
            raise VerificationError(f"the log shrank from {size} to {checkpoint.size}")
        while size < checkpoint.size:
            end = min(checkpoint.size, size + FETCH_LEAVES_MAX)
            leaves = client.leaves(size, end)
            if len(leaves) != end - size:
                raise VerificationError(f"asked for leaves {size}..{end}, got {len(leaves)}")
            self._apply(leaves)
            size = end
        if self.root != checkpoint.root:
            raise VerificationError(f"the leaves do not hash to the root of {checkpoint.size}")
        self.broken = False
        return checkpoint

    def _apply(self, leaves: list[bytes]) -> None:
        start = self.state.size
        for leaf in leaves:
            try:
                ctx = leaf_context(leaf, expected_seq=self.state.size)
                admit(self.state, ctx)
            except RejectedError as exc:
                raise VerificationError(
                    f"seq {self.state.size} breaks the rules: {exc.detail}"
                ) from exc
            if self.keep is not None:
                self.keep(self.state, ctx)
        self.state.forget_changes()
        integration = merkle.integrate(start, self.frontier, [merkle.leaf_hash(x) for x in leaves])
        merged = {**self.frontier, **integration.tiles}
        self.frontier = {key: merged[key] for key in merkle.frontier_tile_keys(integration.size)}
        self.root = integration.root
