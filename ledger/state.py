"""The ledger's state, derived from the log by replay, and the admission of one entry.

``admit()`` is the single place where an entry is judged: the sequencer calls it under
the writer lock for new submissions, and the auditor calls it for every record it
replays, so both apply exactly the same rules. It validates first (raising a
``RejectedError`` and changing nothing) and only then applies the rows its kind's
handler returned.

Handlers are registered per kind in ledger/kinds/; each is a pure function of the state
and the entry's context that returns the projection rows to upsert.
"""

from __future__ import annotations

import json
import operator
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from ledger.rows import (
    TABLES,
    KeyRow,
    MemberRow,
    MetaRow,
    RegionRow,
    Row,
)
from schemas.bodies import PolicyModel, validate_body
from schemas.canonical import canonical
from schemas.entry import WireModel, parse_time
from schemas.errors import (
    PolicyError,
    SignatureError,
    UnknownPrincipalError,
    invariant,
)
from signing.entry import verify_entry_signature
from signing.keys import PublicKey

# Before a genesis has adopted a policy, entry times must lie this close to the log clock.
GENESIS_TIME_SKEW_S = 600
OPERATOR = "operator"


def region_principal(code: str) -> str:
    return f"region:{code}"


@dataclass(frozen=True, slots=True)
class Context:
    """One entry under judgement, at the position it would take in the log."""

    seq: int
    logged: datetime
    logged_text: str
    entry: dict[str, Any]
    entry_bytes: bytes
    signatures: list[dict[str, str]]
    body: WireModel
    time: datetime

    @property
    def kind(self) -> str:
        return str(self.entry["kind"])

    @property
    def signer(self) -> str:
        return str(self.entry["signer"])


Handler = Callable[["State", Context], list[Row]]
SignerRule = Callable[["State", Context], list[str]]


@dataclass(frozen=True, slots=True)
class KindSpec:
    """How one kind is judged: who must sign it, and what it does to the projections."""

    handler: Handler
    signers: SignerRule


KINDS: dict[str, KindSpec] = {}


def register(kind: str, signers: SignerRule | None = None) -> Callable[[Handler], Handler]:
    def decorate(handler: Handler) -> Handler:
        invariant(kind not in KINDS, f"kind {kind} registered twice")
        KINDS[kind] = KindSpec(handler, signers or (lambda _state, ctx: [ctx.signer]))
        return handler

    return decorate


@dataclass
class State:
    """Every projection, in memory, as of ``size`` entries."""

    size: int = 0
    last_logged: str | None = None
    tables: dict[str, dict[tuple[object, ...], Row]] = field(
        default_factory=lambda: {name: {} for name in TABLES}
    )
    dirty: dict[str, set[tuple[object, ...]]] = field(
        default_factory=lambda: {name: set() for name in TABLES}
    )
    # Secondary indexes, derived from the rows by _index().
    current_keys: dict[str, set[str]] = field(default_factory=dict)
    member_penalties: dict[str, list[int]] = field(default_factory=dict)
    _policy_cache: tuple[int, PolicyModel] | None = None
    # Decoded keys by (key id, pub), each checked against its id once (public_key()).
    _public_keys: dict[tuple[str, str], PublicKey] = field(
        default_factory=dict, repr=False, compare=False
    )

    # --- reads ------------------------------------------------------------------------

    def get(self, table: str, *key: object) -> Any:
        return self.tables[table].get(key)

    def rows(self, table: str) -> Iterable[Row]:
        return self.tables[table].values()

    @property
    def has_genesis(self) -> bool:
        return ("origin",) in self.tables["meta"]

    @property
    def origin(self) -> str:
        row: MetaRow = self.tables["meta"][("origin",)]  # type: ignore[assignment]
        return str(json.loads(row.value))

    @property
    def policy(self) -> PolicyModel:
        row = self.tables["meta"].get(("policy",))
        invariant(isinstance(row, MetaRow), "policy read before genesis")
        assert isinstance(row, MetaRow)  # for mypy; invariant() above is the real check
        if self._policy_cache is None or self._policy_cache[0] != row.seq:
            self._policy_cache = (row.seq, PolicyModel.model_validate_json(row.value))
        return self._policy_cache[1]

    def region_codes(self) -> list[str]:
        return sorted(str(key[0]) for key in self.tables["regions"])

    def region(self, code: str) -> RegionRow | None:
        row = self.tables["regions"].get((code,))
        return row if isinstance(row, RegionRow) else None

    def member(self, member_id: str) -> MemberRow | None:
        row = self.tables["members"].get((member_id,))
        return row if isinstance(row, MemberRow) else None

    def key(self, key_id: str) -> KeyRow | None:
        row = self.tables["principal_keys"].get((key_id,))
        return row if isinstance(row, KeyRow) else None

    def public_key(self, row: KeyRow) -> PublicKey:
        """The public key of ``row``, decoded and checked against its key id on first use
        (a key id names one public key forever, so the result never changes)."""
        cached = self._public_keys.get((row.key_id, row.pub))
        if cached is None:
            cached = PublicKey.from_wire({"key": row.key_id, "pub": row.pub})
            self._public_keys[(row.key_id, row.pub)] = cached
        return cached

    # --- writes -----------------------------------------------------------------------

    def put(self, row: Row) -> None:
        table, key_of = _PLACEMENT[type(row)]
        key = key_of(row)
        old = self.tables[table].get(key)
        self.tables[table][key] = row
        self.dirty[table].add(key)
        self._index(old, row)

    def _index(self, old: Row | None, new: Row) -> None:
        if isinstance(new, KeyRow):
            keys = self.current_keys.setdefault(new.principal, set())
            if new.until_seq is None:
                keys.add(new.key_id)
            else:
                keys.discard(new.key_id)
        elif old is None and type(new).__name__ == "PenaltyRow":
            self.member_penalties.setdefault(new.member, []).append(new.seq)  # type: ignore[union-attr]

    def forget_dirty(self) -> None:
        """Forget which rows changed: they are already stored."""
        for keys in self.dirty.values():
            keys.clear()

    def take_dirty(self) -> Iterator[tuple[str, list[Row]]]:
        """The rows changed since the last call, per table, then forget them."""
        for table, keys in self.dirty.items():
            if keys:
                yield table, [self.tables[table][key] for key in sorted(keys, key=repr)]
                keys.clear()


def _key_reader(fields: tuple[str, ...]) -> Callable[[Row], tuple[object, ...]]:
    """A row's key tuple, the same as ``ledger.rows.row_key()`` (which builds it with a
    generator: too slow for a handful of puts per entry)."""
    if len(fields) == 1:
        read = operator.attrgetter(fields[0])
        return lambda row: (read(row),)
    return operator.attrgetter(*fields)


# Row type -> (its table, its key reader).
_PLACEMENT: dict[type, tuple[str, Callable[[Row], tuple[object, ...]]]] = {
    row_type: (name, _key_reader(keys)) for name, (row_type, keys) in TABLES.items()
}


# --- admission ----------------------------------------------------------------------------


def make_context(
    seq: int,
    logged: datetime,
    logged_text: str,
    entry: dict[str, Any],
    signatures: list[dict[str, str]],
    *,
    body: WireModel | None = None,
    entry_bytes: bytes | None = None,
) -> Context:
    """Validate the body against its kind's schema (unless the caller already did) and
    build the context."""
    return Context(
        seq=seq,
        logged=logged,
        logged_text=logged_text,
        entry=entry,
        entry_bytes=entry_bytes if entry_bytes is not None else canonical(entry),
        signatures=signatures,
        body=body if body is not None else validate_body(str(entry["kind"]), entry["body"]),
        time=parse_time(str(entry["time"])),
    )


def admit(state: State, ctx: Context, *, verified: frozenset[int] = frozenset()) -> list[Row]:
    """Judge ``ctx`` against ``state`` and apply it. Raises RejectedError, changing
    nothing, when the entry breaks any rule. ``verified`` names the signatures whose
    Ed25519 check already passed (outside the writer lock)."""
    invariant(ctx.seq == state.size, f"entry judged at seq {ctx.seq}, state at {state.size}")
    spec = KINDS.get(ctx.kind)
    if spec is None:
        raise PolicyError(f"entries of kind {ctx.kind} are not accepted yet", field="kind")
    _check_position(state, ctx)
    _check_time(state, ctx)
    _check_signer_active(state, ctx)
    _check_signatures(state, ctx, spec.signers(state, ctx), verified)
    rows = spec.handler(state, ctx)
    for row in rows:
        state.put(row)
    state.size += 1
    state.last_logged = ctx.logged_text
    return rows


def _check_position(state: State, ctx: Context) -> None:
    if ctx.kind == "region.genesis" and state.has_genesis:
        raise PolicyError("the log already has its genesis", field="kind")
    if ctx.kind != "region.genesis" and not state.has_genesis:
        raise PolicyError("the first entry of a log must be its region.genesis", field="kind")


def _check_time(state: State, ctx: Context) -> None:
    skew_s = state.policy.entry_time_skew_s if state.has_genesis else GENESIS_TIME_SKEW_S
    if abs(ctx.time - ctx.logged) > timedelta(seconds=skew_s):
        raise PolicyError(
            f"entry time {ctx.entry['time']} is more than {skew_s} s from the log clock "
            f"{ctx.logged_text}",
            field="time",
        )


def _check_signer_active(state: State, ctx: Context) -> None:
    signer = ctx.signer
    if signer == OPERATOR or ctx.kind == "region.genesis":
        return
    if signer.startswith("region:"):
        if state.region(signer.removeprefix("region:")) is None:
            raise UnknownPrincipalError(f"{signer} is not a region of this log", field="signer")
        return
    member = state.member(signer)
    if member is None:
        raise UnknownPrincipalError(f"{signer} is not an enrolled member", field="signer")
    if member.status != "active":
        raise UnknownPrincipalError(
            f"member {signer} is {member.status} and cannot submit", field="signer"
        )


def genesis_keys(body: Any) -> dict[str, tuple[str, PublicKey]]:
    """key id -> (principal, key) declared by a genesis body."""
    keys: dict[str, tuple[str, PublicKey]] = {}
    for key in body.operator_keys:
        keys[key.key] = (OPERATOR, PublicKey.from_wire(key.model_dump()))
    for region in body.regions:
        for key in region.keys:
            keys[key.key] = (region_principal(region.code), PublicKey.from_wire(key.model_dump()))
    return keys


def key_for(state: State, ctx: Context, key_id: str) -> tuple[str, PublicKey] | None:
    """The principal holding ``key_id`` at ``ctx.seq`` and the key, or None."""
    if ctx.kind == "region.genesis":
        return genesis_keys(ctx.body).get(key_id)
    row = state.key(key_id)
    if row is None or row.from_seq > ctx.seq:
        return None
    if row.until_seq is not None and ctx.seq >= row.until_seq:
        raise SignatureError(
            f"key {key_id} of {row.principal} was replaced at seq {row.until_seq}",
            field="signatures",
        )
    return row.principal, state.public_key(row)


def _check_signatures(
    state: State, ctx: Context, required: list[str], verified: frozenset[int]
) -> None:
    """Every signature is by a key its principal held at this point and verifies; every
    required principal signed; nobody else did."""
    signed: set[str] = set()
    seen_keys: set[str] = set()
    for index, signature in enumerate(ctx.signatures):
        key_id = signature["key"]
        if key_id in seen_keys:
            raise SignatureError(f"key {key_id} signed twice", field="signatures")
        seen_keys.add(key_id)
        holder = key_for(state, ctx, key_id)
        if holder is None:
            raise SignatureError(f"key {key_id} is not a key of this log", field="signatures")
        principal, public = holder
        if principal not in required:
            raise SignatureError(
                f"{principal} (key {key_id}) is not a required signer of {ctx.kind}",
                field="signatures",
            )
        if index not in verified:
            verify_entry_signature(ctx.entry_bytes, signature, public)
        signed.add(principal)
    missing = [principal for principal in required if principal not in signed]
    if missing:
        raise SignatureError(
            f"{ctx.kind} must also be signed by {', '.join(missing)}", field="signatures"
        )


def preverify(
    state: State,
    entry: dict[str, Any],
    signatures: list[dict[str, str]],
    *,
    entry_bytes: bytes | None = None,
) -> frozenset[int]:
    """Ed25519-check, outside the writer lock, every signature whose key the state
    already knows. A key id names one public key forever, so a signature that passes
    here passes at any later point; whether its principal still held it is checked
    under the lock by admit(). ``entry_bytes`` is ``canonical(entry)`` when the caller
    already has it."""
    if entry_bytes is None:
        entry_bytes = canonical(entry)
    verified = set()
    for index, signature in enumerate(signatures):
        row = state.key(signature["key"])
        if row is None:
            continue
        verify_entry_signature(entry_bytes, signature, state.public_key(row))
        verified.add(index)
    return frozenset(verified)


def days_between(start: datetime, end: datetime) -> float:
    return (end - start) / timedelta(days=1)
