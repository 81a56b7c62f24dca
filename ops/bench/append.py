"""Append throughput benchmark: the library's group commit against the raw loop, one run.

DESIGN §9 asks the library append (batches) to reach at least 50 % of the raw loop on the
same backend, measured in the same run. Both sides start from the same pre-built, signed
`submitted` documents (building and signing them is not timed):

* **library**: ``Ledger.submit_many`` in chunks of ``BATCH_SIZE_MAX`` entries, so each
  chunk is one group-commit transaction (entries, tiles, projections and the signed
  checkpoint), with every validation the ledger applies: envelope and body schemas,
  canonical bytes, Ed25519, the kind's rules against the state, the Merkle tiles.
* **raw loop**: the fastest straightforward code for the four steps, per entry
  (``raw_rows``): canonical bytes by ``orjson.dumps(entry, option=OPT_SORT_KEYS)``
  (byte-identical to RFC 8785 on the entries' domain, re-checked on a sample after
  timing), one Ed25519 verification by libsodium's strict ``crypto_sign_open`` under a
  raw 32-byte key cached per key id, one SHA-256 of 0x00 and the entry bytes; then the
  driver's bulk insert (COPY through psycopg, sqlite3's executemany of a prepared INSERT)
  into a bare table with the columns of ``log_entries`` and no key, index or trigger
  (created for the bench and dropped after), one transaction per batch of the same size.
  Its leaf is the entry's canonical bytes, not the log's record around them.

The two alternate batch by batch (raw first half, library batch, raw second half), so a
change in the machine's load touches both alike; the pre-built documents are frozen out
of the garbage collector's reach while timing (they are the bench's, not the ledger's).
After timing, the log is checked: every entry appended, a sample of leaves equal to the
reference RFC 8785 bytes of their records, the checkpoint root equal to the tiles' root.

``kind="member"``: ``member.enrolled`` entries signed by region:31 (log-level rules:
signer, key registry, USCC, stores). ``kind="return"``: a few hundred merchants are
enrolled first (not timed), then ``return.recorded`` entries with the full money rules
(stores, return window, categories, receipt totals, obligation, endorsable).

The database is always a fresh one: a SQLite file in a temporary folder (next to the
given SQLite file's folder when ``db`` names one), or a new schema ``bench_<random>`` in
the given PostgreSQL database (selected through ``search_path``), dropped at the end.
The sequencer's clock is fixed, so every entry time stays within the policy's skew.
"""

from __future__ import annotations

import binascii
import gc
import hashlib
import random
import secrets
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import nacl.bindings
import nacl.exceptions
import orjson
from sqlalchemy import Column, Engine, MetaData, Table, func, select
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from ledger import merkle, store
from ledger.app import Ledger
from ledger.db import make_engine
from ledger.merkle import LEAF_PREFIX
from ledger.schema import migrate
from ledger.sequencer import Appended, WriterTimes
from ledger.state import OPERATOR, region_principal
from ledger.tables import Base, LogEntry
from ops.bench.machine import machine
from ops.config import load_config
from ops.world import (
    Clock,
    EntryFactory,
    Keyring,
    ReturnItem,
    fresh_schema,
    genesis_submission,
    member_body,
    numbered_stores,
    receipt_wire,
    return_body,
    uscc,
)
from schemas.canonical import canonical_reference, parse_json
from schemas.entry import format_utc
from schemas.errors import AllianceError, ConfigError, InvariantError, SignatureError
from schemas.limits import (
    BATCH_SIZE_MAX,
    BENCH_LEAF_SAMPLES,
    BENCH_MEMORY_CHUNK_ENTRIES,
    BENCH_PURCHASE_AGE_DAYS_MAX,
    BENCH_RETURN_ITEMS_MAX,
)
from signing.entry import ENTRY_SIGNATURE_PREFIX

MEMBER = "member"
RETURN = "return"
KINDS = (MEMBER, RETURN)
SQLITE = "sqlite"
POSTGRESQL = "postgresql"

BATCH_SIZE = BATCH_SIZE_MAX  # entries per submit_many call and per raw transaction
SEED = 20_261_123  # keys, ids and bodies are reproducible
# The fixed log clock; every entry carries this time (well within entry_time_skew_s).
BENCH_NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
# The genesis and the merchants are logged this early: a commitment binds purchases made
# after its member enrolled, and the returns' purchases reach back BENCH_PURCHASE_AGE_DAYS_MAX.
BENCH_SETUP_AT = BENCH_NOW - timedelta(days=BENCH_PURCHASE_AGE_DAYS_MAX + 1)
MEMBER_SIGNER_REGION = "31"
RETURN_MERCHANTS = 400  # enrolled before the timed returns, spread over the regions
STORES_PER_MERCHANT = 3
SAME_MERCHANT_SHARE = 0.1  # returns accepted by the seller itself (A = B: no obligation)
RECEIPT_FEN_MIN, RECEIPT_FEN_MAX = 1_000, 500_000
RETURN_CATEGORIES = ("apparel", "electronics", "home_goods", "toys", "books", "sports")
RAW_TABLE = "bench_raw_entries"
# The raw loop's statements, written for the driver: its columns are store.ENTRY_COLUMNS.
_RAW_COLUMNS = ", ".join(store.ENTRY_COLUMNS)
_RAW_COPY = f"COPY {RAW_TABLE} ({_RAW_COLUMNS}) FROM STDIN"
_RAW_INSERT = (
    f"INSERT INTO {RAW_TABLE} ({_RAW_COLUMNS}) "
    f"VALUES ({', '.join('?' for _ in store.ENTRY_COLUMNS)})"
)
SCHEMA_PREFIX = "bench_"
SCHEMA_TOKEN_BYTES = 6
RATE_DIGITS = 1
RATIO_DIGITS = 3
SECONDS_DIGITS = 3

# seq, entry_id, entry_hash, kind, signer, logged, leaf, leaf_hash (store.ENTRY_COLUMNS)
RawRow = tuple[int, str, bytes, str, str, str, bytes, bytes]


@dataclass
class Fixture:
    """A fresh log with its genesis, the keys of every principal, and its ledger."""

    engine: Engine
    ring: Keyring
    factory: EntryFactory
    ledger: Ledger
    regions: tuple[str, ...]
    clock: Clock  # at BENCH_SETUP_AT until the setup is logged, then at BENCH_NOW
    serial: int = 0

    def set_up(self) -> None:
        """The setup is logged: from now on the log clock reads BENCH_NOW."""
        if self.clock.now < BENCH_NOW:
            self.clock.set(BENCH_NOW)

    def new_uscc(self, region: str) -> str:
        self.serial += 1
        return uscc(region, self.serial)


# --- the fresh database ---------------------------------------------------------------


def _parse_url(db: str | None) -> URL | None:
    if db is None:
        return None
    try:
        return make_url(db)
    except ArgumentError as exc:
        raise ConfigError(f"not a database URL: {db}") from exc


@contextmanager
def _sqlite_engine(url: URL | None) -> Iterator[Engine]:
    """An engine on a new SQLite file in a temporary folder (in the folder of the file
    ``url`` names, if any, so the bench runs on that disk), removed after."""
    database = url.database if url is not None else None
    parent = None
    if database and database != ":memory:":
        parent = Path(database).resolve().parent
        parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="alliance-bench-", dir=parent) as folder:
        engine = make_engine(f"sqlite:///{Path(folder) / 'bench.db'}")
        try:
            yield engine
        finally:
            engine.dispose()


@contextmanager
def _postgres_engine(url: URL) -> Iterator[Engine]:
    """An engine whose search_path is a new schema ``bench_<random>``, dropped after."""
    schema = SCHEMA_PREFIX + secrets.token_hex(SCHEMA_TOKEN_BYTES)
    with fresh_schema(url.render_as_string(hide_password=False), schema) as scoped:
        engine = make_engine(scoped)
        try:
            yield engine
        finally:
            engine.dispose()


@contextmanager
def _fresh_database(db: str | None) -> Iterator[tuple[str, Engine]]:
    url = _parse_url(db)
    backend = SQLITE if url is None else url.get_backend_name()
    if backend == SQLITE:
        with _sqlite_engine(url) as engine:
            yield SQLITE, engine
    elif backend == POSTGRESQL and url is not None:
        with _postgres_engine(url) as engine:
            yield POSTGRESQL, engine
    else:
        raise ConfigError(f"unsupported database {backend!r}: use sqlite:/// or postgresql://")


def _start_log(engine: Engine) -> Fixture:
    migrate(engine)
    config = load_config()
    ring = Keyring(seed=SEED)
    factory = EntryFactory(SEED)
    clock = Clock(BENCH_SETUP_AT)
    genesis = genesis_submission(config, ring, factory, clock.now)
    ledger = Ledger(engine, ring.keys[OPERATOR], clock=clock)
    ledger.submit(genesis)
    ledger.writer.warm_up()  # the verification worker, before anything is timed
    regions = tuple(region.code for region in config.regions)
    return Fixture(engine, ring, factory, ledger, regions, clock)


# --- the pre-built submissions ---------------------------------------------------------


def _member_submissions(fixture: Fixture, count: int, start: int = 0) -> list[dict[str, Any]]:
    """``count`` member.enrolled entries by region:31, numbered from ``start``; the
    members' keys are public only."""
    fixture.set_up()
    region = MEMBER_SIGNER_REGION
    signer = region_principal(region)
    documents = []
    for index in range(start, start + count):
        member_id = fixture.new_uscc(region)
        public = fixture.ring.ensure(f"bench-member-{index}").public.wire()
        body = member_body(member_id, region, public, name=f"bench merchant {member_id}")
        documents.append(
            fixture.factory.signed(fixture.ring, "member.enrolled", signer, body, BENCH_NOW)
        )
    return documents


def _enrol_merchants(fixture: Fixture, count: int) -> list[str]:
    """Enrol ``count`` merchants, round-robin over the regions, at the setup time (not
    timed); each one's network is all the others, so any two may bill each other."""
    regions = [fixture.regions[index % len(fixture.regions)] for index in range(count)]
    merchants = [fixture.new_uscc(region) for region in regions]
    documents = []
    for region, member_id in zip(regions, merchants, strict=True):
        key = fixture.ring.ensure(member_id).public.wire()
        body = member_body(
            member_id,
            region,
            key,
            name=f"bench merchant {member_id}",
            stores=numbered_stores(region, STORES_PER_MERCHANT),
            network=[peer for peer in merchants if peer != member_id],
        )
        documents.append(
            fixture.factory.signed(
                fixture.ring, "member.enrolled", region_principal(region), body, fixture.clock.now
            )
        )
    for start in range(0, len(documents), BATCH_SIZE):
        _require_appended(fixture.ledger.submit_many(documents[start : start + BATCH_SIZE]))
    fixture.set_up()
    return merchants


def _return_body(rng: random.Random, seller: str, number: str) -> dict[str, Any]:
    amount = rng.randint(RECEIPT_FEN_MIN, RECEIPT_FEN_MAX)
    item_count = rng.randint(1, BENCH_RETURN_ITEMS_MAX)
    # Each item refunds at least 1 fen; the refund never exceeds the receipt amount.
    refunds = [rng.randint(1, amount // BENCH_RETURN_ITEMS_MAX) for _ in range(item_count)]
    age = timedelta(days=rng.uniform(0, BENCH_PURCHASE_AGE_DAYS_MAX))
    store = f"S{rng.randint(1, STORES_PER_MERCHANT)}"
    purchased = (BENCH_NOW - age).isoformat(timespec="seconds")
    receipt = receipt_wire(seller, store, number, purchased, amount)
    accepted_store = f"S{rng.randint(1, STORES_PER_MERCHANT)}"
    items = [
        ReturnItem(f"SKU{n}", rng.choice(RETURN_CATEGORIES), 1, fen)
        for n, fen in enumerate(refunds)
    ]
    return return_body(receipt, accepted_store, items, accepted=BENCH_NOW)


def _return_submissions(
    fixture: Fixture, count: int, start: int = 0, merchants: Sequence[str] = ()
) -> list[dict[str, Any]]:
    """``count`` return.recorded entries (receipts numbered from ``start``) among
    ``merchants`` (freshly enrolled when none are given), each signed by the accepting
    merchant; most are cross-merchant (they create an obligation)."""
    if not merchants:
        merchants = _enrol_merchants(fixture, RETURN_MERCHANTS)
    rng = random.Random(SEED + start)  # noqa: S311 - bench data, not secrets
    documents = []
    for index in range(start, start + count):
        acceptor = rng.choice(merchants)
        seller = acceptor
        if rng.random() >= SAME_MERCHANT_SHARE:
            while seller == acceptor:
                seller = rng.choice(merchants)
        body = _return_body(rng, seller, f"R{index:08d}")
        documents.append(
            fixture.factory.signed(fixture.ring, "return.recorded", acceptor, body, BENCH_NOW)
        )
    return documents


def _require_appended(results: Sequence[Appended | AllianceError]) -> None:
    """A benchmark only counts entries the ledger accepted: any rejection is a bug here."""
    for result in results:
        if isinstance(result, AllianceError):
            raise InvariantError(f"bench entry rejected: {result.type_slug}: {result.detail}")
        if result.duplicate:
            raise InvariantError(f"bench entry at seq {result.seq} was a duplicate")


# --- the two timed loops ---------------------------------------------------------------


def _raw_table() -> Table:
    """The columns of ``log_entries`` (names, types, NOT NULL) under another name and
    nothing else: no primary key, unique constraint, index or trigger to maintain."""
    log = Base.metadata.tables[LogEntry.__tablename__]
    columns = [Column(column.name, column.type, nullable=column.nullable) for column in log.columns]
    return Table(RAW_TABLE, MetaData(), *columns)


def raw_rows(
    first: int, logged: str, documents: Sequence[dict[str, Any]], keys: Mapping[str, bytes]
) -> list[RawRow]:
    """The raw loop's work per entry, and nothing more: the canonical bytes by orjson
    with sorted keys (byte-identical to RFC 8785 on the entries' domain; the bench checks
    a sample against the reference after timing), the first signature verified with
    libsodium's strict ``crypto_sign_open`` (what ``PublicKey.verify`` calls) under the
    raw 32-byte key cached for its key id, and SHA-256(0x00 || entry bytes). The rows have
    the columns of ``store.ENTRY_COLUMNS``; their leaf is the entry's canonical bytes
    (the log's leaf is the record around them) and both hash columns hold its leaf hash.
    Raises SignatureError at the first signature that does not verify."""
    dumps, sort_keys = orjson.dumps, orjson.OPT_SORT_KEYS
    decode, sign_open, sha256 = binascii.a2b_base64, nacl.bindings.crypto_sign_open, hashlib.sha256
    rows: list[RawRow] = []
    seq = first
    try:
        for seq, document in enumerate(documents, first):
            entry = document["entry"]
            signature = document["signatures"][0]
            entry_bytes = dumps(entry, option=sort_keys)
            sign_open(
                decode(signature["sig"]) + ENTRY_SIGNATURE_PREFIX + entry_bytes,
                keys[signature["key"]],
            )
            leaf_hash = sha256(LEAF_PREFIX + entry_bytes).digest()
            rows.append(
                (
                    seq,
                    entry["id"],
                    leaf_hash,
                    entry["kind"],
                    entry["signer"],
                    logged,
                    entry_bytes,
                    leaf_hash,
                )
            )
    except (nacl.exceptions.BadSignatureError, binascii.Error) as exc:
        raise SignatureError(f"raw loop: the signature of entry {seq} does not verify") from exc
    return rows


@dataclass
class RawLoop:
    """The raw loop into its bare scratch table, on a driver connection of its own
    (sqlite3 or psycopg, taken from the engine's pool, so with the same connection
    settings as the library's): ``check()`` canonicalizes, verifies and hashes entries
    into a pending batch, ``insert()`` writes the batch in one transaction with the
    driver's bulk insert (COPY on PostgreSQL, executemany of a prepared INSERT on
    SQLite), with no SQLAlchemy between the rows and the driver."""

    backend: str
    driver: Any  # sqlite3.Connection or psycopg.Connection
    keys: Mapping[str, bytes]
    size: int = 0
    pending: list[RawRow] = field(default_factory=list)
    logged: str = field(default_factory=lambda: format_utc(BENCH_NOW))

    def check(self, documents: Sequence[dict[str, Any]]) -> None:
        self.pending += raw_rows(self.size + len(self.pending), self.logged, documents, self.keys)

    def insert(self) -> None:
        try:
            if self.backend == POSTGRESQL:
                with self.driver.cursor() as cursor, cursor.copy(_RAW_COPY) as copy:
                    for row in self.pending:
                        copy.write_row(row)
                self.driver.commit()
            else:
                # The project's engines put sqlite3 in autocommit mode (BEGIN is explicit).
                cursor = self.driver.cursor()
                cursor.execute("BEGIN IMMEDIATE")
                cursor.executemany(_RAW_INSERT, self.pending)
                cursor.execute("COMMIT")
                cursor.close()
        except BaseException:
            self.driver.rollback()
            raise
        self.size += len(self.pending)
        self.pending = []


def _measure_batch(
    raw: RawLoop, ledger: Ledger, chunk: Sequence[dict[str, Any]]
) -> tuple[float, float]:
    """(library seconds, raw seconds) for one batch: the raw loop checks the first half,
    the library appends the whole batch, the raw loop checks the second half and inserts
    the batch. A drift in the machine's load touches both sides alike, and each side
    commits the batch once."""
    clock = time.perf_counter
    half = len(chunk) // 2
    started = clock()
    raw.check(chunk[:half])
    raw_seconds = clock() - started
    started = clock()
    _require_appended(ledger.submit_many(chunk))
    # SQLite: the library waits for the WAL copy its batch asked for (ledger.walcheckpoint)
    # and is charged for it, as if nothing overlapped it. A running writer overlaps it
    # with its next batch, but here the raw loop would run beside it: on a quiet disk
    # and core, the raw loop is not slowed by the library's work.
    wal = ledger.writer.wal
    if wal is not None:
        waiting = clock()
        wal.drain()
        ledger.writer.times.wal_copy_s += clock() - waiting
    seconds = clock() - started
    started = clock()
    raw.check(chunk[half:])
    raw.insert()
    raw_seconds += clock() - started
    return seconds, raw_seconds


@contextmanager
def _frozen_heap() -> Iterator[None]:
    """Move the objects alive now (above all the pre-built documents, which are the
    bench's, not the ledger's) out of the garbage collector's reach while timing, so that
    neither side pays for traversing them. Collections of whatever either side allocates
    still happen, and count."""
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


@contextmanager
def _raw_loop(fixture: Fixture, backend: str) -> Iterator[RawLoop]:
    """A raw loop with the signers' keys cached as raw bytes by key id, on a driver
    connection of the engine's pool, into its bare table (created here, dropped after)."""
    keys = {key.key_id: key.public.raw for key in fixture.ring.keys.values()}
    table = _raw_table()
    table.metadata.create_all(fixture.engine)
    try:
        pooled = fixture.engine.raw_connection()
        try:
            yield RawLoop(backend, pooled.driver_connection, keys)
        finally:
            pooled.close()
    finally:
        table.metadata.drop_all(fixture.engine)


def _check_raw(engine: Engine, documents: Sequence[dict[str, Any]]) -> None:
    """After the timed part: the raw loop wrote every entry, and a sample of its leaves
    are the reference RFC 8785 bytes of their entries under their leaf hashes (so orjson
    wrote the bytes the log would have, on this run's entries)."""
    table = _raw_table()
    wanted = range(0, len(documents), max(1, len(documents) // BENCH_LEAF_SAMPLES))
    with engine.connect() as connection:
        count = connection.execute(select(func.count()).select_from(table)).scalar()
        rows = connection.execute(
            select(table.c.seq, table.c.leaf, table.c.leaf_hash).where(table.c.seq.in_(wanted))
        ).all()
    if count != len(documents) or len(rows) != len(wanted):
        raise InvariantError(f"the raw loop wrote {count} rows, not {len(documents)}")
    for seq, leaf, leaf_hash in rows:
        if canonical_reference(documents[seq]["entry"]) != leaf:
            raise InvariantError(f"the raw loop's leaf {seq} is not RFC 8785 canonical")
        if merkle.leaf_hash(leaf) != leaf_hash:
            raise InvariantError(f"the raw loop's leaf hash {seq} is wrong")


def _measure(
    fixture: Fixture, backend: str, documents: Sequence[dict[str, Any]]
) -> tuple[float, float]:
    """(library seconds, raw seconds) over ``documents``, batch by batch."""
    seconds = raw_seconds = 0.0
    with _raw_loop(fixture, backend) as raw:
        with _frozen_heap():
            for start in range(0, len(documents), BATCH_SIZE):
                chunk = documents[start : start + BATCH_SIZE]
                batch_seconds, batch_raw_seconds = _measure_batch(raw, fixture.ledger, chunk)
                seconds += batch_seconds
                raw_seconds += batch_raw_seconds
        _check_raw(fixture.engine, documents)
    return seconds, raw_seconds


# --- the benchmark ---------------------------------------------------------------------


def _check_log(engine: Engine, base: int, entries: int) -> None:
    """After the timed part: every entry was appended, a sample of leaves are the RFC 8785
    bytes of their records (by the reference implementation) under their leaf hashes,
    and the latest checkpoint's root is the root of the stored tiles."""
    with engine.connect() as connection:
        size = store.head_size(connection)
        if size - base != entries:
            raise InvariantError(f"the bench appended {size - base} entries, not {entries}")
        step = max(1, entries // BENCH_LEAF_SAMPLES)
        for seq in range(base, size, step):
            stored = store.read_entry(connection, seq)
            if stored is None or stored.leaf_hash != merkle.leaf_hash(stored.leaf):
                raise InvariantError(f"entry {seq} is missing or its leaf hash is wrong")
            if canonical_reference(parse_json(stored.leaf)) != stored.leaf:
                raise InvariantError(f"the leaf of entry {seq} is not RFC 8785 canonical")
        latest = store.latest_checkpoint(connection)
        root = merkle.root(size, store.DbTiles(connection))
        if latest is None or latest.size != size or latest.root != root:
            raise InvariantError("the latest checkpoint does not match the stored tree")


@dataclass
class _Documents:
    """The signed documents of one kind, made on demand and numbered on across calls
    (every member and receipt is new); the merchants of returns are enrolled once."""

    fixture: Fixture
    kind: str
    made: int = 0
    merchants: list[str] = field(default_factory=list)

    def make(self, count: int) -> list[dict[str, Any]]:
        if self.kind == MEMBER:
            documents = _member_submissions(self.fixture, count, self.made)
        else:
            if not self.merchants:
                self.merchants = _enrol_merchants(self.fixture, RETURN_MERCHANTS)
            documents = _return_submissions(self.fixture, count, self.made, self.merchants)
        self.made += count
        return documents


@dataclass(frozen=True)
class _Timed:
    """One timed phase: the library's and the raw loop's seconds over the same
    entries, and where the writer's time went (WriterTimes, per entry)."""

    seconds: float
    raw_seconds: float
    times: WriterTimes


def _timed(fixture: Fixture, backend: str, documents: Sequence[dict[str, Any]]) -> _Timed:
    """The library and the raw loop over ``documents``, then the log checked."""
    with fixture.engine.connect() as connection:
        base = store.head_size(connection)
    fixture.ledger.writer.times = WriterTimes()  # this phase's only
    seconds, raw_seconds = _measure(fixture, backend, documents)
    times = fixture.ledger.writer.times
    fixture.ledger.writer.times = WriterTimes()  # what follows (a preload) goes elsewhere
    _check_log(fixture.engine, base, len(documents))
    return _Timed(seconds, raw_seconds, times)


def _stages(timed: _Timed, entries: int) -> dict[str, object]:
    """The writer's microseconds per entry by stage, and the highest ratio the rules
    alone allow: the raw loop's time over the time admit() took on the writer's thread
    (no other stage could make up for rules slower than twice the raw loop: the ratio
    stays under 0.5 even if every other stage cost nothing)."""
    rules_s = timed.times.rules_s
    return {
        "stages_us_per_entry": timed.times.per_entry_us(),
        "raw_us_per_entry": round(timed.raw_seconds / entries * 1e6, 1),
        "rules_only_ratio_max": round(timed.raw_seconds / rules_s, RATIO_DIGITS)
        if rules_s
        else None,
    }


def _preload(documents: _Documents, count: int) -> None:
    """Append ``count`` more entries of the kind, untimed: signed, then appended, in
    chunks of BENCH_MEMORY_CHUNK_ENTRIES (in batches of BATCH_SIZE), so only a chunk of
    documents is ever held."""
    ledger = documents.fixture.ledger
    for done in range(0, count, BENCH_MEMORY_CHUNK_ENTRIES):
        chunk = documents.make(min(BENCH_MEMORY_CHUNK_ENTRIES, count - done))
        for start in range(0, len(chunk), BATCH_SIZE):
            _require_appended(ledger.submit_many(chunk[start : start + BATCH_SIZE]))
        del chunk


def bench_append(
    db: str | None, entries: int = 20_000, kind: str = MEMBER, preload: int = 0
) -> dict[str, object]:
    """Library append rate against the raw loop on a fresh database of ``db``'s backend.
    With ``preload``: then ``preload`` more entries are appended (untimed) and the same
    measure is taken again on the grown log, its ``sustained_*`` figures; the log's
    growth shows as ``sustained_vs_empty``, the ratio to the raw loop on the grown log
    over the one on the empty log (each against the raw loop of its own phase, so a
    change in the machine's load between the two phases cancels out)."""
    if kind not in KINDS:
        raise ConfigError(f"bench kind must be one of {', '.join(KINDS)}, not {kind!r}")
    if entries < 1:
        raise ConfigError("the bench needs at least one entry")
    if preload < 0:
        raise ConfigError("the bench preloads zero or more entries")
    host = machine()
    sustained: _Timed | None = None
    with _fresh_database(db) as (backend, engine):
        fixture = _start_log(engine)
        documents = _Documents(fixture, kind)
        empty = _timed(fixture, backend, documents.make(entries))
        if preload:
            _preload(documents, preload)
            sustained = _timed(fixture, backend, documents.make(entries))
    seconds, raw_seconds = empty.seconds, empty.raw_seconds
    rate = entries / seconds
    raw_rate = entries / raw_seconds
    report: dict[str, object] = {
        "bench": "append",
        "backend": backend,
        "kind": kind,
        "entries": entries,
        "batch_size": BATCH_SIZE,
        "entries_per_s": round(rate, RATE_DIGITS),
        "raw_limit_per_s": round(raw_rate, RATE_DIGITS),
        "ratio": round(rate / raw_rate, RATIO_DIGITS),
        "seconds": round(seconds, SECONDS_DIGITS),
        "raw_seconds": round(raw_seconds, SECONDS_DIGITS),
        **_stages(empty, entries),
        "machine": host,
    }
    if sustained is not None:
        sustained_rate = entries / sustained.seconds
        sustained_raw_rate = entries / sustained.raw_seconds
        sustained_ratio = sustained_rate / sustained_raw_rate
        report |= {
            "preload": preload,
            "sustained_entries_per_s": round(sustained_rate, RATE_DIGITS),
            "sustained_raw_limit_per_s": round(sustained_raw_rate, RATE_DIGITS),
            "sustained_ratio": round(sustained_ratio, RATIO_DIGITS),
            "sustained_vs_empty": round(sustained_ratio / (rate / raw_rate), RATIO_DIGITS),
            "sustained": _stages(sustained, entries),
        }
    return report
