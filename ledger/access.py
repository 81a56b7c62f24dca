"""Who may read what: the one place a request becomes a reader, and the one place a
read's scope is checked (issue 9, "Who may read what"; docs/PROTOCOL.md §6).

``authenticate`` turns an RFC 9421 signed request (signing.http) into a ``Reader``: the
key must be one the log holds (principal_keys) and not replaced, ``created`` within
``HTTP_SIGNATURE_SKEW_S`` of now, and the nonce unseen within that window. The API's one
reader dependency (api.deps.reader) only parses headers and calls it.

The scope table, as implemented:

| who | entries and bundles | reports and statements |
|---|---|---|
| public | public kinds only | none |
| member X | entries X signed or is seller, acceptor, liable, debtor or creditor of | its own |
| region R | entries touching R (dues naming R, R's signature, a party enrolled in R) | all |
| auditor, operator | all, and entry bundles | all |

Proofs and hash tiles are public.
"""

from __future__ import annotations

import heapq
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from ledger.reads import Reads
from ledger.rows import KeyRow
from ledger.state import OPERATOR
from schemas.errors import ForbiddenError, QueueFullError, SignatureError
from schemas.limits import HTTP_NONCE_CACHE_MAX, HTTP_SIGNATURE_SKEW_S
from signing.http import SignedRequest
from signing.keys import PublicKey

Role = Literal["public", "member", "region", "auditor", "operator"]

# Kinds whose disclosure is their purpose (DESIGN §7): the genesis, policies, membership,
# credit, and the log's own region and operator declarations.
PUBLIC_KIND_PREFIXES = ("policy.", "member.", "credit.", "region.", "operator.")
REGION_PREFIX = "region:"
# Readers that see everything (entries of every kind, entry bundles, every report).
ALL_SEEING: frozenset[Role] = frozenset({"auditor", "operator"})


@dataclass(frozen=True, slots=True)
class Reader:
    """Who is reading: a role and, for members and regions, which one (a USCC, a
    region code)."""

    role: Role
    principal: str | None = None


PUBLIC = Reader("public")


def is_public_kind(kind: str) -> bool:
    return kind.startswith(PUBLIC_KIND_PREFIXES)


# --- authentication ------------------------------------------------------------------


@dataclass
class NonceCache:
    """(key id, nonce) pairs seen, each kept until its request's ``created`` leaves the
    skew window (after that the request is refused as expired anyway). Bounded: when
    full of live nonces a new request is refused with 503 rather than a live nonce
    forgotten, which would let its replay in."""

    limit: int = HTTP_NONCE_CACHE_MAX
    _expiry: dict[tuple[str, str], int] = field(default_factory=dict)
    _heap: list[tuple[int, str, str]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def remember(self, keyid: str, nonce: str, expires_s: int, now_s: int) -> None:
        """Record the nonce, or SignatureError if it is live already (a replay)."""
        with self._lock:
            while self._heap and self._heap[0][0] < now_s:
                _, old_key, old_nonce = heapq.heappop(self._heap)
                self._expiry.pop((old_key, old_nonce), None)
            if (keyid, nonce) in self._expiry:
                raise SignatureError(f"nonce {nonce!r} of key {keyid} was used already")
            if len(self._expiry) >= self.limit:
                raise QueueFullError(f"{self.limit} signed requests are in the replay window")
            self._expiry[(keyid, nonce)] = expires_s
            heapq.heappush(self._heap, (expires_s, keyid, nonce))

    def __len__(self) -> int:
        return len(self._expiry)


KeyLookup = Callable[[str], KeyRow | None]
# The auditors the policy in force declares (issue 9: "Auditors are declared in the
# policy with their keys"): key id -> (auditor name, key).
AuditorKeys = Mapping[str, tuple[str, PublicKey]]


def auditor_keys(reads: Reads) -> dict[str, tuple[str, PublicKey]]:
    """The keys of the auditors the policy in force declares. A policy adopted later
    without an auditor, or without one of its keys, ends that key's reads from its seq
    on: only the policy in force counts."""
    policy = reads.policy()
    found: dict[str, tuple[str, PublicKey]] = {}
    for auditor in [] if policy is None else policy.auditors:
        for key in auditor.keys:
            found[key.key] = (auditor.name, PublicKey.from_wire(key.model_dump()))
    return found


def authenticate(
    signed: SignedRequest,
    lookup: KeyLookup,
    now: datetime,
    nonces: NonceCache,
    *,
    auditors: AuditorKeys | None = None,
    skew_s: int = HTTP_SIGNATURE_SKEW_S,
) -> Reader:
    """The reader who signed ``signed``, or SignatureError (401): an unknown or replaced
    key, a ``created`` more than ``skew_s`` from ``now``, a bad signature, a replay."""
    now_s = int(now.timestamp())
    if abs(signed.created - now_s) > skew_s:
        raise SignatureError(f"created {signed.created} is more than {skew_s} s from now")
    if auditors and signed.keyid in auditors:
        name, key = auditors[signed.keyid]
        reader = Reader("auditor", name)
    else:
        row = lookup(signed.keyid)
        if row is None:
            raise SignatureError(f"key {signed.keyid} is not a key the log holds")
        if row.until_seq is not None:  # replaced: refused from the seq that replaced it
            raise SignatureError(f"key {signed.keyid} was replaced at seq {row.until_seq}")
        key = PublicKey.from_wire({"key": row.key_id, "pub": row.pub})
        reader = reader_of(row.principal)
    key.verify(signed.signature, signed.signature_base())
    # Only after the signature verifies: unsigned noise must not fill the cache.
    nonces.remember(signed.keyid, signed.nonce, signed.created + skew_s, now_s)
    return reader


def reader_of(principal: str) -> Reader:
    if principal == OPERATOR:
        return Reader("operator", OPERATOR)
    if principal.startswith(REGION_PREFIX):
        return Reader("region", principal.removeprefix(REGION_PREFIX))
    return Reader("member", principal)


# --- scopes --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EntryFacts:
    """What an entry's scope is judged on: its kind, the members party to it and the
    regions it touches."""

    seq: int
    kind: str
    parties: frozenset[str]
    regions: frozenset[str]


def entry_facts(reads: Reads, seq: int, entry: Mapping[str, Any]) -> EntryFacts:
    """The facts of the logged ``entry`` at ``seq``: parties are its signer (a return's
    acceptor among them), the members its body names (_body_parties) and its own
    obligation's debtor and creditor; regions are those its endorsement dues name, its
    signer's if a region, and the regions of its parties."""
    kind = str(entry["kind"])
    signer = str(entry["signer"])
    body = entry.get("body")
    parties = {signer} | _body_parties(reads, body if isinstance(body, dict) else {})
    obligation = reads.obligation(seq)
    if obligation is not None:
        parties |= {obligation.debtor, obligation.creditor}
    regions = reads.dues_of(seq)
    if signer.startswith(REGION_PREFIX):
        regions.add(signer.removeprefix(REGION_PREFIX))
    members = {p for p in parties if p != OPERATOR and not p.startswith(REGION_PREFIX)}
    regions |= reads.regions_of(members)
    return EntryFacts(seq, kind, frozenset(parties), frozenset(regions))


def _body_parties(reads: Reads, body: Mapping[str, Any]) -> set[str]:
    """Members a body names as parties: a return's seller (its receipt's merchant), an
    advance's liable member, a dispute's target's debtor and creditor, a settlement
    payment's or confirmation's payer and payee (its instruction's)."""
    parties: set[str] = set()
    receipt = body.get("receipt")
    if isinstance(receipt, dict) and isinstance(receipt.get("merchant"), str):
        parties.add(receipt["merchant"])
    if isinstance(body.get("liable"), str):
        parties.add(body["liable"])
    target = body.get("target")
    if isinstance(target, int) and (disputed := reads.obligation(target)) is not None:
        parties |= {disputed.debtor, disputed.creditor}
    night, index = body.get("reconciliation"), body.get("instruction")
    if isinstance(night, int) and isinstance(index, int):
        instruction = reads.instruction(night, index)
        if instruction is not None:
            parties |= {instruction.payer, instruction.payee}
    return parties


def check_entry(reader: Reader, facts: EntryFacts) -> None:
    """Refuse ``reader`` the entry unless its kind is public or it lies in the reader's
    scope."""
    if is_public_kind(facts.kind) or reader.role in ALL_SEEING:
        return
    if reader.role == "member" and reader.principal in facts.parties:
        return
    if reader.role == "region" and reader.principal in facts.regions:
        return
    raise ForbiddenError(
        f"seq {facts.seq} is a {facts.kind} outside the scope of this reader", seq=facts.seq
    )


def check_entry_bundles(reader: Reader) -> None:
    """Entry bundles (/tile/entries/…) hold every leaf, public or not: auditors and the
    operator only."""
    if reader.role not in ALL_SEEING:
        raise ForbiddenError("entry bundles are served to auditors and the operator only")


def check_member(reader: Reader, member: str, member_region: str | None) -> None:
    """Reports of one member (obligations, statements): the member itself, its region
    (``member_region``, None when it is not enrolled), auditors and the operator."""
    if reader.role in ALL_SEEING:
        return
    if reader.role == "member" and reader.principal == member:
        return
    if reader.role == "region" and member_region is not None and reader.principal == member_region:
        return
    raise ForbiddenError(f"the reports of {member} are outside the scope of this reader")


def check_region(reader: Reader, region: str) -> None:
    """A region's own work lists and desk (pending endorsements, disputes awaiting a
    decision, overdue instructions, the desk's review queue and picture): the region
    itself (a signed request or a web session), auditors and the operator."""
    if reader.role in ALL_SEEING or (reader.role == "region" and reader.principal == region):
        return
    raise ForbiddenError(f"region {region}'s work lists are outside the scope of this reader")


def sees_whole_night(reader: Reader) -> bool:
    """Whether ``reader`` sees a night's whole report (regions, auditors, operator), or
    only its own statement (a member); the public sees none (ForbiddenError)."""
    if reader.role == "public":
        raise ForbiddenError("reconciliation reports need a signed request")
    return reader.role != "member"


__all__ = [
    "PUBLIC",
    "AuditorKeys",
    "EntryFacts",
    "NonceCache",
    "Reader",
    "auditor_keys",
    "authenticate",
    "check_entry",
    "check_entry_bundles",
    "check_member",
    "check_region",
    "entry_facts",
    "is_public_kind",
    "reader_of",
    "sees_whole_night",
]
