"""The front door: one ``Ledger`` per database, for the CLI, the API, the demo, the
benches, the nodes and the tests. Nothing outside ``ledger/`` builds a sequencer or signs
a checkpoint.

A Ledger opened with the operator key can write (submit, rebuild, doctor --repair);
without it, it serves verified reads: every checkpoint it hands out verifies under an
operator key the log declared for that size (the genesis, then operator.keys_changed),
every cosignature under a witness key the log declared (the genesis, then region.joined),
and every proof against that checkpoint before it leaves.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, create_engine
from sqlalchemy.exc import DBAPIError

from ledger import export as exporting
from ledger import merkle, projections, store
from ledger.db import make_engine, sqlite_file
from ledger.kinds.settlement import check_report
from ledger.maintenance import unguarded
from ledger.publish import signed_by
from ledger.reads import Reads
from ledger.schema import is_initialized, migrate
from ledger.sequencer import Appended, Sequencer, lock_log, replay
from ledger.state import OPERATOR, State, admit, leaf_context
from schemas.entry import parse_record
from schemas.errors import (
    AllianceError,
    AlreadyInitialisedError,
    ConfigError,
    InvariantError,
    LimitError,
    NotFoundError,
    RejectedError,
    TamperedError,
    VerificationError,
    invariant,
)
from schemas.limits import (
    CHECKPOINT_CANDIDATES_MAX,
    FETCH_LEAVES_MAX,
    PROOF_ATTEMPTS,
    PROOF_POOL_OVERFLOW,
    PROOF_POOL_SIZE,
    PROOF_TREE_SIZE_MAX,
    TILE_WIDTH,
    VERIFIED_CHECKPOINTS_MAX,
    VERIFIED_RANGES_MAX,
    VERIFIED_ROOTS_MAX,
    WAIT_DEADLINE_S,
)
from signing.checkpoint import (
    CosignatureVerifier,
    add_cosignatures,
    verify_cosigned_checkpoint,
)
from signing.keys import PrivateKey, PublicKey, b64decode, b64encode
from signing.note import NoteVerifier

T = TypeVar("T")
Clock = Callable[[], datetime]


def _utc_now() -> datetime:
    return datetime.now(UTC)


# The kinds that declare the keys checkpoints and cosignatures are verified under (and
# policy.adopted, whose time skew their admission checks). Rare: a reader replays just
# these, from their own leaves.
DECLARING_KINDS = (
    "region.genesis",
    "policy.adopted",
    "region.joined",
    "region.keys_changed",
    "operator.keys_changed",
)


@dataclass(frozen=True, slots=True)
class OperatorKey:
    """An operator key the log declared, and the checkpoint sizes it may sign
    (ledger.state.operator_keys_at: from its first seq, and up to the checkpoint that
    first includes the rotation that ended it)."""

    verifier: NoteVerifier
    from_seq: int
    until_seq: int | None

    def signs(self, size: int) -> bool:
        return self.from_seq <= size and (self.until_seq is None or size <= self.until_seq + 1)


@dataclass(frozen=True, slots=True)
class LogKeys:
    """The keys the log declared up to ``size``: whom checkpoints and cosignatures must be
    by. Read from the log's own declarations (the genesis, region.joined,
    operator.keys_changed…), each admitted with its signatures checked under the keys
    declared before it, so a planted leaf cannot declare a key."""

    origin: str
    operators: tuple[OperatorKey, ...]  # in the order the log declared them
    witnesses: dict[str, CosignatureVerifier]  # by region code
    size: int

    def operators_at(self, size: int) -> list[NoteVerifier]:
        """The operator keys that may sign the checkpoint of ``size``."""
        return [key.verifier for key in self.operators if key.signs(size)]


@dataclass(frozen=True, slots=True)
class InclusionProof:
    seq: int
    tree_size: int
    leaf_hash: bytes
    hashes: list[bytes]
    root: bytes

    def require_leaf(self, leaf: bytes) -> None:
        """Raise TamperedError unless ``leaf`` (read from the log's rows) is the leaf this
        proof proves. A proof takes its leaf's hash from the tile, checked against the
        root; whoever serves a leaf beside it must check the leaf against that hash, or
        an altered row (a hostile file, the schema's owner) would be served as proven."""
        if merkle.leaf_hash(leaf) != self.leaf_hash:
            raise TamperedError(
                f"the stored leaf at seq {self.seq} is not the one the log's tree holds:"
                " run `alliance doctor`"
            )

    def wire(self) -> dict[str, object]:
        return {
            "seq": self.seq,
            "tree_size": self.tree_size,
            "leaf_hash": b64encode(self.leaf_hash),
            "hashes": [b64encode(h) for h in self.hashes],
            "root": b64encode(self.root),
        }


@dataclass(frozen=True, slots=True)
class ConsistencyProof:
    old: int
    new: int
    hashes: list[bytes]
    old_root: bytes
    new_root: bytes

    def wire(self) -> dict[str, object]:
        return {
            "old": self.old,
            "new": self.new,
            "hashes": [b64encode(h) for h in self.hashes],
            "old_root": b64encode(self.old_root),
            "new_root": b64encode(self.new_root),
        }


@dataclass(frozen=True, slots=True)
class SignedCheckpoint:
    """The newest checkpoint that verifies, with every stored cosignature that verifies."""

    size: int
    root: bytes
    note: str  # the operator's note plus the verified cosignature lines
    cosigned_by: tuple[str, ...]  # region codes


@dataclass(frozen=True, slots=True)
class RebuildReport:
    entries: int
    rows: int
    identical: bool
    differing_tables: list[str]

    def wire(self) -> dict[str, object]:
        return {
            "entries": self.entries,
            "rows": self.rows,
            "identical": self.identical,
            "differing_tables": self.differing_tables,
        }


class Ledger:
    """One log database, its writer (when it holds the operator key) and its reads."""

    def __init__(
        self,
        engine: Engine,
        operator: PrivateKey | None,
        clock: Clock,
        *,
        wait_deadline_s: float = WAIT_DEADLINE_S,
    ) -> None:
        self.engine = engine
        self.operator = operator
        self.clock = clock
        self.wait_deadline_s = wait_deadline_s
        self._sequencer: Sequencer | None = None
        self._keys: LogKeys | None = None
        # The declaring entries replayed so far (only those kinds: see log_keys()).
        self._declared = State()
        self._keys_lock = threading.Lock()
        # The proofs' own pool (PostgreSQL: no ping on checkout), made on first use.
        self._proofs: Engine | None = None
        # What THIS process verified, never what a table says was verified: the verdict
        # on each checkpoint row (size, root, note) under the LogKeys object it was
        # checked with (a new object, after the log grew, means check again); the
        # cosigned checkpoint of each (row, cosignature lines); and the roots of older
        # sizes proven consistent with a verified checkpoint. A changed row is another
        # key, so a planted or altered row is checked, never looked up.
        self._verdicts: dict[tuple[int, bytes, str], tuple[LogKeys, bool]] = {}
        self._cosigned: dict[
            tuple[int, bytes, str, tuple[str, ...]], tuple[LogKeys, SignedCheckpoint]
        ] = {}
        self._roots: dict[int, bytes] = {}
        self._ranges = VerifiedRanges()
        self._last_head: tuple[int, bytes] | None = None  # what _head() last verified

    # --- opening ---------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        url: str,
        operator: PrivateKey | None = None,
        clock: Clock = _utc_now,
        *,
        wait_deadline_s: float = WAIT_DEADLINE_S,
    ) -> Ledger:
        """An initialised ledger at ``url``. With ``operator``, the writer refuses to
        append unless that key is one the log declared for its operator."""
        path = sqlite_file(url)
        if path is not None and not path.is_file():  # a typo makes no empty file or folder
            raise NotFoundError(f"no ledger at {path}: run `alliance init` first")
        engine = make_engine(url)
        if not is_initialized(engine):
            raise NotFoundError("no ledger in this database: run `alliance init` first")
        return cls(engine, operator, clock, wait_deadline_s=wait_deadline_s)

    @classmethod
    def replica(cls, url: str) -> Ledger:
        """A read-only ledger on a hot standby (or any copy) of a log's database: it has
        no operator key, so it can never append or decide admission; it serves what its
        own verified checkpoint covers (a lagging standby serves an older checkpoint,
        never a tile or leaf beyond it)."""
        return cls.open(url)

    @classmethod
    def create(
        cls, url: str, genesis: dict[str, Any], operator: PrivateKey, clock: Clock = _utc_now
    ) -> Ledger:
        """Migrate the schema and append ``genesis`` (a `submitted` region.genesis)."""
        engine = make_engine(url)
        migrate(engine)
        with engine.connect() as connection:
            if store.head_size(connection) > 0:
                raise AlreadyInitialisedError("this database already holds a ledger")
        ledger = cls(engine, operator, clock)
        ledger.submit(genesis)
        return ledger

    def close(self) -> None:
        try:
            if self._sequencer is not None:
                self._sequencer.close()
        finally:
            if self._proofs is not None:
                self._proofs.dispose()
            self.engine.dispose()

    @property
    def writer(self) -> Sequencer:
        if self.operator is None:
            raise ConfigError("this ledger was opened without the operator key: read-only")
        if self._sequencer is None:
            self._sequencer = Sequencer(self.engine, self.operator, self.clock)
        return self._sequencer

    # --- writing ---------------------------------------------------------------------

    def submit(self, document: Any) -> Appended:
        result = self.submit_many([document])[0]
        if isinstance(result, AllianceError):
            raise result
        return result

    def submit_many(self, documents: Sequence[Any]) -> list[Appended | AllianceError]:
        """Append in order; each result is its Appended or the error that refused it."""
        return self.writer.submit_many(documents, deadline_s=self.wait_deadline_s)

    def state(self) -> State:
        """The verified state at the log head (the writer's own; needs the operator key)."""
        return self.writer.state()

    # --- the keys the log declared -----------------------------------------------------

    def log_keys(self) -> LogKeys:
        """The keys declared by the log as it stands; only declarations logged since the
        last call are read (a reader's replay of the declaring kinds alone)."""
        with self.engine.connect() as connection:
            return self._keys_on(connection)

    def _keys_on(self, connection: Connection) -> LogKeys:
        """log_keys() on the caller's connection (on SQLite a second one, opened inside
        it, would wait for the first one's lock)."""
        with self._keys_lock:
            size = store.head_size(connection)
            if self._keys is None or self._keys.size < size:
                start = 0 if self._keys is None else self._keys.size
                leaves = store.read_entries_of_kinds(connection, DECLARING_KINDS, start, size)
                try:
                    _declare(self._declared, leaves)
                except TamperedError:
                    self._declared, self._keys = State(), None  # half-applied: start over
                    raise
                if not self._declared.has_genesis:
                    raise NotFoundError("the log has no genesis yet")
                self._keys = declared_keys(self._declared, size)
            return self._keys

    # --- checkpoints and proofs --------------------------------------------------------

    def signed_checkpoint(self) -> SignedCheckpoint:
        """The newest stored checkpoint whose signature verifies, with the stored
        cosignatures that verify (forged rows are passed over, never served)."""
        keys = self.log_keys()
        with self.engine.connect() as connection:
            stored = self._newest_verified(connection, keys)
            lines = store.cosignature_lines(connection, stored.size)
        cache_key = (stored.size, stored.root, stored.note, tuple(lines))
        remembered = self._cosigned.get(cache_key)
        if remembered is not None and remembered[0] is keys:
            return remembered[1]
        checkpoint = _with_cosignatures(keys, stored, lines)
        _remember(self._cosigned, cache_key, (keys, checkpoint), VERIFIED_CHECKPOINTS_MAX)
        return checkpoint

    def _verifies(self, keys: LogKeys, stored: store.StoredCheckpoint) -> bool:
        """row_verifier() of the row, or this process's verdict on the same row under
        the same keys."""
        cache_key = (stored.size, stored.root, stored.note)
        remembered = self._verdicts.get(cache_key)
        if remembered is not None and remembered[0] is keys:
            return remembered[1]
        verdict = row_verifier(keys, stored) is not None
        _remember(self._verdicts, cache_key, (keys, verdict), VERIFIED_CHECKPOINTS_MAX)
        return verdict

    def _newest_verified(self, connection: Connection, keys: LogKeys) -> store.StoredCheckpoint:
        """The newest stored checkpoint row whose operator signature verifies."""
        for stored in store.recent_checkpoints(connection, CHECKPOINT_CANDIDATES_MAX):
            if self._verifies(keys, stored):
                return stored
        raise NotFoundError("the log has no checkpoint that verifies")

    def _head(self, connection: Connection) -> tuple[int, bytes]:
        """(size, root) of the newest checkpoint that verifies. Its row is read on every
        call (a planted or newer row is never missed); only a row this process already
        verified, under keys declared up to at least its size, skips the signature
        check and the re-reading of the keys (issue 11: proofs flat in n)."""
        keys = self._keys
        newest = store.latest_checkpoint(connection)
        if keys is not None and newest is not None and newest.size <= keys.size:
            remembered = self._verdicts.get((newest.size, newest.root, newest.note))
            if remembered is not None and remembered[0] is keys and remembered[1]:
                self._last_head = (newest.size, newest.root)
                return self._last_head
        stored = self._newest_verified(connection, self._keys_on(connection))
        self._last_head = (stored.size, stored.root)
        return self._last_head

    def _tree(self, connection: Connection, requested: int | None) -> tuple[int, bytes]:
        """(size, root) of the tree of ``requested`` leaves (default: the newest verified
        checkpoint's). An older size's root is computed from the tiles and proven
        consistent with that checkpoint before it is trusted (then remembered)."""
        return self._sized(connection, self._head(connection), requested)

    def _sized(
        self, connection: Connection, head: tuple[int, bytes], requested: int | None
    ) -> tuple[int, bytes]:
        """_tree() under the verified ``head`` (size, root)."""
        size, root = head
        if requested is None or requested == size:
            return size, root
        if requested < 0 or requested > PROOF_TREE_SIZE_MAX:
            raise LimitError(f"tree size {requested} is out of range")
        if requested > size:
            raise NotFoundError(f"tree size {requested} is beyond the checkpoint {size}")
        if requested == 0:
            return 0, merkle.EMPTY_ROOT
        remembered = self._roots.get(requested)
        if remembered is not None:
            return requested, remembered
        return requested, self._prove_older(connection, head, requested).old_root

    def _prove_older(
        self, connection: Connection, head: tuple[int, bytes], older: int
    ) -> ConsistencyProof:
        """The root of the tree of ``older`` leaves (0 < older < the head's size),
        computed from the stored tiles, with the consistency proof from it to the
        verified ``head`` that proves it (TamperedError if none does); the root is then
        remembered."""
        size, root = head
        tiles = merkle.CachingReader(store.DbTiles(connection, prefetch_nodes=True))
        old_root = merkle.root(older, tiles)
        hashes = merkle.consistency_proof(older, size, tiles, self._ranges.hashes)
        try:
            merkle.verify_consistency(older, size, old_root, root, hashes)
        except VerificationError as exc:
            raise TamperedError(
                f"the stored tiles of size {older} are not those of the checkpoint {size}"
            ) from exc
        self._ranges.learn(merkle.consistency_ranges(older, size), hashes)
        _remember(self._roots, older, old_root, VERIFIED_ROOTS_MAX)
        return ConsistencyProof(older, size, hashes, old_root, root)

    def root_at(self, tree_size: int) -> bytes:
        """The root of the tree of ``tree_size`` leaves (at most the latest verified
        checkpoint's size), from the stored tiles, proven consistent with that
        checkpoint."""
        if not tree_size:
            return merkle.EMPTY_ROOT
        with self.engine.connect() as connection:
            return self._tree(connection, tree_size)[1]

    def inclusion(self, seq: int, tree_size: int | None = None) -> InclusionProof:
        """Inclusion of ``seq`` in the tree of ``tree_size`` (default: the latest
        verified checkpoint), checked against that root before it is returned. One
        connection: the newest checkpoint row, the tiles and their blobs (the leaf's hash
        is its level-0 tile's)."""

        def prove(connection: Connection) -> InclusionProof:
            head = self._last_head
            tree = None if head is None else _served_tree(head, tree_size, self._roots)
            if head is not None and tree is not None:
                served = serve_inclusion(connection, seq, head, self._ranges, tree)
                if served is not None:
                    return served
            size, root = self._tree(connection, tree_size)
            return prove_inclusion(connection, seq, size, root, self._ranges)

        return self._on_proof_connection(prove)

    def _on_proof_connection(self, work: Callable[[Connection], T]) -> T:
        """``work`` on a connection of the proofs' pool. On PostgreSQL that pool does
        not ping on checkout: a proof is one query, and the ping's round trip doubled
        it. A connection found dead instead is dropped (SQLAlchemy invalidates it) and
        ``work`` is tried once more on a fresh one; reads only, so a retry is safe."""
        engine = self._proof_engine()
        for attempt in range(1, PROOF_ATTEMPTS + 1):
            with engine.connect() as connection:
                try:
                    return work(connection)
                except (DBAPIError, engine.dialect.loaded_dbapi.Error):
                    # The proof reads through the driver's own cursor too: its errors
                    # come unwrapped. Retry only when the connection itself broke.
                    if attempt == PROOF_ATTEMPTS or not _broken(connection):
                        raise
                    connection.invalidate()
        raise InvariantError("unreachable: the last attempt returns or raises")

    def _proof_engine(self) -> Engine:
        if self.engine.dialect.name != "postgresql":
            return self.engine  # SQLite pings nothing
        with self._keys_lock:
            if self._proofs is None:
                self._proofs = proof_pool(self.engine)
            return self._proofs

    def proven_leaves(
        self, seqs: Sequence[int], tree_size: int | None = None
    ) -> list[tuple[bytes, InclusionProof]]:
        """The leaf and inclusion proof of each of ``seqs`` in one tree: one read of its
        head and one connection, the tiles shared through a cache (a region's pending
        page proves hundreds of entries); each proof checked against that root."""
        found = []
        with self.engine.connect() as connection:
            size, root = self._tree(connection, tree_size)
            if any(not 0 <= seq < size for seq in seqs):
                raise NotFoundError(f"a seq of {list(seqs)[:5]}… is not in the tree of size {size}")
            tiles = merkle.CachingReader(store.DbTiles(connection))
            leaves: dict[int, bytes] = {}
            for seq in seqs:
                if seq not in leaves:  # the leaves from here, one read up to a fetch's span
                    end = min(size, seq + FETCH_LEAVES_MAX)
                    wanted = {s for s in seqs if seq <= s < end}
                    for entry in store.read_entries(connection, seq, max(wanted) + 1):
                        if entry.seq in wanted:
                            leaves[entry.seq] = entry.leaf
                leaf = leaves.get(seq)
                if leaf is None:
                    raise TamperedError(f"seq {seq} is missing from the log")
                hashes = merkle.inclusion_proof(seq, size, tiles)
                leaf_hash = merkle.leaf_hash(leaf)
                try:
                    merkle.verify_inclusion(leaf_hash, seq, size, hashes, root)
                except VerificationError as exc:
                    raise TamperedError(f"stored tiles give a bad proof for seq {seq}") from exc
                found.append((leaf, InclusionProof(seq, size, leaf_hash, hashes, root)))
        return found

    def consistency(self, old: int, new: int) -> ConsistencyProof:
        """The consistency proof between the trees of ``old`` and ``new`` leaves (at
        most the latest verified checkpoint's), checked against both verified roots.
        Between roots this process already verified, one query (serve_consistency)."""

        def prove(connection: Connection) -> ConsistencyProof:
            head = self._last_head
            if head is not None and 0 < old < new <= head[0]:
                old_root = self._roots.get(old)
                new_root = head[1] if new == head[0] else self._roots.get(new)
                if old_root is not None and new_root is not None:
                    served = serve_consistency(
                        connection, (old, old_root), (new, new_root), head, self._ranges
                    )
                    if served is not None:
                        return served
            head = self._head(connection)
            new_size, new_root = self._sized(connection, head, new)
            if new_size == head[0] and 0 < old < new_size and old not in self._roots:
                # The proof that proves the older root is the one asked for.
                return self._prove_older(connection, head, old)
            old_size, old_root = self._sized(connection, head, old)
            if old_size > new_size:
                raise NotFoundError(f"tree size {old_size} is larger than {new_size}")
            return prove_consistency(
                connection, (old_size, old_root), (new_size, new_root), self._ranges
            )

        return self._on_proof_connection(prove)

    def add_cosignature(self, region: str, size: int, line: str, timestamp_s: int) -> None:
        """Store a witness's cosignature line, once it verifies under that region's
        declared witness key over the stored checkpoint of ``size``."""
        keys = self.log_keys()
        witness = keys.witnesses.get(region)
        if witness is None:
            raise NotFoundError(f"region {region} declared no witness")
        with self.engine.begin() as connection:
            stored = store.checkpoint_at(connection, size)
            verifier = None if stored is None else row_verifier(keys, stored)
            if stored is None or verifier is None:
                raise NotFoundError(f"no verified checkpoint at size {size}")
            assert verifier is not None
            note = add_cosignatures(stored.note, [line])
            _, cosigned = verify_cosigned_checkpoint(note, verifier, [witness])
            if witness.name not in cosigned:
                raise VerificationError(f"the line is not region {region}'s cosignature")
            store.insert_cosignature(connection, size, witness.name, timestamp_s, line)
            # Committed with the transaction: the cosignature is stored.

    def last_cosigned(self, region: str) -> SignedCheckpoint | None:
        """The newest checkpoint that carries a verifying cosignature of ``region``'s
        witness (stored rows that do not verify are passed over)."""
        keys = self.log_keys()
        witness = keys.witnesses.get(region)
        if witness is None:
            raise NotFoundError(f"region {region} declared no witness")
        with self.engine.connect() as connection:
            for size in store.cosigned_sizes(connection, witness.name):
                stored = store.checkpoint_at(connection, size)
                if stored is None:
                    continue
                checkpoint = _with_cosignatures(
                    keys, stored, store.cosignature_lines(connection, size)
                )
                if region in checkpoint.cosigned_by:
                    return checkpoint
        return None

    def reads(self) -> Reads:
        return Reads(self.engine)

    # --- entries -----------------------------------------------------------------------

    def leaves(self, start: int, end: int) -> list[bytes]:
        """Leaves ``start`` ≤ seq < ``end`` (bounded by the caller's range)."""
        with self.engine.connect() as connection:
            return [entry.leaf for entry in store.read_entries(connection, start, end)]

    def size(self) -> int:
        with self.engine.connect() as connection:
            return store.head_size(connection)

    # --- export, rebuild ---------------------------------------------------------------

    def export(self, directory: Path) -> exporting.Exported:
        """checkpoint, entries.jsonl and trust.json, from verified values only."""
        keys = self.log_keys()
        checkpoint = self.signed_checkpoint()
        trust = export_trust(keys, checkpoint.note)
        with self.engine.connect() as connection:
            reports = _checked_reports(connection, checkpoint.size)
            leaves = (e.leaf for e in store.read_entries(connection, 0, checkpoint.size))
            return exporting.write_export(
                directory,
                checkpoint.note,
                leaves,
                trust,
                checkpoint.size,
                checkpoint.root,
                reports,
            )

    def rebuild(self) -> RebuildReport:
        """Replay the log (every signature verified) and compare the result with the
        stored projections; where they differ, rewrite the projections from the replay
        (the log is the truth). Runs as the schema owner: it lifts the guards of the
        projection tables for its own transaction."""
        sealer = self.writer.sealer
        with self.engine.begin() as connection:
            lock_log(connection)
            size = store.head_size(connection)
            state = State()
            replay(state, store.read_entries(connection, 0, size))
            before = projections.read_sealed(connection, sealer)
            rebuilt = projections.state_rows(state)
            differing = sorted(name for name in rebuilt if before.get(name) != rebuilt[name])
            if differing or projections.sealed_head(connection, sealer, size) != size:
                with unguarded(connection, projections.SEALED_TABLES):
                    projections.clear(connection)
                    projections.write_all(connection, state, sealer)
        self.writer.forget()  # its state may have been built on what was just replaced
        return RebuildReport(
            entries=size,
            rows=sum(len(rows) for rows in rebuilt.values()),
            identical=not differing,
            differing_tables=differing,
        )

    def replayed_state(self) -> State:
        """A state replayed from the leaves, every signature verified (no key needed)."""
        state = State()
        with self.engine.connect() as connection:
            replay(state, store.read_entries(connection, 0, store.head_size(connection)))
        return state


def prove_inclusion(
    connection: Connection, seq: int, size: int, root: bytes, known: VerifiedRanges | None = None
) -> InclusionProof:
    """The inclusion proof of ``seq`` in the tree of ``size`` whose verified root is
    ``root``: the stored tiles and blobs (one query, each row by its primary key; the
    leaf's hash is the level-0 tile's), and the check against ``root`` before it leaves
    (the tables are writable: a bad proof is TamperedError, never served).
    Ledger.inclusion's path, which `alliance bench proofs` times as it is. With
    ``known``, the hashes it holds are used and the proof's are added to it once the
    proof verified."""
    if seq < 0 or seq >= size:
        raise NotFoundError(f"seq {seq} is not in the tree of size {size}")
    tiles = store.DbTiles(connection, prefetch_nodes=True)
    return _proven(tiles, seq, size, root, known)


def proof_pool(engine: Engine) -> Engine:
    """The proofs' pool over ``engine``'s database: on PostgreSQL a pool of its own that
    does not ping on checkout (Ledger._on_proof_connection retries on a dead one); on
    SQLite the engine itself."""
    if engine.dialect.name != "postgresql":
        return engine
    return create_engine(
        engine.url,
        pool_size=PROOF_POOL_SIZE,
        max_overflow=PROOF_POOL_OVERFLOW,
        pool_pre_ping=False,
    )


def _broken(connection: Connection) -> bool:
    """Whether ``connection``'s driver connection was lost (server ended it, network)."""
    if connection.invalidated:
        return True
    driver = connection.connection.driver_connection
    return bool(getattr(driver, "broken", False) or getattr(driver, "closed", False))


def _served_tree(
    head: tuple[int, bytes], requested: int | None, roots: Mapping[int, bytes]
) -> tuple[int, bytes] | None:
    """The (size, root) serve_inclusion() proves ``requested`` in under the remembered
    ``head``: the head itself, or an older size whose root this process proved
    consistent with a verified checkpoint (the log only grows, so it is the log's for
    good: a client whose checkpoint lags asks for exactly these). None: the caller reads
    the head and computes or proves the root first."""
    size = head[0]
    if requested is None or requested == size:
        return head
    remembered = roots.get(requested) if 0 < requested < size else None
    return None if remembered is None else (requested, remembered)


def serve_inclusion(
    connection: Connection,
    seq: int,
    head: tuple[int, bytes],
    known: VerifiedRanges | None,
    tree: tuple[int, bytes] | None = None,
) -> InclusionProof | None:
    """prove_inclusion() in ``tree`` (size, verified root; default ``head``) under
    ``head`` (size, root), a checkpoint this process verified and remembers, if the
    newest stored checkpoint row still says that size and root: that row is read by the
    proof's own query, so a proof costs one query. None if the row says otherwise or
    ``seq`` is beyond the tree: the caller then reads and verifies the newest checkpoint
    first (a newer row is never missed, a planted one never trusted: only a row equal to
    the remembered one is taken, and a database replaced by a shorter log is noticed
    even for an older size)."""
    size, root = head if tree is None else tree
    if not 0 <= seq < size:
        return None
    tiles = store.DbTiles(connection, prefetch_nodes=True, read_head=True)
    proof = _proven(tiles, seq, size, root, known)
    newest = tiles.head
    if newest is None:  # the proof read no tiles (a tree of one leaf)
        stored = store.latest_checkpoint(connection)
        newest = None if stored is None else (stored.size, stored.root)
    return proof if newest == head else None


def _proven(
    tiles: store.DbTiles, seq: int, size: int, root: bytes, known: VerifiedRanges | None
) -> InclusionProof:
    """The proof of ``seq`` read through ``tiles``, checked against ``root``."""
    hashes = merkle.inclusion_proof(seq, size, tiles, None if known is None else known.hashes)
    # The leaf's hash as its level-0 tile says: the check against ``root`` below
    # authenticates it as firmly as hashing the leaf row would (one random read of the
    # largest table fewer: the read that made proofs at 10 M entries slow). The row is
    # read only when the proof read no such tile (a tree of one leaf).
    leaf_hash = tiles.tile_leaf_hash(seq)
    if leaf_hash is None:
        leaf = tiles.read_leaf(seq)
        if leaf is None:
            raise NotFoundError(f"seq {seq} is not in the log")
        leaf_hash = merkle.leaf_hash(leaf)
    try:
        merkle.verify_inclusion(leaf_hash, seq, size, hashes, root)
    except VerificationError as exc:
        raise TamperedError(f"stored tiles give a bad proof for seq {seq}") from exc
    if known is not None:
        known.learn(merkle.inclusion_ranges(seq, size), hashes)
    return InclusionProof(seq, size, leaf_hash, hashes, root)


class VerifiedRanges:
    """The hashes of leaf ranges (start, end) that were part of a proof this process
    verified against a verified root, so each is MTH(D[start:end]) of the log itself
    (the stored tiles could since have been altered: these could not). Later proofs
    take them instead of reading and hashing their tiles: with the ranges of a tile's
    width or more known, a proof reads one tile and its blob whatever the log's size
    (issue 11: proofs flat in n). Only those ranges are kept (a tile serves the rest,
    and they are the ones every proof shares), at most VERIFIED_RANGES_MAX of them."""

    def __init__(self) -> None:
        self.hashes: dict[tuple[int, int], bytes] = {}

    def learn(self, ranges: Sequence[tuple[int, int]], hashes: Sequence[bytes]) -> None:
        """Remember the hashes of a proof that verified (``ranges`` in its order)."""
        known = self.hashes
        for (start, end), value in zip(ranges, hashes, strict=True):
            if end - start >= TILE_WIDTH and (start, end) not in known:
                _remember(known, (start, end), value, VERIFIED_RANGES_MAX)


def prove_consistency(
    connection: Connection,
    old: tuple[int, bytes],
    new: tuple[int, bytes],
    known: VerifiedRanges | None = None,
) -> ConsistencyProof:
    """The consistency proof between two trees given as (size, verified root), from the
    stored tiles and blobs (one keyed query), checked against both roots before it
    leaves. Ledger.consistency's path, which `alliance bench proofs` times as it is."""
    return _consistent(store.DbTiles(connection, prefetch_nodes=True), old, new, known)


def serve_consistency(
    connection: Connection,
    old: tuple[int, bytes],
    new: tuple[int, bytes],
    head: tuple[int, bytes],
    known: VerifiedRanges | None,
) -> ConsistencyProof | None:
    """prove_consistency() between two verified trees, if the newest stored checkpoint
    row still says ``head`` (size, root), a checkpoint this process verified and
    remembers: that row is read by the proof's own query (as serve_inclusion). None if
    it says otherwise: the caller reads and verifies the newest checkpoint first."""
    tiles = store.DbTiles(connection, prefetch_nodes=True, read_head=True)
    proof = _consistent(tiles, old, new, known)
    newest = tiles.head
    if newest is None:  # the proof read no tiles (trivial, or from known hashes)
        stored = store.latest_checkpoint(connection)
        newest = None if stored is None else (stored.size, stored.root)
    return proof if newest == head else None


def _consistent(
    tiles: store.DbTiles,
    old: tuple[int, bytes],
    new: tuple[int, bytes],
    known: VerifiedRanges | None,
) -> ConsistencyProof:
    """The consistency proof read through ``tiles``, checked against both roots."""
    (old_size, old_root), (new_size, new_root) = old, new
    hashes = merkle.consistency_proof(
        old_size, new_size, tiles, None if known is None else known.hashes
    )
    try:
        merkle.verify_consistency(old_size, new_size, old_root, new_root, hashes)
    except VerificationError as exc:
        raise TamperedError("stored tiles give a bad consistency proof") from exc
    if known is not None and 0 < old_size < new_size:
        known.learn(merkle.consistency_ranges(old_size, new_size), hashes)
    return ConsistencyProof(old_size, new_size, hashes, old_root, new_root)


def _remember(cache: dict[Any, Any], key: Any, value: Any, entries_max: int) -> None:
    """Put ``key`` in a bounded memory of verified values: past ``entries_max`` the
    oldest goes (dicts keep insertion order)."""
    with _MEMORY_LOCK:  # the API's threads share one ledger
        cache[key] = value
        if len(cache) > entries_max:
            del cache[next(iter(cache))]


_MEMORY_LOCK = threading.Lock()


def stored_night(connection: Connection, day: str) -> tuple[int, bytes, dict[str, Any]] | None:
    """The stored report of business ``day`` with the seq and body of its closing entry
    (None if none is stored). TamperedError if the row names no such entry; the report's
    bytes are the caller's to check against the body (check_report)."""
    stored = store.read_report(connection, day)
    if stored is None:
        return None
    seq, report = stored
    entry = store.read_entry(connection, seq)
    if entry is None:
        raise TamperedError(f"the night of {day} names seq {seq}, which the log lacks")
    record, _ = parse_record(entry.leaf)
    body: dict[str, Any] = record["entry"]["body"]
    if record["entry"]["kind"] != "reconciliation.closed" or body.get("day") != day:
        raise TamperedError(f"seq {seq} is not the night of {day}")
    return seq, report, body


def _checked_reports(connection: Connection, size: int) -> Iterator[tuple[str, bytes]]:
    """Each stored night report within the tree of ``size``, checked against its entry's
    counts and roots (a planted or altered report is refused, not exported)."""
    for day, seq in store.report_days(connection):
        if seq >= size:
            continue
        night = stored_night(connection, day)
        invariant(night is not None, f"the report of {day} vanished while exporting")
        assert night is not None
        _, report, body = night
        check_report(report, body)
        yield day, report


def _declare(state: State, leaves: list[store.StoredEntry]) -> None:
    """Admit the declaring leaves into ``state``, each where it stands in the log: its
    signatures are checked under the keys declared before it, as the writer checked
    them. The genesis must be leaf 0 (nobody can replace the first row of an
    append-only table)."""
    for stored in leaves:
        try:
            ctx = leaf_context(stored.leaf, expected_seq=stored.seq)
            if (stored.seq == 0) != (ctx.kind == "region.genesis"):
                raise TamperedError(f"seq {stored.seq}: leaf 0, and only it, is the genesis")
            state.size = stored.seq  # the entries between are of other kinds
            admit(state, ctx)
        except RejectedError as exc:
            raise TamperedError(
                f"seq {stored.seq} declares keys the log's rules refuse: {exc.detail}"
            ) from exc
    state.forget_changes()  # nothing here is ever written back


def declared_keys(state: State, size: int) -> LogKeys:
    origin = state.origin
    rows = sorted(
        (row for row in state.principal_keys.rows() if row.principal == OPERATOR),
        key=lambda row: (row.from_seq, row.key_id),
    )
    operators = tuple(
        OperatorKey(
            NoteVerifier.from_public(origin, state.public_key(row)), row.from_seq, row.until_seq
        )
        for row in rows
    )
    witnesses = {
        row.code: CosignatureVerifier.from_public(
            row.witness_name, PublicKey(b64decode(row.witness_pub))
        )
        for row in state.regions.rows()
    }
    return LogKeys(origin, operators, witnesses, size)


def export_trust(keys: LogKeys, note: str) -> dict[str, object]:
    """The export's trust.json: the origin, the operator key that signed ``note`` (a
    verified checkpoint of the log) and every declared witness key."""
    verifier = operator_verifier(keys, note)
    invariant(verifier is not None, "the exported checkpoint has no declared signer")
    assert verifier is not None
    return {
        "origin": keys.origin,
        "log_key": verifier.vkey,
        "witness_keys": {code: v.vkey for code, v in sorted(keys.witnesses.items())},
    }


def operator_verifier(keys: LogKeys, note: str) -> NoteVerifier | None:
    """The declared operator key that signed ``note``, if one did and may sign a
    checkpoint of its size."""
    signed = signed_by(note, [key.verifier for key in keys.operators])
    if signed is None or signed[0] not in keys.operators_at(signed[1].size):
        return None
    return signed[0]


def row_verifier(keys: LogKeys, stored: store.StoredCheckpoint) -> NoteVerifier | None:
    """operator_verifier() of a stored checkpoint row whose note also says what the row's
    columns say (size, root): a row pairing a genuine note with another size or root
    is not a checkpoint of that size. (The origin is checked by opening the note: the
    declared keys are named after it.)"""
    signed = signed_by(stored.note, keys.operators_at(stored.size))
    if signed is None or (signed[1].size, signed[1].root) != (stored.size, stored.root):
        return None
    return signed[0]


def _with_cosignatures(
    keys: LogKeys, stored: store.StoredCheckpoint, lines: list[str]
) -> SignedCheckpoint:
    """The checkpoint's note with each stored line that verifies under a declared
    witness key (a line that does not is left out, so a planted row cannot spoil it)."""
    verifier = row_verifier(keys, stored)
    assert verifier is not None
    good: list[str] = []
    cosigned: list[str] = []
    by_name = {witness.name: code for code, witness in keys.witnesses.items()}
    for line in lines:
        try:
            note = add_cosignatures(stored.note, [line])
            _, names = verify_cosigned_checkpoint(note, verifier, list(keys.witnesses.values()))
        except AllianceError:
            continue
        for name in names:
            if by_name[name] not in cosigned:
                good.append(line)
                cosigned.append(by_name[name])
    note = add_cosignatures(stored.note, good) if good else stored.note
    return SignedCheckpoint(stored.size, stored.root, note, tuple(sorted(cosigned)))


__all__ = [
    "ConsistencyProof",
    "InclusionProof",
    "Ledger",
    "LogKeys",
    "OperatorKey",
    "RebuildReport",
    "SignedCheckpoint",
    "VerifiedRanges",
    "prove_consistency",
    "prove_inclusion",
    "serve_consistency",
    "serve_inclusion",
]
