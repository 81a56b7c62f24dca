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
import typing
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Generic, Protocol, TypeVar

from ledger.calendar import ONE_DAY, ONE_SECOND, local_date
from ledger.rows import (
    TABLES,
    CaseRow,
    CommitmentRow,
    CreditRow,
    DayEndRow,
    DecisionRow,
    DisputeRow,
    EndorsableRow,
    EndorsementDueRow,
    EndorsementRow,
    ExclusionRow,
    InstructionRow,
    KeyRow,
    MemberRow,
    MetaRow,
    NetworkRow,
    NightRow,
    NoticeEvidenceRow,
    NoticeRow,
    ObligationRow,
    OverdueRow,
    PenaltyRow,
    ReceiptLineRow,
    ReceiptRow,
    RegionRow,
    ReturnLineRow,
    ReturnRow,
    Row,
    SettlementRow,
    StatusRow,
    StoreRow,
)
from schemas.bodies import PolicyModel, RegionJoinedBody, validate_body
from schemas.canonical import canonical
from schemas.entry import WireModel, parse_record, parse_time
from schemas.errors import (
    MalformedError,
    PolicyError,
    SignatureError,
    UnknownPrincipalError,
    invariant,
)
from schemas.limits import DAY_ENDS_PER_ENTRY_MAX, GENESIS_TIME_SKEW_S
from signing.entry import verify_entry_signature
from signing.keys import PublicKey

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


# A handler receives the entry's validated body, of the type its kind registered.
Handler = Callable[["State", Context, Any], list[Row]]
SignerRule = Callable[["State", Context], list[str]]


ACTIVE_SIGNERS = frozenset({"active"})


@dataclass(frozen=True, slots=True)
class KindSpec:
    """How one kind is judged: its body type, who must sign it, and what it does to the
    projections."""

    handler: Handler
    signers: SignerRule
    body_type: type[WireModel]
    # The statuses a signing member may have (most kinds: active only).
    signer_statuses: frozenset[str] = ACTIVE_SIGNERS


KINDS: dict[str, KindSpec] = {}


def register(
    kind: str,
    body: type[WireModel],
    signers: SignerRule | None = None,
    signer_statuses: frozenset[str] = ACTIVE_SIGNERS,
) -> Callable[[Handler], Handler]:
    def decorate(handler: Handler) -> Handler:
        invariant(kind not in KINDS, f"kind {kind} registered twice")
        rule = signers or (lambda _state, ctx: [ctx.signer])
        KINDS[kind] = KindSpec(handler, rule, body, signer_statuses)
        return handler

    return decorate


R = TypeVar("R", bound=Row)

# What an entry of a kind will read from the paged tables, from its signer and body:
# (table, key or key prefix) pairs. The writer reads them for a whole batch at once
# before admitting it (prefetch()); a read no hint foresaw is still served, one miss at
# a time.
PageHint = Callable[[str, Any], Iterable[tuple[str, tuple[object, ...]]]]
PAGE_HINTS: dict[str, PageHint] = {}


def page_hint(kind: str) -> Callable[[PageHint], PageHint]:
    def decorate(hint: PageHint) -> PageHint:
        invariant(kind not in PAGE_HINTS, f"page hint for {kind} registered twice")
        PAGE_HINTS[kind] = hint
        return hint

    return decorate


def prefetch(state: State, entries: Iterable[tuple[str, str, Any]]) -> None:
    """Read what the (kind, signer, body) triples of a batch will need from the paged
    tables: one read per table for the whole batch."""
    if state.source is None:
        return
    wanted: dict[str, list[tuple[object, ...]]] = {}
    for kind, signer, body in entries:
        hint = PAGE_HINTS.get(kind)
        if hint is not None:
            for name, prefix in hint(signer, body):
                wanted.setdefault(name, []).append(prefix)
    for name, prefixes in wanted.items():
        state.page_in(name, prefixes)


class RowSource(Protocol):
    """Where a paged projection's rows live when they are not in memory (the writer: its
    sealed projection tables, ledger.projections.SealedRows). Each method returns the
    newest version of each row, below seq ``below``, that the source could verify, as
    (row, version) pairs ordered by key."""

    def fetch(
        self, name: str, prefixes: Sequence[tuple[object, ...]], below: int
    ) -> Iterable[tuple[Row, int]]:
        """The rows of ``name`` whose key starts with one of ``prefixes`` (a whole key
        is a prefix of itself)."""
        ...

    def scan(self, name: str, below: int) -> Iterable[tuple[Row, int]]:
        """Every row of ``name`` (a full scan: rare events only)."""
        ...

    def caches_here(self) -> bool:
        """Whether the caller is the writer in its batch (rows it reads may be kept in
        the working set); any other thread reads through and keeps nothing."""
        ...


class Table(Generic[R]):
    """One projection in memory: rows of one type by key, each with the seq of the entry
    that last wrote it (its *version*, which the stored projection rows carry and seal),
    and the keys changed since the last write to the database.

    A *paged* table (PAGED_TABLES, once a source is attached: the writer) holds only its
    working set: the rows the current batch read or wrote. A miss is read from the
    source (and remembered as absent if there is none), so get() answers as if every
    row were in memory; evict() drops the working set once the batch is stored."""

    __slots__ = (
        "_key_of",
        "absent",
        "changed",
        "complete",
        "name",
        "pager",
        "row_type",
        "rows_by_key",
        "versions",
    )

    def __init__(self, name: str, row_type: type[R], key_fields: tuple[str, ...]) -> None:
        self.name = name
        self.row_type = row_type
        self._key_of = _key_reader(row_type, key_fields)
        self.rows_by_key: dict[tuple[object, ...], R] = {}
        self.versions: dict[tuple[object, ...], int] = {}
        # The keys changed since the last write, in the order first changed (a dict as an
        # ordered set): walking them in insertion order follows rows_by_key's own order,
        # three times faster over a batch's tens of thousands of keys than a set's hash
        # order, which jumps about memory.
        self.changed: dict[tuple[object, ...], None] = {}
        # Paging (None: every row is in memory, as in a replay).
        self.pager: State | None = None
        self.absent: set[tuple[object, ...]] = set()  # keys the source has no row for
        self.complete: set[tuple[object, ...]] = set()  # prefixes read whole

    def get(self, *key: object) -> R | None:
        row = self.rows_by_key.get(key)
        if row is None and self.pager is not None and key not in self.absent:
            found: R | None = self.pager.miss(self, key)
            return found
        return row

    def rows(self) -> Iterable[R]:
        if self.pager is None:
            return self.rows_by_key.values()
        return [row for row, _ in self.pager.merged(self).values()]

    def key_of(self, row: R) -> tuple[object, ...]:
        return self._key_of(row)

    def __len__(self) -> int:
        if self.pager is None:
            return len(self.rows_by_key)
        return len(self.pager.merged(self))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Table):
            return NotImplemented
        return self.items() == other.items()

    __hash__ = None  # type: ignore[assignment]

    def items(self) -> dict[tuple[object, ...], tuple[R, int]]:
        """Every row with its version, by key (a full scan of a paged table)."""
        if self.pager is not None:
            return self.pager.merged(self)
        return {key: (row, self.versions[key]) for key, row in self.rows_by_key.items()}

    def put(self, row: R, version: int, *, changed: bool = True) -> R | None:
        """Store ``row`` as written by the entry at seq ``version``; returns the row it
        replaced. ``changed=False`` for rows loaded from the database (already stored)."""
        key = self._key_of(row)
        old = self.rows_by_key.get(key)
        self.rows_by_key[key] = row
        self.versions[key] = version
        if changed:
            self.changed[key] = None
        return old

    def take_changed(self) -> list[tuple[R, int]]:
        """The rows changed since the last call with their versions; then forget them."""
        # No order is needed for correctness: each stored version is its own row (no
        # upsert conflicts); insertion order is for speed (see __init__).
        rows, versions = self.rows_by_key, self.versions
        changed = [(rows[key], versions[key]) for key in self.changed]
        self.changed.clear()
        return changed

    def evict(self) -> None:
        """Drop the working set, but for rows changed and not yet stored."""
        keep = {key: self.rows_by_key[key] for key in self.changed}
        kept_versions = {key: self.versions[key] for key in self.changed}
        self.rows_by_key, self.versions = keep, kept_versions
        self.absent.clear()
        self.complete.clear()


@dataclass
class State:
    """Every projection, in memory, as of ``size`` entries. Each projection is a typed
    attribute (``state.receipts.get(merchant, store, number) -> ReceiptRow | None``)."""

    size: int = 0
    last_logged: str | None = None
    meta: Table[MetaRow] = field(default_factory=lambda: _table("meta"))
    regions: Table[RegionRow] = field(default_factory=lambda: _table("regions"))
    principal_keys: Table[KeyRow] = field(default_factory=lambda: _table("principal_keys"))
    members: Table[MemberRow] = field(default_factory=lambda: _table("members"))
    member_statuses: Table[StatusRow] = field(default_factory=lambda: _table("member_statuses"))
    commitments: Table[CommitmentRow] = field(default_factory=lambda: _table("commitments"))
    exclusions: Table[ExclusionRow] = field(default_factory=lambda: _table("exclusions"))
    networks: Table[NetworkRow] = field(default_factory=lambda: _table("networks"))
    stores: Table[StoreRow] = field(default_factory=lambda: _table("stores"))
    receipts: Table[ReceiptRow] = field(default_factory=lambda: _table("receipts"))
    receipt_lines: Table[ReceiptLineRow] = field(default_factory=lambda: _table("receipt_lines"))
    receipt_returns: Table[ReturnRow] = field(default_factory=lambda: _table("receipt_returns"))
    return_lines: Table[ReturnLineRow] = field(default_factory=lambda: _table("return_lines"))
    endorsables: Table[EndorsableRow] = field(default_factory=lambda: _table("endorsables"))
    endorsement_dues: Table[EndorsementDueRow] = field(
        default_factory=lambda: _table("endorsement_dues")
    )
    endorsements: Table[EndorsementRow] = field(default_factory=lambda: _table("endorsements"))
    obligations: Table[ObligationRow] = field(default_factory=lambda: _table("obligations"))
    cases: Table[CaseRow] = field(default_factory=lambda: _table("cases"))
    disputes: Table[DisputeRow] = field(default_factory=lambda: _table("disputes"))
    penalties: Table[PenaltyRow] = field(default_factory=lambda: _table("penalties"))
    credit: Table[CreditRow] = field(default_factory=lambda: _table("credit"))
    credit_notices: Table[NoticeRow] = field(default_factory=lambda: _table("credit_notices"))
    notice_evidence: Table[NoticeEvidenceRow] = field(
        default_factory=lambda: _table("notice_evidence")
    )
    credit_decisions: Table[DecisionRow] = field(default_factory=lambda: _table("credit_decisions"))
    day_ends: Table[DayEndRow] = field(default_factory=lambda: _table("day_ends"))
    nights: Table[NightRow] = field(default_factory=lambda: _table("nights"))
    instructions: Table[InstructionRow] = field(default_factory=lambda: _table("instructions"))
    overdue_listings: Table[OverdueRow] = field(default_factory=lambda: _table("overdue_listings"))
    settlements: Table[SettlementRow] = field(default_factory=lambda: _table("settlements"))
    # Secondary indexes, derived from the rows by _index().
    current_keys: dict[str, set[str]] = field(default_factory=dict)
    member_penalties: dict[str, list[int]] = field(default_factory=dict)
    lines_of_return: dict[int, list[int]] = field(default_factory=dict)  # seq -> receipt lines
    statuses_of: dict[str, list[StatusRow]] = field(default_factory=dict)  # in seq order
    commitments_of: dict[str, list[CommitmentRow]] = field(default_factory=dict)  # by effective
    network_of: dict[str, set[str]] = field(default_factory=dict)  # member -> current peers
    stores_of: dict[str, set[str]] = field(default_factory=dict)  # member -> every store id
    # For credit evidence (ledger.kinds.credit): what a rejecting endorsement's seq rejected,
    # which dispute a resolution's seq resolved, which notices cite an evidence seq. Sets,
    # so a load (keys read in any order) builds what a replay builds.
    # (rejections: the property below, over _rejections)
    resolutions: dict[int, int] = field(default_factory=dict)  # dispute.resolved -> dispute
    evidence_notices: dict[int, set[int]] = field(default_factory=dict)  # evidence -> notices
    # For the nightly reconciliation (ledger.kinds.settlement): obligations no night has
    # included yet (void ones leave for good), instructions not yet discharged, and each
    # business day's night (void ones too: a day is closed once). The first two are bounded
    # by what is still open, not by history.
    # (unreconciled: the property below, over _unreconciled)
    undischarged: set[tuple[int, int]] = field(default_factory=set)  # (night seq, index)
    night_of_day: dict[str, int] = field(default_factory=dict)
    # For overdue_settlement (ledger.kinds.credit): the instructions each night's report
    # lists overdue, by (that night's seq, payer), and the last confirmation of each
    # instruction (the one that discharged it, once it is discharged). Sets and a max, so
    # a load (rows in any order) builds what a replay builds.
    overdue_listed: dict[tuple[int, str], set[tuple[int, int]]] = field(default_factory=dict)
    last_confirmation: dict[tuple[int, int], int] = field(default_factory=dict)
    # The root of the log's tree at a size, from the tree the caller verified (writer:
    # its tiles; audit and nodes: the leaves they checked). A reconciliation's cutoff
    # root is checked against it; None (a bare replay of bodies) leaves that one check to
    # whoever holds the tree.
    tree_root: Callable[[int], bytes] | None = field(default=None, repr=False, compare=False)
    # Reports of nights admitted since the writer last took them: (day, seq, JCS bytes),
    # stored beside the log in the entry's transaction (ledger.store).
    reports: list[tuple[str, int, bytes]] = field(default_factory=list, repr=False, compare=False)
    _policy_cache: tuple[int, PolicyModel] | None = field(default=None, compare=False)
    # Decoded keys by (key id, pub), each checked against its id once (public_key()).
    _public_keys: dict[tuple[str, str], PublicKey] = field(
        default_factory=dict, repr=False, compare=False
    )
    # Each row type's table, so put() (several calls per entry) is one dict look-up.
    _by_type: dict[type, Table[Any]] = field(init=False, repr=False, compare=False)
    # Paging (attach()): where the paged tables' rows live beyond the working set. The two
    # indexes over paged rows are then built on first use (a scan, once per writer
    # process: nights and credit evidence only) and kept up to date after; None until.
    source: RowSource | None = field(default=None, repr=False, compare=False)
    paged: tuple[str, ...] = field(default=(), repr=False, compare=False)  # attach()'s tables
    _rejections: dict[int, set[int]] | None = field(default_factory=dict, compare=False)
    _unreconciled: set[int] | None = field(default_factory=set, compare=False)

    def __post_init__(self) -> None:
        self._by_type = {row_type: getattr(self, name) for row_type, name in _TABLE_OF.items()}

    # --- reads ------------------------------------------------------------------------

    def table(self, name: str) -> Table[Any]:
        """A projection by its table name (for code that walks every projection)."""
        invariant(name in TABLES, f"no projection named {name}")
        table: Table[Any] = getattr(self, name)
        return table

    def all_tables(self) -> list[Table[Any]]:
        """Every projection, in TABLES order (the rebuild and comparison order)."""
        return [self.table(name) for name in TABLES]

    @property
    def has_genesis(self) -> bool:
        return self.meta.get("origin") is not None

    @property
    def origin(self) -> str:
        row = self.meta.get("origin")
        invariant(row is not None, "origin read before genesis")
        assert row is not None
        return str(json.loads(row.value))

    @property
    def policy(self) -> PolicyModel:
        row = self.meta.get("policy")
        invariant(row is not None, "policy read before genesis")
        assert row is not None  # for mypy; invariant() above is the real check
        if self._policy_cache is None or self._policy_cache[0] != row.seq:
            self._policy_cache = (row.seq, PolicyModel.model_validate_json(row.value))
        return self._policy_cache[1]

    def region_codes(self) -> list[str]:
        return sorted(row.code for row in self.regions.rows())

    def region(self, code: str) -> RegionRow | None:
        return self.regions.get(code)

    def member(self, member_id: str) -> MemberRow | None:
        return self.members.get(member_id)

    def key(self, key_id: str) -> KeyRow | None:
        return self.principal_keys.get(key_id)

    def public_key(self, row: KeyRow) -> PublicKey:
        """The public key of ``row``, decoded and checked against its key id on first use
        (a key id names one public key forever, so the result never changes)."""
        cached = self._public_keys.get((row.key_id, row.pub))
        if cached is None:
            cached = PublicKey.from_wire({"key": row.key_id, "pub": row.pub})
            self._public_keys[(row.key_id, row.pub)] = cached
        return cached

    # --- writes -----------------------------------------------------------------------

    def put(self, row: Row, version: int | None = None, *, changed: bool = True) -> None:
        """Apply ``row``, written by the entry at seq ``version`` (default: the entry
        being admitted, whose seq is the current size)."""
        old = self._by_type[type(row)].put(
            row, self.size if version is None else version, changed=changed
        )
        if type(row) in _INDEXED:
            self._index(old, row)

    def put_all(self, rows: Iterable[Row]) -> None:
        """put() of each of ``rows``, written by the entry being admitted (admit() applies
        a handful per entry: the lookups are hoisted out of the loop)."""
        version, by_type, indexed = self.size, self._by_type, _INDEXED
        for row in rows:
            row_type = type(row)
            old = by_type[row_type].put(row, version)
            if row_type in indexed:
                self._index(old, row)

    def _index(self, old: Row | None, new: Row) -> None:
        if isinstance(new, KeyRow):
            keys = self.current_keys.setdefault(new.principal, set())
            if new.until_seq is None:
                keys.add(new.key_id)
            else:
                keys.discard(new.key_id)
        elif old is None and isinstance(new, PenaltyRow):
            self.member_penalties.setdefault(new.member, []).append(new.seq)
        elif old is None and isinstance(new, ReturnLineRow):
            self.lines_of_return.setdefault(new.seq, []).append(new.line)
        elif old is None and isinstance(new, StatusRow):
            history = self.statuses_of.setdefault(new.member, [])
            history.append(new)
            if len(history) > 1 and history[-2].seq > new.seq:  # loaded out of order
                history.sort(key=lambda row: row.seq)
        elif old is None and isinstance(new, CommitmentRow):
            versions = self.commitments_of.setdefault(new.member, [])
            versions.append(new)
            versions.sort(key=lambda row: (row.effective, row.seq))
        elif old is None and isinstance(new, StoreRow):
            self.stores_of.setdefault(new.member, set()).add(new.store_id)
        elif isinstance(new, NetworkRow):
            peers = self.network_of.setdefault(new.member, set())
            if new.until_seq is None:
                peers.add(new.peer)
            else:
                peers.discard(new.peer)
        elif not self._index_settlement(new):
            self._index_credit_evidence(old, new)

    def _index_settlement(self, new: Row) -> bool:
        """Index a row of the reconciliation's; False if ``new`` is none of its types."""
        if isinstance(new, ObligationRow):
            if new.reconciled is None and new.status != "void":
                if self._unreconciled is not None:
                    self._unreconciled.add(new.seq)
            elif self._unreconciled is not None:
                self._unreconciled.discard(new.seq)
        elif isinstance(new, InstructionRow):
            if new.confirmed_fen < new.amount_fen:
                self.undischarged.add((new.night, new.index))
            else:
                self.undischarged.discard((new.night, new.index))
        elif isinstance(new, NightRow):
            self.night_of_day[new.day] = new.seq  # a day is closed once, void or not
        elif isinstance(new, OverdueRow):
            listed = self.overdue_listed.setdefault((new.listed, new.payer), set())
            listed.add((new.night, new.index))
        elif isinstance(new, SettlementRow):
            if new.kind == "confirmed":
                key = (new.night, new.index)
                self.last_confirmation[key] = max(new.seq, self.last_confirmation.get(key, -1))
        else:
            return False
        return True

    def _index_credit_evidence(self, old: Row | None, new: Row) -> None:
        if old is None and isinstance(new, EndorsementRow) and new.decision == "reject":
            if self._rejections is not None:
                self._rejections.setdefault(new.seq, set()).add(new.target)
        elif isinstance(new, DisputeRow) and new.resolved_seq is not None:
            self.resolutions[new.resolved_seq] = new.seq
        elif old is None and isinstance(new, NoticeEvidenceRow):
            self.evidence_notices.setdefault(new.evidence, set()).add(new.notice)

    # --- paging -----------------------------------------------------------------------

    @property
    def rejections(self) -> dict[int, set[int]]:
        """What each rejecting endorsement's seq rejected (credit evidence)."""
        if self._rejections is not None:
            return self._rejections
        found: dict[int, set[int]] = {}
        for row in self.endorsements.rows():
            if row.decision == "reject":
                found.setdefault(row.seq, set()).add(row.target)
        if self._keeps_indexes():
            self._rejections = found
        return found

    @property
    def unreconciled(self) -> set[int]:
        """The obligations no night has included yet (void ones leave for good)."""
        if self._unreconciled is not None:
            return self._unreconciled
        found = {
            row.seq
            for row in self.obligations.rows()
            if row.reconciled is None and row.status != "void"
        }
        if self._keeps_indexes():
            self._unreconciled = found
        return found

    def _keeps_indexes(self) -> bool:
        """Whether an index built now may be kept and maintained: only by the writer in
        its batch (another thread's scan could miss a batch committing meanwhile)."""
        return self.source is None or self.source.caches_here()

    def attach(self, source: RowSource, tables: tuple[str, ...] | None = None) -> None:
        """Page ``tables`` (default PAGED_TABLES; the writer's are WRITER_PAGED_TABLES)
        from ``source``: from now on only a batch's working set of their rows is held
        (ledger.projections.load_state(paged=...) loaded none)."""
        tables = PAGED_TABLES if tables is None else tables
        invariant(self.source is None, "a source is attached once")
        invariant(set(PAGED_TABLES) <= set(tables) <= set(WRITER_PAGED_TABLES), "pageable")
        self.source = source
        self.paged = tables
        for name in tables:
            self.table(name).evict()
            self.table(name).pager = self
        self._clear_paged_indexes()
        self._rejections = self._unreconciled = None

    def _clear_paged_indexes(self) -> None:
        """Rebuild the indexes over paged rows from the rows still held: evict() keeps the
        rows changed and not yet stored (a batch that appended nothing keeps what it
        caught up), and page_in() never puts a held row again, so an index cleared of
        them would stay short of them (a link left open, units never given back)."""
        self.lines_of_return.clear()
        for line in self.return_lines.rows_by_key.values():
            self._index(None, line)
        if NETWORKS in self.paged:
            self.network_of.clear()
            for link in self.networks.rows_by_key.values():
                self._index(None, link)

    def miss(self, table: Table[R], key: tuple[object, ...]) -> R | None:
        """The row of ``key`` that is not in ``table``'s working set, from the source."""
        source = self.source
        invariant(source is not None, "a paged table has no source")
        assert source is not None
        if not source.caches_here():  # not the writer's batch: read through, keep nothing
            for row, _ in source.fetch(table.name, [key], self.size):
                return row  # type: ignore[return-value]
            return None
        length = PAGE_PREFIXES.get(table.name)
        if length is not None and key[:length] in table.complete:
            table.absent.add(key)
            return None
        self.page_in(table.name, [key])
        return table.rows_by_key.get(key)

    def page_in(self, name: str, prefixes: Iterable[tuple[object, ...]]) -> None:
        """Read into the working set of paged table ``name`` every row under each of
        ``prefixes`` (whole keys or PAGE_PREFIXES-long prefixes) not held yet: one read
        of the source for them all (a batch's prefetch, or one miss)."""
        table = self.table(name)
        source = self.source
        if table.pager is None or source is None or not source.caches_here():
            return
        held, absent, complete = table.rows_by_key, table.absent, table.complete
        wanted = sorted(
            {p for p in prefixes if p not in held and p not in absent and p not in complete},
            key=repr,
        )
        if not wanted:
            return
        for row, version in source.fetch(name, wanted, self.size):
            if table.key_of(row) not in held:  # held rows are newer (this batch's)
                self.put(row, version, changed=False)
        full = len(TABLES[name][1])
        for prefix in wanted:
            if len(prefix) < full:
                complete.add(prefix)
            elif prefix not in held:
                absent.add(prefix)

    def merged(self, table: Table[R]) -> dict[tuple[object, ...], tuple[R, int]]:
        """Every row of paged ``table``: the source's, with the working set's over them."""
        source = self.source
        invariant(source is not None, "a paged table has no source")
        assert source is not None
        found: dict[tuple[object, ...], tuple[R, int]] = {}
        for row, stored in source.scan(table.name, self.size):
            typed = typing.cast(R, row)
            found[table.key_of(typed)] = (typed, stored)
        # Copies (atomic under the GIL): a reader on another thread may scan while the
        # writer's batch changes the working set.
        versions = dict(table.versions)
        for key, held in dict(table.rows_by_key).items():
            version = versions.get(key)
            if version is not None:
                found[key] = (held, version)
        return found

    def network_peers(self, member: str) -> set[str]:
        """The peers in ``member``'s network now (paged: its links read in first, so the
        index holds the member's every current link)."""
        if self.networks.pager is not None:
            # Only the writer's batch keeps what it reads: elsewhere the index would be
            # short of the links not read (rules are judged in the batch alone).
            source = self.source
            invariant(source is not None and source.caches_here(), "links read in a batch")
            self.page_in(NETWORKS, [(member,)])
        return self.network_of.get(member, set())

    def return_line_numbers(self, seq: int) -> list[int]:
        """The receipt lines the return at ``seq`` took units from."""
        if self.return_lines.pager is not None:
            self.page_in("return_lines", [(seq,)])
        return self.lines_of_return.get(seq, [])

    def evict_pages(self) -> None:
        """Drop the paged tables' working sets (their rows are stored), so the writer's
        memory does not grow with the log."""
        if self.source is None:
            return
        for name in self.paged:
            self.table(name).evict()
        # Rebuilt from whatever rows are paged in again (return_line_numbers, network_peers).
        self._clear_paged_indexes()

    def forget_changes(self) -> None:
        """Forget which rows changed: they are already stored."""
        for table in self.all_tables():
            table.changed.clear()


def _key_reader(row_type: type, fields: tuple[str, ...]) -> Callable[[Any], tuple[object, ...]]:
    """A row's key tuple, the same as ``ledger.rows.row_key()`` (which builds it with a
    generator: too slow for a handful of puts per entry). Rows are NamedTuples and every
    table's key is its leading fields (checked here, once per table), so a key is a
    slice: a plain tuple, the cheapest to build."""
    width = len(fields)
    leading = row_type._fields[:width]  # type: ignore[attr-defined]
    invariant(leading == fields, f"{row_type.__name__}'s key {fields} is not its leading fields")
    # itemgetter(slice) is row[:width] in C, without a Python frame per put.
    return operator.itemgetter(slice(0, width))


def _table(name: str) -> Table[Any]:
    row_type, keys = TABLES[name]
    return Table(name, row_type, keys)


_TABLE_OF: dict[type, str] = {row_type: name for name, (row_type, _) in TABLES.items()}
# The projections that grow with every return, advance and endorsement: the writer pages
# them (State.attach); every other projection stays in memory. Each paged table read
# by a key prefix names that prefix's length (the receipt of a line, the target of a
# due region, endorsement or taken line).
PAGED_TABLES = (
    "receipts",
    "receipt_lines",
    "receipt_returns",
    "return_lines",
    "endorsables",
    "endorsement_dues",
    "endorsements",
    "obligations",
    "cases",
)
# The writer also pages the networks: they grow with members and their peers (up to
# NETWORK_MEMBERS_MAX each: 160 k links for 400 merchants who all honour each other),
# not with the log, but a start that read and checked every link was most of a restarted
# writer's first submit. A replay (the audit) keeps them in memory: it reads a link for
# every cross-merchant return, and the links fit.
NETWORKS = "networks"
WRITER_PAGED_TABLES = (*PAGED_TABLES, NETWORKS)
PAGE_PREFIXES: dict[str, int] = {
    NETWORKS: 1,
    "receipt_lines": 3,
    "return_lines": 1,
    "endorsement_dues": 1,
    "endorsements": 1,
}
invariant(set(PAGE_PREFIXES) <= set(WRITER_PAGED_TABLES), "a prefix for a table not paged")
# Row types that feed a secondary index (State._index).
_INDEXED = frozenset(
    {
        KeyRow,
        PenaltyRow,
        ReturnLineRow,
        StatusRow,
        CommitmentRow,
        NetworkRow,
        StoreRow,
        EndorsementRow,
        DisputeRow,
        NoticeEvidenceRow,
        ObligationRow,
        InstructionRow,
        NightRow,
        OverdueRow,
        SettlementRow,
    }
)


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


def leaf_context(leaf: bytes, *, expected_seq: int | None = None) -> Context:
    """The context of a logged leaf (the record's exact bytes), as the sequencer's
    catch-up, rebuild, doctor, the nodes and the audit all read it. Raises
    MalformedError when the leaf is not a record, or its seq is not ``expected_seq``."""
    record, model = parse_record(leaf)
    if expected_seq is not None and model.seq != expected_seq:
        raise MalformedError(f"the leaf holds seq {model.seq}, expected {expected_seq}")
    logged = parse_time(model.logged, field="logged")
    return make_context(model.seq, logged, model.logged, record["entry"], record["signatures"])


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
    _check_signer_active(state, ctx, spec.signer_statuses)
    _check_signatures(state, ctx, spec.signers(state, ctx), verified)
    invariant(isinstance(ctx.body, spec.body_type), f"{ctx.kind} body of the wrong type")
    rows = spec.handler(state, ctx, ctx.body)
    rows += _day_ends(state, ctx)
    state.put_all(rows)
    state.size += 1
    state.last_logged = ctx.logged_text
    return rows


def _day_ends(state: State, ctx: Context) -> list[Row]:
    """The cutoffs of the business days that end before ``ctx``: when it is the first
    entry logged on a later local date, each day from the last entry's to the one before
    its own ends at this seq (days with no entry included: their nights are empty)."""
    if state.last_logged is None or state.last_logged == ctx.logged_text:
        return []  # no entry yet, or one logged at this very instant (a batch's own)
    last_day = local_date(parse_time(state.last_logged))
    today = local_date(ctx.logged)
    if today <= last_day:
        return []
    invariant(
        (today - last_day).days <= DAY_ENDS_PER_ENTRY_MAX,
        f"the log was idle from {last_day} to {today}, longer than the day-end limit",
    )
    days = (last_day + timedelta(days=offset) for offset in range((today - last_day).days))
    return [DayEndRow(day.isoformat(), ctx.seq) for day in days]


def _check_position(state: State, ctx: Context) -> None:
    if ctx.kind == "region.genesis" and state.has_genesis:
        raise PolicyError("the log already has its genesis", field="kind")
    if ctx.kind != "region.genesis" and not state.has_genesis:
        raise PolicyError("the first entry of a log must be its region.genesis", field="kind")


def _check_time(state: State, ctx: Context) -> None:
    skew_s = state.policy.entry_time_skew_s if state.has_genesis else GENESIS_TIME_SKEW_S
    if abs(ctx.time - ctx.logged) > ONE_SECOND * skew_s:
        raise PolicyError(
            f"entry time {ctx.entry['time']} is more than {skew_s} s from the log clock "
            f"{ctx.logged_text}",
            field="time",
        )


def _check_signer_active(state: State, ctx: Context, statuses: frozenset[str]) -> None:
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
    if member.status not in statuses:
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
    if ctx.kind == "region.joined" and isinstance(ctx.body, RegionJoinedBody):
        # The body's own keys, before the log's: a key already registered to someone
        # else is then refused by the handler as reused (policy-violation), not passed
        # off as that principal's signature.
        for key in ctx.body.region.keys:
            if key.key == key_id:
                return region_principal(ctx.body.region.code), PublicKey.from_wire(key.model_dump())
    row = state.key(key_id)
    if row is None or row.from_seq > ctx.seq:
        return None
    if row.until_seq is not None and ctx.seq >= row.until_seq:
        raise SignatureError(
            f"key {key_id} of {row.principal} was replaced at seq {row.until_seq}",
            field="signatures",
        )
    return row.principal, state.public_key(row)


def operator_keys_at(state: State, size: int) -> list[KeyRow]:
    """The operator keys that may sign the checkpoint of tree ``size``: the keys the log
    declared as of that size (from_seq <= size), and the key an ``operator.keys_changed``
    at seq t ended, for sizes up to t + 1. The checkpoint that first includes a rotation
    is the outgoing key's last signature (the running writer appends the rotation and
    hands over); every later checkpoint needs the new key, so a writer still holding the
    old one can sign nothing beyond the rotation."""
    return sorted(
        (
            row
            for row in state.principal_keys.rows()
            if row.principal == OPERATOR
            and row.from_seq <= size
            and (row.until_seq is None or size <= row.until_seq + 1)
        ),
        key=lambda row: row.key_id,
    )


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
    return (end - start) / ONE_DAY
