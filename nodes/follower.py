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
from ledger.calendar import local_date
from ledger.state import Context, State, admit, leaf_context
from nodes.client import LogClient
from schemas.entry import parse_time
from schemas.errors import MalformedError, PolicyError, RejectedError, VerificationError
from schemas.limits import FETCH_LEAVES_MAX
from signing.checkpoint import Checkpoint, open_checkpoint


@dataclass
class Follower:
    """A verified replica of the log's state, grown by ``sync()``."""

    trust: Trust
    state: State = field(default_factory=State)
    frontier: dict[merkle.TileKey, bytes] = field(default_factory=dict)
    root: bytes = merkle.EMPTY_ROOT
    root_size: int = 0  # the tree size ``root`` and ``frontier`` are of
    # The root at each business day's end: one per day the follower saw.
    day_roots: dict[int, bytes] = field(default_factory=dict)
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

    def __post_init__(self) -> None:
        self.state.tree_root = self._root_at

    def _root_at(self, size: int) -> bytes:
        """The root at a business day's end (a night's cutoff), from the leaves this
        follower hashed itself (the checkpoint check at the end of sync covers them)."""
        root = self.day_roots.get(size)
        if root is None:
            raise PolicyError(f"no business day ends at tree size {size}", field="body.cutoff")
        return root

    def _apply(self, leaves: list[bytes]) -> None:
        pending: list[bytes] = []  # leaf hashes not integrated yet
        for leaf in leaves:
            try:
                ctx = leaf_context(leaf, expected_seq=self.state.size)
                last = self.state.last_logged
                if last is not None and local_date(ctx.logged) > local_date(parse_time(last)):
                    self._integrate(pending)  # the tree holds exactly the days before
                    pending = []
                    self.day_roots[ctx.seq] = self.root
                admit(self.state, ctx)
            except RejectedError as exc:
                raise VerificationError(
                    f"seq {self.state.size} breaks the rules: {exc.detail}"
                ) from exc
            pending.append(merkle.leaf_hash(leaf))
            if self.keep is not None:
                self.keep(self.state, ctx)
        self.state.forget_changes()
        self.state.reports.clear()  # the node checks nights; it stores no report
        self._integrate(pending)

    def _integrate(self, leaf_hashes: list[bytes]) -> None:
        if not leaf_hashes:
            return
        start = self.root_size
        integration = merkle.integrate(start, self.frontier, leaf_hashes)
        merged = {**self.frontier, **integration.tiles}
        self.frontier = {key: merged[key] for key in merkle.frontier_tile_keys(integration.size)}
        self.root, self.root_size = integration.root, integration.size
