"""Append: validate submissions, assign seqs durably, integrate the tree, publish.

Concurrency (DESIGN §4): a caller prepares its submission outside any lock (schema,
canonical bytes, Ed25519 checks), queues it, and then either becomes the leader that
appends everything queued as ONE transaction (group commit), or waits for a leader to
append it. A caller returns only once its entry is committed. Across processes, one
transaction at a time holds the log: SQLite's BEGIN IMMEDIATE or PostgreSQL's
transaction-scoped advisory lock.

Errors: a ``RejectedError`` fails one submission and consumes no seq. A database failure
fails the batch it happened in (the in-memory state is dropped and rebuilt from the log).
A broken invariant (``InvariantError``) halts the writer: every later call raises.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, select, text
from sqlalchemy.exc import SQLAlchemyError

import ledger.kinds  # noqa: F401  (registers every kind with ledger.state)
from ledger import merkle, projections, store, verifying
from ledger.collector import collection_deferred
from ledger.publish import publish, signed_by
from ledger.seal import Sealer
from ledger.state import (
    OPERATOR,
    WRITER_PAGED_TABLES,
    Context,
    State,
    admit,
    genesis_keys,
    leaf_context,
    make_context,
    operator_keys_at,
    prefetch,
    preverify,
)
from ledger.store import StoredEntry
from ledger.walcheckpoint import WalCheckpoints
from schemas.bodies import (
    MemberEnrolledBody,
    MemberKeysBody,
    ReconciliationClosedBody,
    validate_body,
)
from schemas.canonical import SAFE_INTEGER_MAX, canonical, canonical_validated
from schemas.entry import (
    WireModel,
    format_utc,
    parse_time,
    validate_submitted,
)
from schemas.errors import (
    AllianceError,
    BatchFailedError,
    ConfigError,
    ConflictError,
    DeadlineError,
    HaltError,
    InvariantError,
    LimitError,
    MalformedError,
    NotFoundError,
    OperatorKeyError,
    PolicyError,
    QueueFullError,
    RejectedError,
    SignatureError,
    TamperedError,
    VerificationError,
    invariant,
)
from schemas.limits import (
    BATCH_BYTES_MAX,
    BATCH_SIZE_MAX,
    ENTRY_BYTES_MAX,
    GENESIS_TIME_SKEW_S,
    GROUP_COMMIT_LINGER_S,
    LEAF_BYTES_MAX,
    PARALLEL_VERIFY_MIN_ENTRIES,
    QUEUE_DEPTH_MAX,
    RECORD_OVERHEAD_BYTES,
    STEAL_BACKLOG_MIN_CHUNKS,
    VERIFY_CHUNK_ENTRIES,
    VERIFY_WAIT_S,
    WAIT_DEADLINE_S,
)
from signing.entry import verify_entry_signature
from signing.keys import PrivateKey, b64encode, remember_usable
from signing.note import NoteVerifier

# The class of advisory lock that serializes PostgreSQL writers ("ALLI" in hex). The lock
# is two-keyed, (class, hashtext(current_schema())): one log lives in one schema, so two
# logs in two schemas of one database never wait for each other's writers (a hash
# collision between two schemas only serializes them, which is safe).
ADVISORY_LOCK_CLASS = 0x414C4C49
# The writer's logged times: RFC 3339 UTC as format_utc() writes them.
_LOGGED_TEXT = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?Z")


@dataclass(frozen=True, slots=True)
class Appended:
    """Where an entry sits in the log. ``duplicate`` when it was logged before."""

    seq: int
    leaf_hash: bytes
    duplicate: bool = False

    def wire(self) -> dict[str, object]:
        return {"seq": self.seq, "leaf_hash": b64encode(self.leaf_hash)}


@dataclass(slots=True)
class Prepared:
    """A submission checked as far as it can be without the log."""

    entry: dict[str, Any]
    signatures: list[dict[str, str]]
    body: WireModel
    entry_bytes: bytes  # JCS(entry)
    signatures_bytes: bytes  # JCS(signatures)
    entry_hash: bytes
    verified: frozenset[int]
    # Signatures being checked in the verification worker (resolved before admission),
    # and the error they ended in, if any.
    pending: _Verification | None = None
    refusal: AllianceError | None = None
    # Set once, by finish(), under the writer lock or by the submitting thread itself;
    # waiters block on the writer lock, never on this flag, so a bool is enough.
    done: bool = False
    result: Appended | AllianceError | None = None

    @property
    def entry_id(self) -> str:
        return str(self.entry["id"])

    def finish(self, result: Appended | AllianceError) -> None:
        self.result = result
        self.done = True


@dataclass(slots=True)
class WriterTimes:
    """Where this writer's time went, in seconds, summed over every batch since it was
    made (or last reset): what `alliance bench append` reports per entry, so the part
    of a ratio that each stage costs (above all the rules, which nothing can take off
    the writer's thread) is a measured figure. Two clock reads per entry and a few per
    batch: too little to show in the rate."""

    prepare_s: float = 0.0  # schemas, canonical bytes (and signatures, with no worker)
    prefetch_s: float = 0.0  # the batch's one keyed read per paged table
    verdicts_s: float = 0.0  # waiting for, or taking back, the worker's signature checks
    rules_s: float = 0.0  # admit(): the kind's rules against the state, applied to it
    records_s: float = 0.0  # the rest of admission: contexts, leaves, rows to the stream
    log_write_s: float = 0.0  # entries, tiles and the signed checkpoint
    projections_s: float = 0.0  # sealing and storing the changed projection rows
    commit_s: float = 0.0
    batch_other_s: float = 0.0  # lock, head, catch-up, duplicates, roots, page-out
    wal_copy_s: float = 0.0  # waiting for the SQLite WAL copy (only a caller that drains)
    entries: int = 0

    def in_batch_s(self) -> float:
        """The stages timed inside a batch's window (the rest of it is batch_other)."""
        return (
            self.prefetch_s
            + self.verdicts_s
            + self.rules_s
            + self.records_s
            + self.log_write_s
            + self.projections_s
        )

    def per_entry_us(self) -> dict[str, float]:
        """Each stage's microseconds per admitted entry (empty before any)."""
        if not self.entries:
            return {}
        return {
            name.removesuffix("_s"): round(getattr(self, name) / self.entries * 1e6, 1)
            for name in self.__slots__
            if name.endswith("_s")
        }


@dataclass(slots=True, eq=False)  # compared by identity: one object per chunk
class _Verification:
    """The signatures of a chunk of prepared items, being checked in the worker."""

    future: Future[verifying.Verdicts]
    items: list[Prepared]
    known: list[frozenset[int]]
    resolved: bool = False

    def steal(self) -> bool:
        """Take the chunk back from the worker if it has not started on it: its items
        are then as if no worker had looked at them (admit() checks every signature
        itself, under the lock). False when the worker has it (or it was resolved)."""
        if self.resolved or not self.future.cancel():
            return False
        self.resolved = True
        for item in self.items:
            item.pending = None
        self.items, self.known = [], []
        return True

    def resolve(self) -> None:
        """Wait for the verdicts and give each item what _preverify() would have: its
        verified signatures, or the error the serial check raises."""
        if self.resolved:
            return
        self.resolved = True
        # The items point at this object and it at them: let go of them here, so a
        # finished batch is freed by reference counting, not left to the cycle collector
        # (about ten objects per entry, and every full collection walks the whole state).
        items, known, self.items, self.known = self.items, self.known, [], []
        for item in items:
            item.pending = None
        try:
            verdicts, usable = self.future.result(timeout=VERIFY_WAIT_S)
        except Exception:
            # Nothing verified: admit() checks every signature itself, under the lock.
            verifying.reset()
            return
        remember_usable(usable)
        for item, verdict, verified in zip(items, verdicts, known, strict=True):
            if verdict is None:
                item.verified = verified
            else:
                item.refusal = verifying.error_of(verdict)


def _await_verdicts(pending: _Verification, chunks: list[_Verification]) -> None:
    """Resolve ``pending`` (the chunk of the next item to admit), taking chunks back from
    the worker when it is behind, so that neither side idles: a chunk taken back is as
    if no worker had looked at it (admit() checks those signatures itself).

    * ``pending`` itself, when the worker has not started it (it is busy with another
      caller's chunks, or gone): checking it here beats waiting for the queue.
    * Otherwise the last chunk not yet started, but only while at least
      STEAL_BACKLOG_MIN_CHUNKS of them wait behind ``pending``: the worker is then
      slower than admission (a loaded machine) and would keep this thread waiting at
      chunk after chunk. With a shorter backlog it catches up during the wait, which
      is shorter than checking a chunk here would be.

    The worker takes chunks in order, and a started chunk cannot be taken back."""
    while not pending.future.done():
        if not pending.future.running():
            pending.steal()  # False if the worker picked it up meanwhile: then wait
            break
        backlog = [chunk for chunk in chunks if chunk is not pending and _unstarted(chunk)]
        if len(backlog) < STEAL_BACKLOG_MIN_CHUNKS or not backlog[-1].steal():
            break
    pending.resolve()  # nothing to wait for once stolen


def _unstarted(chunk: _Verification) -> bool:
    return not (chunk.resolved or chunk.future.running() or chunk.future.done())


Clock = Callable[[], datetime]


def _utc_now() -> datetime:
    return datetime.now(UTC)


class Sequencer:
    """The log's single writer per process. Thread-safe."""

    def __init__(self, engine: Engine, operator: PrivateKey, clock: Clock = _utc_now) -> None:
        self.engine = engine
        self.operator = operator
        self.clock = clock
        self._state: State | None = None
        # The batch in progress (_paging): its connection, which the paged tables read on.
        self._batch_connection: Connection | None = None
        self._paging_stack: contextlib.ExitStack | None = None
        self._writer = threading.Lock()  # held by the batch leader
        self._queue: list[Prepared] = []
        self._queue_lock = threading.Lock()
        # Callers checking their submissions right now (outside every lock): a leader
        # waits a moment for them (_linger), so that concurrent single submissions share
        # one transaction instead of paying for one each.
        self._preparing = 0
        self._arrived = threading.Condition(self._queue_lock)
        self._leading = False  # a caller is leading a batch (under _queue_lock)
        # Told the size of each committed batch (the API's metrics), under the writer lock.
        self.batch_observers: list[Callable[[int], None]] = []
        self.times = WriterTimes()  # where the time went (the append bench reads it)
        # SQLite: the WAL is copied into the database file off this thread, after each
        # batch (ledger.walcheckpoint); None on PostgreSQL.
        self.wal = WalCheckpoints.for_engine(engine)
        self._halted: HaltError | None = None
        self._sealer: Sealer | None = None  # bound to the log's genesis leaf, once known
        # The right edge of the tree as this writer verified it (tiles by key) and the
        # size it is for: appends integrate onto this, never onto tiles merely read back.
        self._frontier: dict[merkle.TileKey, bytes] = {}
        self._frontier_size: int | None = None
        # The frontier a batch being committed will leave (taken up once it committed).
        self._pending_frontier: tuple[dict[merkle.TileKey, bytes], int] | None = None

    @property
    def operator(self) -> PrivateKey:
        return self._operator

    @operator.setter
    def operator(self, key: PrivateKey) -> None:
        self._operator = key
        self._operator_key_id = key.key_id  # asked after every admitted entry

    # --- public -------------------------------------------------------------------------

    def submit(self, document: Any) -> Appended:
        """Append one `submitted` document; returns once it is durable."""
        result = self.submit_many([document])[0]
        if isinstance(result, AllianceError):
            raise result
        return result

    def submit_many(
        self, documents: Sequence[Any], *, deadline_s: float = WAIT_DEADLINE_S
    ) -> list[Appended | AllianceError]:
        """Append many submissions (in order, possibly across batches). Each result is
        its Appended, or the error that rejected it. A submission still waiting for the
        writer after ``deadline_s`` answers DeadlineError (it may yet be appended)."""
        with collection_deferred():
            with self._queue_lock:
                self._preparing += 1
            try:
                started = time.perf_counter()
                prepared = self.prepare_many(documents)
                self.times.prepare_s += time.perf_counter() - started
                pending = [item for item in prepared if isinstance(item, Prepared)]
            except BaseException:
                self._enqueue([])
                raise
            self._enqueue(pending)
            self._drain_until_done(pending, time.monotonic() + deadline_s)
            results = [
                item if isinstance(item, AllianceError) else _result(item) for item in prepared
            ]
            # The checked submissions (schema models and all) die here, before the
            # collector runs: it never has to look at them.
            del prepared, pending
        return results

    def state(self) -> State:
        """The state as of the log head (catching up with other writers)."""
        with self._writer, self.engine.begin() as connection, self._paging(connection):
            lock_log(connection)
            return self._sync_state(connection, store.head_size(connection))

    @property
    def sealer(self) -> Sealer:
        """The projection sealer of this log (needs its genesis)."""
        if self._sealer is None:
            with self.engine.connect() as connection:
                genesis = store.read_entry(connection, 0)
            if genesis is None:
                raise NotFoundError("the log has no genesis yet")
            self._sealer = Sealer.for_log(self.operator, merkle.leaf_hash(genesis.leaf))
        return self._sealer

    def sealer_in(self, connection: Connection, first: StoredEntry | None = None) -> Sealer:
        """The sealer, read within the writer's transaction (``first``: the batch's first
        entry, which is the genesis when the log is empty)."""
        if self._sealer is None:
            genesis = store.read_entry(connection, 0)
            leaf = genesis.leaf if genesis is not None else None
            if leaf is None and first is not None and first.seq == 0:
                leaf = first.leaf
            invariant(leaf is not None, "projections sealed before the log has a genesis")
            assert leaf is not None
            self._sealer = Sealer.for_log(self.operator, merkle.leaf_hash(leaf))
        return self._sealer

    def close(self) -> None:
        """Wait for the background work this writer asked for (the WAL checkpoint), so
        none of it runs on an engine being disposed of."""
        if self.wal is not None:
            self.wal.drain()

    def forget(self) -> None:
        """Drop the in-memory state and frontier: the next batch reloads and verifies
        them (after a rebuild or repair replaced the tables they came from)."""
        with self._writer:
            self._state, self._frontier_size, self._pending_frontier = None, None, None

    # --- outside the lock ----------------------------------------------------------------

    def prepare(self, document: Any) -> Prepared:
        """Check one submission as far as possible without the log (see _check and
        _preverify); raises the RejectedError of the first check it fails."""
        return self._preverify(self._check(document))

    def prepare_many(self, documents: Sequence[Any]) -> list[Prepared | AllianceError]:
        """prepare() of each document, or the RejectedError it raised, in two passes: the
        schema and canonical-bytes checks of every document, then the Ed25519 checks of
        those that passed. Each document gets the same checks in the same order as from
        prepare(), so the same result. Keeping the interpreter's work and libsodium's apart
        keeps each one's code and tables in the CPU caches; a batch of at least
        PARALLEL_VERIFY_MIN_ENTRIES has half its signatures checked in a worker process
        meanwhile (ledger/verifying.py)."""
        state = self._state
        deferred = (
            len(documents) >= PARALLEL_VERIFY_MIN_ENTRIES
            and state is not None
            and verifying.pool() is not None
        )
        checked: list[Prepared | AllianceError] = []
        chunk: list[Prepared] = []
        for document in documents:
            try:
                item = self._check(document)
            except RejectedError as exc:
                checked.append(exc)
                continue
            checked.append(item)
            if deferred:
                chunk.append(item)
                if len(chunk) == VERIFY_CHUNK_ENTRIES:
                    self._defer(state, chunk)  # type: ignore[arg-type]
                    chunk = []
        if deferred:
            if chunk:
                self._defer(state, chunk)  # type: ignore[arg-type]
            return checked
        prepared: list[Prepared | AllianceError] = []
        for entry in checked:
            try:
                prepared.append(
                    entry if isinstance(entry, AllianceError) else self._preverify(entry)
                )
            except RejectedError as exc:
                prepared.append(exc)
        return prepared

    def _defer(self, state: State, items: list[Prepared]) -> None:
        """Send ``items``' signatures (those under keys the state knows, as _preverify()
        checks them) to the verification worker; admission waits for the verdicts, so
        this thread goes on checking schemas and admitting meanwhile."""
        jobs: list[verifying.Job] = []
        known: list[frozenset[int]] = []
        declared: list[str] = []
        key = state.key
        for item in items:
            indexes, pairs = [], []
            for index, signature in enumerate(item.signatures):
                row = key(signature["key"])
                if row is not None:
                    indexes.append(index)
                    pairs.append((signature, state.public_key(row).raw))
            jobs.append((item.entry_bytes, pairs))
            known.append(frozenset(indexes))
            declared += _declared_keys(item.body)
        future = verifying.submit(jobs, declared)
        if future is None:  # no worker after all: check here, as _preverify() does
            for item in items:
                try:
                    self._preverify(item)
                except RejectedError as exc:
                    item.refusal = exc
            return
        pending = _Verification(future, items, known)
        for item in items:
            item.pending = pending

    def warm_up(self) -> None:
        """Start the verification worker ahead of the first large batch."""
        verifying.warm_up()

    def _check(self, document: Any) -> Prepared:
        """Envelope and body schemas, canonical bytes and size; no signature checked yet."""
        fields = validate_submitted(document)
        entry: dict[str, Any] = document["entry"]
        signatures: list[dict[str, str]] = document["signatures"]
        body = validate_body(fields["entry"]["kind"], entry["body"])
        # Canonicalized once here; the signature checks and the leaf reuse these bytes.
        # Both passed the strict models above, so the validated fast path applies.
        entry_bytes = canonical_validated(entry)
        signatures_bytes = canonical_validated(signatures)
        # The record adds seq, logged time and signatures; the whole leaf must fit a
        # C2SP entry bundle slot.
        leaf_estimate = len(entry_bytes) + len(signatures_bytes) + RECORD_OVERHEAD_BYTES
        if len(entry_bytes) > ENTRY_BYTES_MAX or leaf_estimate > LEAF_BYTES_MAX:
            raise LimitError(f"an entry is at most {ENTRY_BYTES_MAX} canonical bytes")
        return Prepared(
            entry,
            signatures,
            body,
            entry_bytes,
            signatures_bytes,
            hashlib.sha256(entry_bytes).digest(),
            verified=frozenset(),
        )

    def _preverify(self, item: Prepared) -> Prepared:
        """Ed25519-check the signatures whose keys the state already knows (the rest are
        checked under the lock by admit())."""
        state = self._state
        if state is not None:
            item.verified = preverify(
                state, item.entry, item.signatures, entry_bytes=item.entry_bytes
            )
        return item

    def _enqueue(self, pending: list[Prepared]) -> None:
        """Queue a caller's checked submissions (it is no longer preparing)."""
        with self._queue_lock:
            self._preparing -= 1
            self._arrived.notify_all()
            if len(self._queue) + len(pending) > QUEUE_DEPTH_MAX:
                for item in pending:
                    item.finish(QueueFullError("the writer queue is full; retry shortly"))
                return
            self._queue.extend(pending)

    def _linger(self) -> None:
        """The leader's wait before it takes a batch: while other callers are still
        checking their submissions, up to GROUP_COMMIT_LINGER_S, or until a full batch
        is queued. A transaction's fixed cost (commit, tiles, checkpoint) is then
        shared by every concurrent caller; a lone caller never waits."""
        deadline = time.monotonic() + GROUP_COMMIT_LINGER_S
        with self._arrived:
            while self._preparing > 0 and len(self._queue) < BATCH_SIZE_MAX:
                remaining_s = deadline - time.monotonic()
                if remaining_s <= 0:
                    return
                self._arrived.wait(remaining_s)

    def _drain_until_done(self, pending: list[Prepared], deadline: float) -> None:
        """Wait until every item is done, leading a batch whenever no one else leads.
        Waiters sleep on a condition that each leader signals when its batch is done,
        not on the writer lock itself: a lock hands itself to one waiter at a time, so
        the callers of a finished batch would trickle out one by one while the next
        leader took the few that had queued meanwhile (batches of one or two under
        concurrent single submissions)."""
        for item in pending:
            while not item.done:
                if not self._lead_or_wait(item, deadline):
                    item.finish(DeadlineError("the writer did not reach this entry in time"))
                    break

    def _lead_or_wait(self, item: Prepared, deadline: float) -> bool:
        """Lead one batch, or wait for the current leader's batch to end; False once
        ``deadline`` passed."""
        with self._arrived:
            while self._leading and not item.done:
                remaining_s = deadline - time.monotonic()
                if remaining_s <= 0:
                    return False
                self._arrived.wait(remaining_s)
            if item.done:
                return True
            self._leading = True
        try:
            remaining_s = deadline - time.monotonic()
            if remaining_s <= 0 or not self._writer.acquire(timeout=remaining_s):
                return False
            try:
                if not item.done:
                    self._linger()
                    batch = self._take_batch()
                    if batch:
                        self._run_batch(batch)
            finally:
                self._writer.release()
        finally:
            with self._arrived:
                self._leading = False
                self._arrived.notify_all()
        return True

    def _take_batch(self) -> list[Prepared]:
        """The next batch: queued submissions in order, up to BATCH_SIZE_MAX entries and
        BATCH_BYTES_MAX bytes of leaves (always at least one)."""
        with self._queue_lock:
            count, total_bytes = 0, 0
            for item in self._queue[:BATCH_SIZE_MAX]:
                size = len(item.entry_bytes) + len(item.signatures_bytes) + RECORD_OVERHEAD_BYTES
                if count and total_bytes + size > BATCH_BYTES_MAX:
                    break
                count, total_bytes = count + 1, total_bytes + size
            batch = self._queue[:count]
            del self._queue[:count]
        return batch

    # --- under the lock -----------------------------------------------------------------

    def _run_batch(self, batch: list[Prepared]) -> None:
        if self._halted is not None:
            for item in batch:
                item.finish(self._halted)
            return
        try:
            self._append_batch(batch)
            for observe in self.batch_observers:
                observe(len(batch))
        except HaltError as exc:
            self._halted, self._state, self._pending_frontier = exc, None, None
            for item in batch:
                if not item.done:
                    item.finish(exc)
        except (SQLAlchemyError, OSError) as exc:
            # The state and frontier may hold the batch that was not committed.
            self._state, self._frontier_size, self._pending_frontier = None, None, None
            failure = BatchFailedError(f"the batch was not committed: {exc.__class__.__name__}")
            for item in batch:
                item.finish(failure)

    def _append_batch(self, batch: list[Prepared]) -> None:
        times, clock = self.times, time.perf_counter
        started = clock()
        spent_before = times.in_batch_s()
        if self.wal is not None:
            self.wal.restart_if_long()  # so that this batch restarts a long WAL
        now = self.clock()
        logged = format_utc(now)
        results: list[tuple[Prepared, Appended | AllianceError]] = []
        with self.engine.begin() as connection, self._paging(connection):
            lock_log(connection)
            # We now hold the log: nobody else can append until we commit or roll back.
            size = store.head_size(connection)
            state = self._sync_state(connection, size)
            now, logged = _held_clock(state, now, logged)
            refusal = self._operator_refusal(state, batch)
            if refusal is not None:
                results = [(item, refusal) for item in batch]
            else:
                existing = _logged(store.find_ids(connection, [i.entry_id for i in batch]))
                state.reports.clear()  # a catch-up's reports are the other writer's
                # Before the log rows stream: a COPY in progress holds the connection.
                state.tree_root = _batch_roots(connection, self._frontier, size, batch)
                try:
                    # Each admitted leaf goes to the database at once (PostgreSQL), so the
                    # server stores it while the next entries are judged.
                    with store.EntryStream(connection) as stream:
                        entries = self._admit_batch(
                            state, batch, existing, now, logged, results, stream
                        )
                        if entries:
                            self._write(connection, state, size, entries, now, stream)
                finally:
                    state.tree_root = None  # it holds the connection
            committing = clock()
        # Committed: the batch's entries, tiles, projections and checkpoint are durable.
        committed = clock()
        times.commit_s += committed - committing
        if self.wal is not None and any(isinstance(r, Appended) for _, r in results):
            self.wal.committed()  # the copy of this batch's WAL pages, off this thread
        self._page_out(state)
        if self._pending_frontier is not None:
            self._frontier, self._frontier_size = self._pending_frontier
            self._pending_frontier = None
        for item, result in results:
            item.finish(result)
        elapsed = clock() - started
        in_stages = times.in_batch_s() - spent_before
        times.batch_other_s += elapsed - (committed - committing) - in_stages

    def _operator_refusal(self, state: State, batch: list[Prepared]) -> AllianceError | None:
        """Refuse the whole batch, before anything is written, when this writer's key is
        not an operator key the log declared (or, for a new log, its genesis declares)."""
        mine = self.operator.key_id
        if state.has_genesis:
            declared = state.current_keys.get(OPERATOR, set())
        else:
            declared = set()
            for item in batch:
                if item.entry.get("kind") == "region.genesis":
                    declared |= {
                        key for key, (who, _) in genesis_keys(item.body).items() if who == OPERATOR
                    }
            if not declared:
                return None  # no genesis in sight: admit() refuses each entry itself
        if mine in declared:
            return None
        row = state.key(mine) if state.has_genesis else None
        if row is not None and row.principal == OPERATOR and row.until_seq is not None:
            return OperatorKeyError(
                f"operator key {mine} was replaced by operator.keys_changed at seq "
                f"{row.until_seq}: start the writer with the new key; nothing was written"
            )
        return OperatorKeyError(
            f"operator key {mine} is not an operator key of this log; nothing was written"
        )

    def _admit_batch(
        self,
        state: State,
        batch: list[Prepared],
        existing: dict[str, tuple[int, bytes, bytes]],
        now: datetime,
        logged: str,
        results: list[tuple[Prepared, Appended | AllianceError]],
        stream: store.EntryStream,
    ) -> list[StoredEntry]:
        entries: list[StoredEntry] = []
        handed_over: OperatorKeyError | None = None
        times, clock = self.times, time.perf_counter
        started = clock()
        prefetch(
            state,
            [(i.entry["kind"], i.entry["signer"], i.body) for i in batch if i.refusal is None],
        )
        prefetched = clock()
        times.prefetch_s += prefetched - started
        rules_s = verdicts_s = 0.0
        # The batch's chunks with the worker, in order: while it is behind, this thread
        # takes some back and checks them itself (_await_verdicts).
        chunks = list(dict.fromkeys(i.pending for i in batch if i.pending is not None))
        for item in batch:
            if item.pending is not None:
                waiting = clock()
                _await_verdicts(item.pending, chunks)
                verdicts_s += clock() - waiting
            invariant(item.pending is None, "a deferred verification was not resolved")
            refusal = item.refusal or handed_over
            if refusal is not None:
                results.append((item, refusal))
                continue
            known = existing.get(item.entry_id)
            if known is not None:
                results.append((item, _duplicate(state, item, known)))
                continue
            seq = state.size
            ctx = prepared_context(item, seq, now, logged)
            judging = clock()
            try:
                admit(state, ctx, verified=item.verified)
            except RejectedError as exc:
                results.append((item, exc))
                continue
            finally:
                rules_s += clock() - judging
            stored = _stored(ctx, item)
            entries.append(stored)
            stream.add(stored)
            existing[item.entry_id] = (seq, item.entry_hash, stored.leaf_hash)
            results.append((item, Appended(seq, stored.leaf_hash)))
            handed_over = self._handed_over(state, seq)
        times.rules_s += rules_s
        times.verdicts_s += verdicts_s
        times.records_s += clock() - prefetched - rules_s - verdicts_s
        times.entries += len(entries)
        return entries

    def _handed_over(self, state: State, seq: int) -> OperatorKeyError | None:
        """After an operator.keys_changed that ends this writer's key, the batch stops:
        its checkpoint (of size seq + 1) is the old key's last (operator_keys_at), and
        every later entry waits for a writer with the new key."""
        if self._operator_key_id in state.current_keys.get(OPERATOR, ()):
            return None
        return OperatorKeyError(
            f"operator key {self.operator.key_id} was replaced by operator.keys_changed at "
            f"seq {seq}: submit again to a writer with the new key; nothing was written"
        )

    def _write(
        self,
        connection: Connection,
        state: State,
        size: int,
        entries: list[StoredEntry],
        now: datetime,
        stream: store.EntryStream,
    ) -> None:
        invariant(entries[0].seq == size, f"batch starts at {entries[0].seq}, log at {size}")
        invariant(self._frontier_size == size, "the writer has no verified frontier")
        started = time.perf_counter()
        integration = merkle.integrate(size, self._frontier, [e.leaf_hash for e in entries])
        invariant(integration.size == state.size, "tree size and state size disagree")
        store.insert_entries(connection, entries, stream)
        # In the transaction: leaves under gapless seqs (triggers refuse gaps and leaves
        # whose columns disagree with their bytes).
        store.write_tiles(connection, integration.tiles)
        _check_no_nodes(connection, integration.nodes)
        store.write_nodes(connection, integration.nodes)
        # In the transaction: the tiles (triggers refuse anything but exact growth).
        sealing = time.perf_counter()
        projections.write_changes(connection, state, self.sealer_in(connection, entries[0]))
        # In the transaction: sealed projection rows and the head marker of state.size.
        written = time.perf_counter()
        self.times.projections_s += written - sealing
        store.insert_reports(connection, state.reports)
        state.reports.clear()
        # In the transaction: the reports of the nights this batch closed.
        checkpoint = publish(state.origin, integration.size, integration.root, self.operator, now)
        store.insert_checkpoint(connection, checkpoint)
        # In the transaction: the signed checkpoint. Commit makes all four durable at once;
        # only then does this writer's frontier move (a rollback leaves it as it was).
        self._pending_frontier = _frontier_after(size, self._frontier, integration)
        self.times.log_write_s += (sealing - started) + (time.perf_counter() - written)

    def _sync_state(self, connection: Connection, size: int) -> State:
        """The state and frontier as of the log head ``size``, built only from what this
        writer can verify: sealed projection rows (ledger.seal) and the checkpoint it
        signed for their size; every entry beyond them is replayed with all its
        signatures checked, and its leaf hashes integrated onto the verified frontier."""
        state = self._state
        if state is None or self._frontier_size != state.size:
            sealer = self.sealer_in(connection) if size else None
            state = State()
            if sealer is not None:
                state = projections.load_state(connection, sealer, size, paged=True).state
                state.attach(projections.SealedRows(self.engine, sealer), WRITER_PAGED_TABLES)
                self._bind(state, connection)
            self._verify_frontier(connection, state)
        invariant(state.size <= size, f"state at {state.size} is ahead of the log at {size}")
        if state.size < size:
            self._catch_up(connection, state, size)
        self._state = state
        return state

    @contextlib.contextmanager
    def _paging(self, connection: Connection) -> Iterator[None]:
        """While the block runs (a batch), the state's paged tables read on
        ``connection``: the batch's transaction, so what it judges is what it sees."""
        self._batch_connection = connection
        try:
            with contextlib.ExitStack() as stack:
                self._paging_stack = stack
                if self._state is not None:
                    self._bind(self._state, connection)
                yield
        finally:
            self._batch_connection = self._paging_stack = None

    def _bind(self, state: State, _connection: Connection) -> None:
        source = state.source
        if isinstance(source, projections.SealedRows) and self._paging_stack is not None:
            self._paging_stack.enter_context(source.bound())

    def _page_out(self, state: State) -> None:
        """After a commit: the paged rows the batch read or wrote are stored, so the
        state drops them. A writer that started on an empty log starts paging here, once
        its genesis (which the sealer needs) is stored."""
        if state.source is None and state.has_genesis:
            state.attach(projections.SealedRows(self.engine, self.sealer), WRITER_PAGED_TABLES)
        state.evict_pages()

    def _verify_frontier(self, connection: Connection, state: State) -> None:
        """Take the stored frontier of ``state.size`` only if its root is the root of a
        checkpoint at that size signed by one of the log's operator keys."""
        size = state.size
        tiles = dict(store.DbTiles(connection).read_tiles(merkle.frontier_tile_keys(size)))
        if size:
            stored = store.checkpoint_at(connection, size)
            if stored is None:
                raise TamperedError(f"no checkpoint at size {size}: run `alliance doctor`")
            try:
                tree_root = merkle.root(size, merkle.MemoryTiles(tiles))
            except (InvariantError, KeyError) as exc:
                raise TamperedError(f"frontier tiles of size {size} are damaged") from exc
            verify_checkpoint(state, stored.note, size, tree_root)
            if tree_root != stored.root:
                raise TamperedError(
                    f"frontier tiles of size {size} disagree with its checkpoint: "
                    "run `alliance doctor`"
                )
        self._frontier, self._frontier_size = tiles, size

    def _catch_up(self, connection: Connection, state: State, size: int) -> None:
        """Entries another process appended (or someone planted): judge each exactly as
        if it were submitted now, signatures included, and integrate its leaf. One that
        fails halts the writer: the log holds an entry the rules refuse."""
        start = state.size
        latest_logged = self.clock() + timedelta(seconds=GENESIS_TIME_SKEW_S)
        leaf_hashes = []
        for stored in store.read_entries(connection, start, size):
            try:
                ctx = foreign_context(stored.leaf, state, latest_logged)
                admit(state, ctx)
            except RejectedError as exc:
                raise TamperedError(
                    f"the log holds seq {state.size}, which the rules refuse ({exc}): "
                    "run `alliance doctor`"
                ) from exc
            leaf_hashes.append(merkle.leaf_hash(stored.leaf))
        integration = merkle.integrate(start, self._frontier, leaf_hashes)
        frontier = _frontier_after(start, self._frontier, integration)[0]
        stored_tiles = store.DbTiles(connection).read_tiles(list(integration.tiles))
        for key, tile in integration.tiles.items():
            if not tile.startswith(stored_tiles.get(key, b"")):
                raise TamperedError(
                    f"tile {key[0]}/{key[1]} disagrees with the leaves: run `alliance doctor`"
                )
        stored_nodes = store.DbTiles(connection).read_nodes(list(integration.nodes))
        for key, nodes in integration.nodes.items():
            if stored_nodes.get(key, nodes) != nodes:
                raise TamperedError(
                    f"inner nodes of tile {key[0]}/{key[1]} disagree with the leaves: "
                    "run `alliance doctor`"
                )
        missing = {k: t for k, t in integration.tiles.items() if stored_tiles.get(k) != t}
        store.write_tiles(connection, missing)
        store.write_nodes(
            connection, {k: n for k, n in integration.nodes.items() if k not in stored_nodes}
        )
        # In this transaction: tiles of the caught-up leaves that were missing (committed
        # with this batch, or rolled back with it).
        if projections.sealed_head(connection, self.sealer_in(connection), size) == size:
            state.forget_changes()  # another writer stored and sealed these rows
        self._frontier, self._frontier_size = frontier, size


def _declared_keys(body: WireModel) -> list[str]:
    """The public keys (wire base64) a body declares for a member. Their curve check
    is costly (every enrolment brings a new key): the verification worker makes it
    ahead, and admission, which checks each key again, finds it cached."""
    if isinstance(body, MemberEnrolledBody):
        return [key.pub for key in body.member.keys]
    if isinstance(body, MemberKeysBody):
        return [key.pub for key in body.keys]
    return []


def _check_no_nodes(connection: Connection, nodes: dict[merkle.TileKey, bytes]) -> None:
    """Inner nodes of tiles this batch fills must not be stored yet: a row there was
    planted (the trigger refuses it before the tile is full, so only the schema owner
    could) and would make the insert fail on every retry. Say so instead."""
    if not nodes:
        return
    planted = sorted(store.DbTiles(connection).read_nodes(list(nodes)))
    if planted:
        level, index = planted[0]
        raise TamperedError(
            f"inner nodes of tile {level}/{index} are stored before it filled: "
            "run `alliance doctor --repair`"
        )


def _logged(found: dict[str, tuple[int, bytes]]) -> dict[str, tuple[int, bytes, bytes]]:
    """entry id -> (seq, SHA-256 of the entry's canonical bytes, leaf hash), derived from
    each logged leaf."""
    logged = {}
    for entry_id, (seq, leaf) in found.items():
        ctx = leaf_context(leaf)
        logged[entry_id] = (seq, hashlib.sha256(ctx.entry_bytes).digest(), merkle.leaf_hash(leaf))
    return logged


def _verified_root(
    connection: Connection, frontier: Mapping[merkle.TileKey, bytes], head: int, size: int
) -> bytes:
    """The root of the tree of ``size`` ≤ ``head`` leaves from the stored tiles, proven
    consistent with the verified frontier of ``head`` (tiles someone rewrote below the
    frontier give a root no consistency proof joins to it)."""
    invariant(0 <= size <= head, f"a root of size {size} beyond the verified head {head}")
    head_root = merkle.root(head, merkle.MemoryTiles(dict(frontier)))
    if size == head:
        return head_root
    tiles = store.DbTiles(connection)
    root = merkle.root(size, tiles)
    proof = merkle.consistency_proof(size, head, tiles)
    try:
        merkle.verify_consistency(size, head, root, head_root, proof)
    except VerificationError as exc:
        raise TamperedError(f"stored tiles give no root of size {size} consistent") from exc
    return root


def _batch_roots(
    connection: Connection,
    frontier: Mapping[merkle.TileKey, bytes],
    head: int,
    batch: Sequence[Prepared],
) -> Callable[[int], bytes]:
    """The roots a batch's nights claim as their cutoff (each verified against the
    frontier), read before admission starts: during it, the log rows' COPY holds the
    connection on PostgreSQL. A size no night of the batch claimed has no root here."""
    wanted = {
        item.body.cutoff.tree_size
        for item in batch
        if isinstance(item.body, ReconciliationClosedBody)
        and 0 <= item.body.cutoff.tree_size <= head
    }
    roots = {size: _verified_root(connection, frontier, head, size) for size in sorted(wanted)}

    def root_at(size: int) -> bytes:
        root = roots.get(size)
        if root is None:
            raise PolicyError(
                f"no verified root of tree size {size} for this batch",
                field="body.cutoff.tree_size",
            )
        return root

    return root_at


def _held_clock(state: State, now: datetime, logged: str) -> tuple[datetime, str]:
    """The batch's logged time: the clock, or the last logged time if the clock stepped
    back (NTP, a VM restore). ``logged`` never decreases along seq, because a business
    day's cutoff (the nightly reconciliation) is read from it."""
    if state.last_logged is None:
        return now, logged
    last = parse_time(state.last_logged)
    if now >= last:
        return now, logged
    return last, state.last_logged


def foreign_context(leaf: bytes, state: State, latest_logged: datetime) -> Context:
    """The context of a leaf this writer did not write, refused unless it is what this
    writer would have written at that place: canonical RFC 8785 bytes within the bundle
    limit, the next seq, and a logged time no earlier than the last one and no later
    than now plus the skew (so no time rule is judged at a time someone chose)."""
    if len(leaf) > LEAF_BYTES_MAX:
        raise MalformedError(f"the leaf is {len(leaf)} bytes, over {LEAF_BYTES_MAX}")
    ctx = leaf_context(leaf, expected_seq=state.size)
    record = {
        "seq": ctx.seq,
        "logged": ctx.logged_text,
        "entry": ctx.entry,
        "signatures": ctx.signatures,
    }
    if canonical(record) != leaf:
        raise MalformedError("the leaf is not in RFC 8785 canonical form")
    if _LOGGED_TEXT.fullmatch(ctx.logged_text) is None:
        raise MalformedError(f"logged time {ctx.logged_text} is not the writer's form")
    if state.last_logged is not None and ctx.logged < parse_time(state.last_logged):
        raise PolicyError(f"logged time {ctx.logged_text} is before {state.last_logged}")
    if ctx.logged > latest_logged:
        raise PolicyError(f"logged time {ctx.logged_text} is in the future")
    return ctx


def verify_checkpoint(state: State, note: str, size: int, root: bytes) -> None:
    """Raise TamperedError unless ``note`` is a checkpoint of ``size`` and ``root``
    signed by an operator key the log declared for that size (operator_keys_at)."""
    verifiers = [
        NoteVerifier.from_public(state.origin, state.public_key(row))
        for row in operator_keys_at(state, size)
    ]
    signed = signed_by(note, verifiers)
    if signed is None or (signed[1].size, signed[1].root) != (size, root):
        raise TamperedError(
            f"no checkpoint of size {size} with this root is signed by the operator"
        )


def _frontier_after(
    size: int, frontier: dict[merkle.TileKey, bytes], integration: merkle.Integration
) -> tuple[dict[merkle.TileKey, bytes], int]:
    merged = {**frontier, **integration.tiles}
    keys = merkle.frontier_tile_keys(integration.size)
    invariant(integration.size >= size, "the tree only grows")
    return {key: merged[key] for key in keys}, integration.size


def lock_log(connection: Connection) -> None:
    """Hold the log for the rest of this transaction, against every other writer: on
    SQLite the transaction's BEGIN IMMEDIATE already did; on PostgreSQL an advisory
    lock does."""
    if connection.dialect.name == "postgresql":
        _advisory_lock(connection, "pg_advisory_xact_lock")


def try_lock_log(connection: Connection) -> bool:
    """lock_log without waiting: False when another transaction holds the log. On
    SQLite the caller's BEGIN IMMEDIATE is the lock (with a zero busy timeout, it is
    refused at once rather than waited for)."""
    if connection.dialect.name != "postgresql":
        return True
    return bool(_advisory_lock(connection, "pg_try_advisory_xact_lock"))


def _advisory_lock(connection: Connection, function: str) -> object:
    """The log's advisory lock, keyed by the schema the URL selects. No schema of the
    search path exists: the lock functions take NULL and lock nothing, so that is a
    ConfigError rather than a log nobody holds."""
    call = f"{function}({ADVISORY_LOCK_CLASS}, hashtext(current_schema()))"
    schema, locked = connection.execute(select(text("current_schema()"), text(call))).one()
    if schema is None:
        raise ConfigError("no schema of the database URL's search_path exists: create it first")
    return locked


def replay(state: State, entries: Any) -> None:
    """Apply stored entries to ``state``, every signature verified (rebuild, doctor).
    One that fails raises the RejectedError it failed with, naming its seq."""
    for stored in entries:
        ctx = leaf_context(stored.leaf, expected_seq=state.size)
        try:
            admit(state, ctx)
        except RejectedError as exc:
            exc.seq = ctx.seq
            raise


def record_leaf(seq: int, logged: str, entry_bytes: bytes, signatures_bytes: bytes) -> bytes:
    """leaf = JCS({"seq", "logged", "entry", "signatures"}) (DESIGN §3), assembled from
    the canonical bytes of the entry and its signatures that prepare() already computed:
    JCS serializes each member value on its own, so the bytes are the same. The members
    in JCS order are entry, logged, seq, signatures; ``logged`` is the writer's own
    RFC 3339 UTC text (ASCII, nothing to escape), checked here, and ``seq`` a
    non-negative integer, so both are written directly (tests/ledger/test_record_leaf.py
    pins the result to RFC 8785 of the record)."""
    # The messages are built only for a failure (this runs once per entry).
    if _LOGGED_TEXT.fullmatch(logged) is None:
        invariant(False, f"logged time {logged!r} malformed")
    if not 0 <= seq <= SAFE_INTEGER_MAX:
        invariant(False, f"seq {seq} outside the JSON safe range")
    return b"".join(
        (
            b'{"entry":',
            entry_bytes,
            b',"logged":"',
            logged.encode("ascii"),
            b'","seq":',
            str(seq).encode("ascii"),
            b',"signatures":',
            signatures_bytes,
            b"}",
        )
    )


def prepared_context(item: Prepared, seq: int, now: datetime, logged: str) -> Context:
    """The context of a prepared submission judged at ``seq``, logged at ``now`` (its
    text ``logged``): what admit() and _stored() take."""
    return make_context(
        seq,
        now,
        logged,
        item.entry,
        item.signatures,
        body=item.body,
        entry_bytes=item.entry_bytes,
    )


def _stored(ctx: Context, item: Prepared) -> StoredEntry:
    leaf = record_leaf(ctx.seq, ctx.logged_text, item.entry_bytes, item.signatures_bytes)
    if len(leaf) > LEAF_BYTES_MAX:
        invariant(False, f"leaf of {len(leaf)} bytes exceeds a bundle entry")
    return StoredEntry(
        seq=ctx.seq,
        entry_id=item.entry_id,
        entry_hash=item.entry_hash,
        kind=ctx.kind,
        signer=ctx.signer,
        logged=ctx.logged_text,
        leaf=leaf,
        leaf_hash=merkle.leaf_hash(leaf),
    )


def _duplicate(
    state: State, item: Prepared, known: tuple[int, bytes, bytes]
) -> Appended | AllianceError:
    """The seq of a logged entry, told only to a submitter whose every signature verified
    under a key of the log (prepare() checked those): nobody learns from a copy with
    forged signatures what the log holds."""
    seq, entry_hash, leaf_hash = known
    refusal = SignatureError(
        f"entry id {item.entry_id} is logged; its signatures here do not verify",
        field="signatures",
    )
    if not item.signatures:
        return refusal
    for index, signature in enumerate(item.signatures):
        if index in item.verified:
            continue
        row = state.key(signature["key"])
        if row is None:
            return refusal
        try:
            verify_entry_signature(item.entry_bytes, signature, state.public_key(row))
        except RejectedError:
            return refusal
    if entry_hash != item.entry_hash:
        return ConflictError(
            f"entry id {item.entry_id} was logged at seq {seq} with different content",
            seq=seq,
        )
    return Appended(seq, leaf_hash, duplicate=True)


def _result(item: Prepared) -> Appended | AllianceError:
    invariant(item.result is not None, "a prepared submission finished without a result")
    assert item.result is not None
    return item.result
