"""A region's endorsement node: pull the entries awaiting its decision, check them, and
sign approve/reject decisions in batches (DESIGN §3 `endorsement`).

The node verifies what it signs: each target's leaf must be included in the log's latest
checkpoint (an O(log n) inclusion proof) before a ``Judge`` (the regulator's own
knowledge: complaint records, inspections) decides. Only the region's key signs, on the
node; the server never holds it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, and_, exists, not_, select

from ledger import merkle, store
from ledger.projections import PROJECTION_TABLES
from ledger.tables import LogEntry
from schemas.canonical import canonical
from schemas.entry import parse_record
from schemas.errors import NotFoundError, VerificationError
from schemas.limits import ENDORSEMENT_TARGETS_MAX
from signing.entry import submitted, verify_entry_signature
from signing.keys import PrivateKey, PublicKey

PULL_LIMIT_MAX = 10_000  # targets one run of the node considers


@dataclass(frozen=True, slots=True)
class Awaiting:
    """An entry awaiting this region's decision, with its logged record."""

    target: int
    kind: str
    record: dict[str, Any]
    leaf: bytes


@dataclass(frozen=True, slots=True)
class Decision:
    approve: bool
    reason: str


Judge = Callable[[Awaiting], Decision]
Submit = Callable[[dict[str, Any]], Any]
EntryBuilder = Callable[[str, str, dict[str, Any], datetime], dict[str, Any]]


def approve_all(_item: Awaiting) -> Decision:
    return Decision(True, "")


def awaiting(engine: Engine, region: str, limit: int = PULL_LIMIT_MAX) -> list[Awaiting]:
    """Entries touching ``region`` that it has not decided yet, oldest first, each
    proven included in the latest checkpoint."""
    endorsables = PROJECTION_TABLES["endorsables"]
    endorsements = PROJECTION_TABLES["endorsements"]
    decided = exists().where(
        and_(endorsements.c.target == endorsables.c.target, endorsements.c.region == region)
    )
    query = (
        select(endorsables.c.target, endorsables.c.kind, LogEntry.leaf, LogEntry.leaf_hash)
        .join(LogEntry, LogEntry.seq == endorsables.c.target)
        .where(
            endorsables.c.status == "pending",
            endorsables.c.regions.like(f'%"{region}"%'),
            not_(decided),
        )
        .order_by(endorsables.c.target)
        .limit(min(limit, PULL_LIMIT_MAX))
    )
    with engine.connect() as connection:
        latest = store.latest_checkpoint(connection)
        if latest is None:
            raise NotFoundError("the log has no checkpoint yet")
        # One node run reads many proofs of the same tree: share the tiles they read.
        reader = merkle.CachingReader(store.DbTiles(connection))
        keys: dict[str, Any] = {}
        items = []
        for row in connection.execute(query):
            target, leaf, leaf_hash = int(row.target), bytes(row.leaf), bytes(row.leaf_hash)
            if target >= latest.size:
                continue  # not yet in a checkpoint: decide it next run
            proof = merkle.inclusion_proof(target, latest.size, reader)
            merkle.verify_inclusion(merkle.leaf_hash(leaf), target, latest.size, proof, latest.root)
            if leaf_hash != merkle.leaf_hash(leaf):
                raise VerificationError(f"stored leaf hash of seq {target} is wrong")
            record, _ = parse_record(leaf)
            _verify_signatures(connection, target, record, keys)
            items.append(Awaiting(target, str(row.kind), record, leaf))
    return items


def _verify_signatures(
    connection: Connection, seq: int, record: dict[str, Any], cache: dict[str, Any]
) -> None:
    """The node re-checks each signature on the target under the key its signer held
    at that seq, so it never endorses an entry it has not verified itself."""
    keys = PROJECTION_TABLES["principal_keys"]
    entry_bytes = canonical(record["entry"])
    for signature in record["signatures"]:
        key_id = signature["key"]
        if key_id not in cache:
            cache[key_id] = connection.execute(select(keys).where(keys.c.key_id == key_id)).first()
        row = cache[key_id]
        if row is None or row.principal != record["entry"]["signer"]:
            raise VerificationError(f"seq {seq} is signed by a key not of its signer")
        if row.from_seq > seq or (row.until_seq is not None and seq >= row.until_seq):
            raise VerificationError(f"seq {seq} is signed by a key not valid at that point")
        public = PublicKey.from_wire({"key": str(row.key_id), "pub": str(row.pub)})
        verify_entry_signature(entry_bytes, signature, public)


def decisions(
    region: str, items: Sequence[Awaiting], judge: Judge
) -> list[tuple[str, list[int], str]]:
    """Group judged targets into endorsement bodies: (decision, targets, reason), each
    batch at most ENDORSEMENT_TARGETS_MAX targets."""
    approvals: list[int] = []
    rejections: dict[str, list[int]] = {}
    for item in items:
        verdict = judge(item)
        if verdict.approve:
            approvals.append(item.target)
        else:
            rejections.setdefault(verdict.reason or "rejected by the region", []).append(
                item.target
            )
    batches: list[tuple[str, list[int], str]] = []
    step = ENDORSEMENT_TARGETS_MAX
    for start in range(0, len(approvals), step):
        batches.append(("approve", approvals[start : start + step], ""))
    for reason, targets in sorted(rejections.items()):
        for start in range(0, len(targets), step):
            batches.append(("reject", targets[start : start + step], reason))
    return batches


def endorse(
    engine: Engine,
    region: str,
    key: PrivateKey,
    build: EntryBuilder,
    submit: Submit,
    now: datetime,
    judge: Judge = approve_all,
) -> tuple[int, int]:
    """Run the node once: returns (approved, rejected) target counts."""
    approved = rejected = 0
    signer = f"region:{region}"
    for decision, targets, reason in decisions(region, awaiting(engine, region), judge):
        body = {"targets": targets, "decision": decision, "reason": reason}
        submit(submitted(build("endorsement", signer, body, now), key))
        if decision == "approve":
            approved += len(targets)
        else:
            rejected += len(targets)
    return approved, rejected
