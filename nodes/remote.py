"""A region's endorsement node over HTTP (`alliance endorse --url`): it holds only the
region's key, and reads only what the region may read.

The region's scope does not reach every leaf (entry bundles are for auditors and the
operator), so this node does not replay the log as the in-process node does. Instead it
checks each entry it is asked to decide:

* the checkpoint is signed by the log key of ``trust.json``, and consistent with the
  last one this node verified;
* the leaf served is in that checkpoint (its inclusion proof leads to the root);
* every signature on it verifies under a key that the log declared in a public entry
  (genesis, enrolment, key change) which is itself proven in that checkpoint, held by
  the signer at that seq; the signer signed.

Then the regulator's ``Judge`` decides, or the node's rules: the signer is an active
member under no credit measure (its public page), the amount within
``auto_approve_max_fen``.

A night (reconciliation.closed) is checked as far as the region's scope reaches
(``_night``, docs/PROTOCOL.md §6a "A night over HTTP"): its report recomputed to the
logged body (``reconciliation.check``: greedy instructions with due dates and references,
totals, counts, the positions and instructions roots), its cutoff consistent with the
checkpoint verified, and each of the region's members netting to its position from its
included obligations, each proven from its source entry. All hold: approved; one
fails: rejected ``report_mismatch``, which voids the night; what cannot be read or
proven: queued for a person. The included root itself (obligations among other regions'
members) is theirs to check, and the audit's.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from ledger import merkle
from ledger.audit import Trust
from nodes.endorse import (
    Awaiting,
    Decision,
    Judge,
    NodeRules,
    Outcome,
    ReviewQueue,
    file_verdict,
    no_opinion,
    submit_decisions,
)
from nodes.http import HttpClient
from reconciliation.check import check_members, check_night
from reconciliation.netting import Obligation
from schemas.bodies import PolicyModel
from schemas.canonical import canonical
from schemas.entry import parse_record
from schemas.errors import (
    AllianceError,
    MalformedError,
    PolicyError,
    VerificationError,
    invariant,
)
from schemas.limits import KEYS_PAGE_MAX, NODE_OBLIGATIONS_KEPT_MAX
from signing.checkpoint import Checkpoint, open_checkpoint
from signing.entry import verify_entry_signature
from signing.keys import PrivateKey, PublicKey, b64decode

AMOUNT_FIELDS = ("amount_fen", "refund_fen")
NIGHT = "reconciliation.closed"
OBLIGATION_KINDS = ("return.recorded", "advance.paid")
MISMATCH = "report_mismatch"  # policy.reasons.rejection: the recomputation differs


class RemoteEndorseNode:
    """One region's node over HTTP. Keep it between runs: it remembers the checkpoint
    and the keys it verified."""

    def __init__(
        self,
        region: str,
        key: PrivateKey,
        trust: Trust,
        rules: NodeRules | None = None,
        queue_path: Path | None = None,
        new_id: Callable[[], str] = lambda: str(uuid.uuid4()),
    ) -> None:
        self.region = region
        self.signer = f"region:{region}"
        self.key = key
        self.trust = trust
        self.rules = rules or NodeRules()
        self.queue = ReviewQueue(queue_path)
        self.new_id = new_id
        self.checkpoint: Checkpoint | None = None
        self.mismatches: dict[int, str] = {}  # night seq -> why it was rejected
        self._regions: dict[str, str] = {}  # member -> its region (public pages)
        self._obligations: dict[int, Obligation] = {}  # proven while endorsing, by seq
        self._keys: dict[str, tuple[str, PublicKey, int, int | None]] = {}
        self._policy: PolicyModel | None = None

    def run(self, client: HttpClient, now: datetime, judge: Judge = no_opinion) -> Outcome:
        """Verify and judge every entry awaiting this region; submit the decisions."""
        outcome = Outcome()
        queued: dict[int, list[str]] = {}
        after = -1
        while True:
            approvals: list[int] = []
            rejections: dict[str, list[int]] = {}
            page, more = self._page(client, after)
            for item in page:
                after = item.target
                verdict = judge(item)
                if verdict is None and item.kind == NIGHT:
                    checked = self._night(client, item)
                    if isinstance(checked, list):
                        queued[item.target] = checked
                        continue
                    verdict = checked
                concerns = [] if verdict is not None else self._concerns(client, item)
                file_verdict(item.target, verdict, concerns, approvals, rejections, queued)
            submit_decisions(
                client, self.signer, self.key, now, self.new_id, approvals, rejections, outcome
            )
            if not more or not page:  # an empty page that claims more ends the run too
                break
        self.queue.hold(queued, now)
        outcome.queued = sorted(queued)
        return outcome

    def review(
        self,
        client: HttpClient,
        now: datetime,
        approve: Sequence[int],
        reject: Sequence[int],
        reason: str,
    ) -> Outcome:
        """A person's decisions on queued entries, each still awaiting this region (as
        verified now)."""
        if reject and not reason.strip():
            raise PolicyError("a rejection must state its reason", field="reason")
        waiting: set[int] = set()
        after, more = -1, True
        while more:
            page, more = self._page(client, after)
            waiting |= {item.target for item in page}
            more = more and bool(page)
            after = max(waiting, default=after)
        for target in [*approve, *reject]:
            if target not in waiting:
                raise PolicyError(f"seq {target} does not await region {self.region}")
        outcome = Outcome()
        rejections = {reason: list(reject)} if reject else {}
        submit_decisions(
            client, self.signer, self.key, now, self.new_id, list(approve), rejections, outcome
        )
        self.queue.remove([*approve, *reject])
        return outcome

    def _page(self, client: HttpClient, after: int) -> tuple[list[Awaiting], bool]:
        """One page of pending entries, each verified against the checkpoint it came
        with (signed by the trusted log key, consistent with the last one verified)."""
        answer = client.pending(self.region, after)
        checkpoint = self._verified_checkpoint(client, str(answer["checkpoint"]))
        served = answer["entries"]
        records = {}
        for item in served:
            seq = int(item["seq"])
            leaf = b64decode(item["leaf"], what="leaf")
            records[seq] = self._proven(client, checkpoint, seq, leaf, item["proof"]["hashes"])
        wanted = {str(s["key"]) for r in records.values() for s in r["signatures"]}
        self._learn_keys(client, checkpoint, sorted(wanted - set(self._keys)))
        items = []
        for seq, record in records.items():
            self._check_signatures(seq, record)
            entry = record["entry"]
            self._keep_obligation(seq, record)
            items.append(Awaiting(seq, str(entry["kind"]), entry))
        return items, bool(answer["more"])

    def _verified_checkpoint(self, client: HttpClient, note: str) -> Checkpoint:
        """``note``'s checkpoint, signed by the trusted log key and consistent with the
        last one this node verified (which it then replaces, if larger)."""
        checkpoint = open_checkpoint(note, self.trust.log)
        if checkpoint.origin != self.trust.origin:
            raise VerificationError(f"checkpoint of {checkpoint.origin}, not {self.trust.origin}")
        last = self.checkpoint
        if last is not None and last.size > checkpoint.size:
            # An older tree than one verified: consistent with it, or a fork.
            proof = client.consistency(checkpoint.size, last.size)
            merkle.verify_consistency(checkpoint.size, last.size, checkpoint.root, last.root, proof)
            return checkpoint
        if last is not None and last != checkpoint:
            proof = client.consistency(last.size, checkpoint.size)
            merkle.verify_consistency(last.size, checkpoint.size, last.root, checkpoint.root, proof)
        self.checkpoint = checkpoint
        return checkpoint

    @staticmethod
    def _proven(
        client: HttpClient, checkpoint: Checkpoint, seq: int, leaf: bytes, hashes: list[str]
    ) -> dict[str, Any]:
        """The record of ``leaf``, once proven at ``seq`` in ``checkpoint``."""
        proof = [b64decode(h, size=32, what="proof hash") for h in hashes]
        leaf_hash = merkle.leaf_hash(leaf)
        try:
            merkle.verify_inclusion(leaf_hash, seq, checkpoint.size, proof, checkpoint.root)
        except VerificationError:  # served in another tree size: ask for ours
            proof = client.inclusion(seq, checkpoint.size)
            merkle.verify_inclusion(leaf_hash, seq, checkpoint.size, proof, checkpoint.root)
        try:
            record, parsed = parse_record(leaf)
        except MalformedError as exc:
            raise VerificationError(f"seq {seq} is no record: {exc.detail}") from exc
        if parsed.seq != seq:
            raise VerificationError(f"the leaf at seq {seq} says seq {parsed.seq}")
        return record

    def _check_signatures(self, seq: int, record: dict[str, Any]) -> None:
        entry_bytes = canonical(record["entry"])
        signer = str(record["entry"]["signer"])
        signed = set()
        for signature in record["signatures"]:
            key_id = str(signature["key"])
            known = self._keys.get(key_id)
            if known is None:
                raise VerificationError(
                    f"seq {seq} is signed by {key_id}, which the log did not show"
                )
            principal, public, since, until = known
            if not since <= seq or (until is not None and until <= seq):
                raise VerificationError(f"seq {seq}: {principal} did not hold that key then")
            verify_entry_signature(entry_bytes, signature, public)
            signed.add(principal)
        if signer not in signed:
            raise VerificationError(f"seq {seq} does not carry its signer's signature")

    def _learn_keys(self, client: HttpClient, checkpoint: Checkpoint, key_ids: list[str]) -> None:
        """Learn ``key_ids``: each key, its holder and its seqs, once the public entry
        that declared it is proven in a checkpoint verified and names both the key and
        its holder."""
        for start in range(0, len(key_ids), KEYS_PAGE_MAX):
            answer = client.keys(key_ids[start : start + KEYS_PAGE_MAX])
            tree = self._verified_checkpoint(client, str(answer["checkpoint"]))
            for row in answer["keys"]:
                self._learn_key(client, tree, row)

    def _learn_key(self, client: HttpClient, checkpoint: Checkpoint, row: dict[str, Any]) -> None:
        key_id, principal, pub = str(row["key"]), str(row["principal"]), str(row["pub"])
        since = int(row["from_seq"])
        declaring = max(0, since - 1)  # a key is held from the seq after its declaration
        served = row["declared"]
        if int(served["seq"]) != declaring:
            raise VerificationError(f"key {key_id} is not shown with its declaring entry")
        leaf = b64decode(served["leaf"], what="leaf")
        record = self._proven(client, checkpoint, declaring, leaf, served["proof"]["hashes"])
        wires = list(_objects(record["entry"]))
        holder = principal.rsplit(":", maxsplit=1)[-1]
        declared = {"key": key_id, "pub": pub}
        if declared not in wires or not any(holder in str(v) for w in wires for v in w.values()):
            raise VerificationError(f"seq {declaring} does not declare key {key_id} of {principal}")
        until = row["until_seq"]
        public = PublicKey.from_wire({"key": key_id, "pub": pub})
        self._keys[key_id] = (principal, public, since, None if until is None else int(until))

    def _night(self, client: HttpClient, item: Awaiting) -> Decision | list[str]:
        """A night checked as far as the region's scope reaches (module docstring):
        approved if every check holds, rejected as ``report_mismatch`` if one fails,
        queued (the concerns) if what it needs could not be read or proven."""
        body = item.entry["body"]
        checkpoint = self.checkpoint
        invariant(checkpoint is not None, "a night judged before any checkpoint")
        assert checkpoint is not None
        try:
            night = client.night(str(body["day"]))
            policy = self._genesis_policy(client)
            cutoff = int(body["cutoff"]["tree_size"])
            if cutoff > checkpoint.size:
                return [f"the cutoff {cutoff} lies beyond the tree verified ({checkpoint.size})"]
            consistency = client.consistency(cutoff, checkpoint.size)
        except (AllianceError, KeyError, TypeError, ValueError) as exc:
            return [_unchecked(body, exc)]
        try:
            if night.get("seq") != item.target or night.get("body") != body:
                raise VerificationError(f"the log serves another night than seq {item.target}")
            cutoff_root = b64decode(str(body["cutoff"]["root"]), size=32, what="cutoff root")
            merkle.verify_consistency(
                cutoff, checkpoint.size, cutoff_root, checkpoint.root, consistency
            )
            concerns = check_night(body, night["report"], policy.calendar, policy.settlement_days)
        except (AllianceError, KeyError, TypeError, ValueError) as exc:
            return self._mismatch(item.target, exc)
        try:
            members, obligations = self._region_obligations(client, checkpoint, night)
        except (AllianceError, KeyError, TypeError, ValueError) as exc:
            return [_unchecked(body, exc)]
        try:
            check_members(night["report"], members, obligations)
        except AllianceError as exc:
            return self._mismatch(item.target, exc)
        for seq in night["report"]["included"]:  # decided: never needed again
            self._obligations.pop(seq, None)
        return concerns or Decision(True, "")

    def _mismatch(self, seq: int, exc: Exception) -> Decision:
        self.mismatches[seq] = exc.detail if isinstance(exc, AllianceError) else repr(exc)
        return Decision(False, MISMATCH)

    def _keep_obligation(self, seq: int, record: dict[str, Any]) -> None:
        """Remember the obligation a proven return or advance creates (none when a
        merchant takes back its own goods), for the night that will include it."""
        entry = record["entry"]
        if entry["kind"] not in OBLIGATION_KINDS:
            return
        try:
            obligation = _obligation(seq, record, {})
        except AllianceError:  # a return a merchant took back itself: no obligation
            return
        self._obligations[seq] = obligation
        if len(self._obligations) > NODE_OBLIGATIONS_KEPT_MAX:
            del self._obligations[next(iter(self._obligations))]

    def _region_of(self, client: HttpClient, member: str) -> str:
        if member not in self._regions:
            self._regions[member] = str(client.public_member(member)["member"]["region"])
        return self._regions[member]

    def _genesis_policy(self, client: HttpClient) -> PolicyModel:
        """The policy of the genesis (seq 0, proven in the checkpoint verified): the
        calendar and settlement days of the instructions' due dates."""
        if self._policy is None:
            record = self._served(client, 0)
            if record["entry"]["kind"] != "region.genesis":
                raise VerificationError("seq 0 is not the genesis")
            self._policy = PolicyModel.model_validate(record["entry"]["body"]["policy"])
        return self._policy

    def _served(self, client: HttpClient, seq: int) -> dict[str, Any]:
        """The record at ``seq``, proven in the checkpoint this node verified."""
        checkpoint = self.checkpoint
        invariant(checkpoint is not None, "an entry read before any checkpoint")
        assert checkpoint is not None
        served = client.entry(seq)
        leaf = b64decode(str(served["leaf"]), what="leaf")
        return self._proven(client, checkpoint, seq, leaf, served["proof"]["hashes"])

    def _region_obligations(
        self, client: HttpClient, checkpoint: Checkpoint, night: dict[str, Any]
    ) -> tuple[list[str], list[Obligation]]:
        """The region's members among the night's positions, and their included
        obligations, each what its source entry (proven) creates."""
        report = night["report"]
        included = set(report["included"])
        members = [
            str(p["member"])
            for p in report["positions"]
            if self._region_of(client, str(p["member"])) == self.region
        ]
        obligations: dict[int, Obligation] = {}
        for member in members:
            for row in client.obligations(member)["obligations"]:
                seq = int(row["seq"])
                if seq in included and seq not in obligations:
                    known = self._obligations.get(seq)
                    if known is None:
                        known = _obligation(seq, self._served(client, seq), row)
                    obligations[seq] = known
        return members, list(obligations.values())

    def _concerns(self, client: HttpClient, item: Awaiting) -> list[str]:
        concerns = []
        body = item.entry.get("body", {})
        for name in AMOUNT_FIELDS:
            amount = body.get(name) if isinstance(body, dict) else None
            if isinstance(amount, int) and amount > self.rules.auto_approve_max_fen:
                concerns.append(f"amount {amount} fen above {self.rules.auto_approve_max_fen}")
        signer = str(item.entry["signer"])
        if ":" in signer:  # a region or the operator: no member page
            return concerns
        try:
            page = client.public_member(signer)
        except AllianceError as exc:
            return [*concerns, f"{signer} has no public page: {exc.detail}"]
        if page["member"]["status"] != "active":
            concerns.append(f"{signer} is not an active member")
        if page["measure"] != "none":
            concerns.append(f"{signer} is under the credit measure {page['measure']}")
        return concerns


def _unchecked(body: dict[str, Any], exc: Exception) -> str:
    detail = exc.detail if isinstance(exc, AllianceError) else repr(exc)
    return f"the night of {body.get('day')} could not be checked: {detail}"


def _obligation(seq: int, record: dict[str, Any], row: dict[str, Any]) -> Obligation:
    """The obligation the entry ``record`` at ``seq`` creates: a return's seller owes its
    accepting merchant (the signer) the refund, an advance's liable merchant owes the
    payer (the signer) the amount. A reversal (dispute.resolved) is the row's own,
    its source entry being checked as a resolution only: its parties and amount come
    from the disputed obligation, which a region may not see."""
    entry = record["entry"]
    kind, body, signer = str(entry["kind"]), entry["body"], str(entry["signer"])
    if kind == "return.recorded":
        return Obligation(
            seq, "return", str(body["receipt"]["merchant"]), signer, body["refund_fen"]
        )
    if kind == "advance.paid":
        return Obligation(seq, "advance", str(body["liable"]), signer, body["amount_fen"])
    if kind == "dispute.resolved" and row["kind"] == "reversal":
        return Obligation(
            seq, "reversal", str(row["debtor"]), str(row["creditor"]), int(row["amount_fen"])
        )
    raise VerificationError(f"seq {seq} ({kind}) creates no obligation")


def _objects(value: Any) -> Iterator[dict[str, Any]]:
    """Every JSON object within ``value`` (the body's key declarations among them)."""
    if isinstance(value, dict):
        yield value
        for item in value.values():
            yield from _objects(item)
    elif isinstance(value, list):
        for item in value:
            yield from _objects(item)


__all__ = ["RemoteEndorseNode"]
