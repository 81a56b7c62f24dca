"""A region's endorsement node: follow the log, find the entries awaiting this region's
decision, judge each by the rules it states, sign approve/reject decisions in batches of
at most ENDORSEMENT_TARGETS_MAX, and leave what its rules cannot decide to a person
(`alliance endorse --review`). It holds only the region's key.

The node's rules (``NodeRules``, from its own configuration):
* the entry's signer and the party that would owe money are members in good standing:
  active, under no credit measure (warning, suspension, delisting);
* the amount is at most ``auto_approve_max_fen``.
An entry meeting both is approved; any other goes to the review queue with the reasons.
A caller may pass a ``Judge`` (the regulator's own knowledge: complaint records, POS
checks) whose verdict, when it gives one, comes first.
"""

from __future__ import annotations

import json
import os
import tempfile
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from ledger.audit import Trust
from ledger.state import Context, State
from nodes.client import LogClient
from nodes.credit import CreditDesk, CreditOutcome
from nodes.follower import Follower
from schemas.errors import MalformedError, PolicyError
from schemas.limits import DEFAULT_AUTO_APPROVE_MAX_FEN, ENDORSEMENT_TARGETS_MAX, REVIEW_QUEUE_MAX
from signing.entry import submitted
from signing.keys import PrivateKey

SHANGHAI = timezone(timedelta(hours=8), "Asia/Shanghai")


@dataclass(frozen=True, slots=True)
class NodeRules:
    auto_approve_max_fen: int = DEFAULT_AUTO_APPROVE_MAX_FEN

    @classmethod
    def load(cls, path: Path | None) -> NodeRules:
        if path is None:
            return cls()
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            limit = raw["auto_approve_max_fen"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise MalformedError(f"node configuration {path} unreadable: {exc}") from exc
        if type(limit) is not int or limit < 0:
            raise MalformedError("auto_approve_max_fen is a non-negative integer of fen")
        return cls(auto_approve_max_fen=limit)


@dataclass(frozen=True, slots=True)
class Awaiting:
    """An entry awaiting this region's decision, as the node verified it."""

    target: int
    kind: str
    entry: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Decision:
    approve: bool
    reason: str


Judge = Callable[[Awaiting], Decision | None]


def no_opinion(_item: Awaiting) -> Decision | None:
    return None


@dataclass
class Outcome:
    approved: int = 0
    rejected: int = 0
    queued: list[int] = field(default_factory=list)
    credit: CreditOutcome = field(default_factory=CreditOutcome)

    def wire(self, region: str) -> dict[str, object]:
        return {
            "region": region,
            "approved": self.approved,
            "rejected": self.rejected,
            "queued": self.queued,
            **({"credit": self.credit.wire()} if self.credit.acted() else {}),
        }


def awaiting_region(state: State, region: str) -> list[int]:
    """Seqs of pending entries that ``region`` must decide and has not, oldest first.

    One pass over the endorsables, each judged by two dictionary look-ups in its child
    rows (due regions, decisions): no JSON is parsed."""
    dues = state.endorsement_dues
    decisions = state.endorsements
    return sorted(
        row.target
        for row in state.endorsables.rows()
        if row.status == "pending"
        and dues.get(row.target, region) is not None
        and decisions.get(row.target, region) is None
    )


DEFAULT_REJECTION = "rejected_by_region"  # a judge's rejection that names no reason


def file_verdict(
    target: int,
    verdict: Decision | None,
    concerns: list[str],
    approvals: list[int],
    rejections: dict[str, list[int]],
    queued: dict[int, list[str]],
) -> None:
    """File ``target`` under the judge's ``verdict``, or, with no verdict, under the
    node's rules: any concern queues it for a person, none approves it. The in-process
    and the HTTP node decide by this one rule."""
    if verdict is None:
        if concerns:
            queued[target] = concerns
            return
        verdict = Decision(True, "")
    if verdict.approve:
        approvals.append(target)
    else:
        rejections.setdefault(verdict.reason or DEFAULT_REJECTION, []).append(target)


class EndorseNode:
    """One region's node. Keep it between runs: it follows the log incrementally."""

    def __init__(
        self,
        region: str,
        key: PrivateKey,
        trust: Trust,
        rules: NodeRules = NodeRules(),
        queue_path: Path | None = None,
        new_id: Callable[[], str] = lambda: str(uuid.uuid4()),
    ) -> None:
        self.region = region
        self.new_id = new_id
        self.signer = f"region:{region}"
        self.key = key
        self.rules = rules
        self.queue = ReviewQueue(queue_path)
        self.follower = Follower(trust, keep=self._keep)
        self._entries: dict[int, dict[str, Any]] = {}
        # Issue 8 rule 7: the credit process for its members' overdue instructions.
        self.credit: CreditDesk | None = CreditDesk(region, key, new_id)

    def _keep(self, state: State, ctx: Context) -> None:
        """Remember the entries that will await this region (to judge them later)."""
        if state.endorsement_dues.get(ctx.seq, self.region) is not None:
            self._entries[ctx.seq] = ctx.entry

    def run(self, client: LogClient, now: datetime, judge: Judge = no_opinion) -> Outcome:
        """Sync, judge everything awaiting this region, submit the decisions."""
        self.follower.sync(client)
        self._check_own_key()
        outcome = Outcome()
        approvals: list[int] = []
        rejections: dict[str, list[int]] = {}
        queued: dict[int, list[str]] = {}
        for item in self._awaiting(client):
            verdict = judge(item)
            concerns = [] if verdict is not None else self._concerns(item)
            file_verdict(item.target, verdict, concerns, approvals, rejections, queued)
        self.queue.hold(queued, now)
        outcome.queued = sorted(queued)
        self._submit(client, now, approvals, rejections, outcome)
        if self.credit is not None:
            outcome.credit = self.credit.run(self.follower.state, client, now)
        return outcome

    def review(
        self,
        client: LogClient,
        now: datetime,
        approve: Sequence[int],
        reject: Sequence[int],
        reason: str,
    ) -> Outcome:
        """A person's decisions on queued entries."""
        if reject and not reason.strip():
            raise PolicyError("a rejection must state its reason", field="reason")
        self.follower.sync(client)
        waiting = set(awaiting_region(self.follower.state, self.region))
        for target in [*approve, *reject]:
            if target not in waiting:
                raise PolicyError(f"seq {target} does not await region {self.region}")
        outcome = Outcome()
        rejections = {reason: list(reject)} if reject else {}
        self._submit(client, now, list(approve), rejections, outcome)
        self.queue.remove([*approve, *reject])
        return outcome

    def _check_own_key(self) -> None:
        keys = self.follower.state.current_keys.get(self.signer, set())
        if self.key.key_id not in keys:
            raise PolicyError(f"the key given is not a current key of {self.signer}")

    def _awaiting(self, client: LogClient) -> list[Awaiting]:
        """What the node's own state says awaits it. The server's list is only a hint:
        a seq it names that the node's state does not is ignored."""
        mine = awaiting_region(self.follower.state, self.region)
        _ = client.awaiting(self.region)  # the hint; the verified state decides
        items = []
        for target in mine:
            entry = self._entries.get(target)
            if entry is not None:
                items.append(Awaiting(target, str(entry["kind"]), entry))
        return items

    def _concerns(self, item: Awaiting) -> list[str]:
        """Why this node's rules cannot approve ``item`` by themselves (empty: approve)."""
        if item.kind == "reconciliation.closed":
            # The follower admitted it only because the night it recomputed from the log
            # (and the cutoff root of the tree it verified) is exactly the body.
            return []
        state = self.follower.state
        concerns = []
        obligation = state.obligations.get(item.target)
        parties = {str(item.entry["signer"])}
        if obligation is not None:
            parties.add(obligation.debtor)
            if obligation.amount_fen > self.rules.auto_approve_max_fen:
                concerns.append(
                    f"amount {obligation.amount_fen} fen above {self.rules.auto_approve_max_fen}"
                )
        for party in sorted(parties):
            member = state.member(party)
            if member is None or member.status != "active":
                concerns.append(f"{party} is not an active member")
                continue
            credit = state.credit.get(party)
            if credit is not None and credit.measure != "none":
                concerns.append(f"{party} is under the credit measure {credit.measure}")
        return concerns

    def _submit(
        self,
        client: LogClient,
        now: datetime,
        approvals: list[int],
        rejections: dict[str, list[int]],
        outcome: Outcome,
    ) -> None:
        decided = submit_decisions(
            client, self.signer, self.key, now, self.new_id, approvals, rejections, outcome
        )
        for target in decided:
            self._entries.pop(target, None)


def submit_decisions(
    client: LogClient,
    signer: str,
    key: PrivateKey,
    now: datetime,
    new_id: Callable[[], str],
    approvals: list[int],
    rejections: dict[str, list[int]],
    outcome: Outcome,
) -> list[int]:
    """Sign and submit the decisions in endorsements of at most ENDORSEMENT_TARGETS_MAX
    targets; count them in ``outcome``; return the targets decided."""
    step = ENDORSEMENT_TARGETS_MAX
    batches = [("approve", approvals[i : i + step], "") for i in range(0, len(approvals), step)]
    for reason, targets in sorted(rejections.items()):
        batches += [("reject", targets[i : i + step], reason) for i in range(0, len(targets), step)]
    decided: list[int] = []
    for decision, targets, reason in batches:
        body = {"targets": targets, "decision": decision, "reason": reason}
        client.submit(submitted(_entry("endorsement", signer, body, now, new_id()), key))
        if decision == "approve":
            outcome.approved += len(targets)
        else:
            outcome.rejected += len(targets)
        decided += targets
    return decided


def _entry(
    kind: str, signer: str, body: dict[str, Any], now: datetime, entry_id: str
) -> dict[str, Any]:
    return {
        "v": 1,
        "kind": kind,
        "id": entry_id,
        "time": now.astimezone(SHANGHAI).isoformat(timespec="seconds"),
        "signer": signer,
        "body": body,
    }


class ReviewQueue:
    """Entries waiting for a person, with the node's reasons: a small JSON file on the
    node's machine (or in memory when no path is given)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.items: dict[int, dict[str, Any]] = self._load()

    def _load(self) -> dict[int, dict[str, Any]]:
        if self.path is None or not self.path.exists():
            return {}
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
            return {int(item["target"]): item for item in raw["items"]}
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise MalformedError(f"review queue {self.path} unreadable: {exc}") from exc

    def hold(self, queued: dict[int, list[str]], now: datetime) -> None:
        """Hold exactly ``queued``, what awaits a person after this run: an entry decided
        since (by a person, by another region, or by rules that now approve it) leaves
        the queue, or a reviewer would be shown, and refused on, entries nobody can
        decide. An entry held before keeps the time it was first queued."""
        self.items = {
            target: {
                "target": target,
                "reasons": reasons,
                "queued": self.items.get(target, {}).get("queued", now.isoformat()),
            }
            for target, reasons in sorted(queued.items())
        }
        if len(self.items) > REVIEW_QUEUE_MAX:
            raise PolicyError(f"the review queue holds over {REVIEW_QUEUE_MAX} entries")
        self._save()

    def remove(self, targets: Sequence[int]) -> None:
        for target in targets:
            self.items.pop(target, None)
        self._save()

    def listing(self) -> list[dict[str, Any]]:
        return [self.items[target] for target in sorted(self.items)]

    def _save(self) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = json.dumps({"items": self.listing()}, ensure_ascii=False, indent=1) + "\n"
        handle, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=".review-")
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(data)
        os.replace(temporary, self.path)
