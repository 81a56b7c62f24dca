"""Every limit of the system, named once, with why it has its value.

``check_limits()`` runs at the bottom of this module, so a bad combination fails when the
first module imports it (at start-up), and ``alliance`` calls it again before any command.
"""

from __future__ import annotations

from schemas.errors import ConfigError

# Entries
ENTRY_BYTES_MAX = (
    60_000  # canonical bytes of one entry; its leaf must fit a 65,535-byte bundle slot
)
SIGNATURES_PER_ENTRY_MAX = 64  # genesis is signed by the operator and every region
TEXT_LENGTH_MAX = 1024  # reason, basis, names
ID_LENGTH_MAX = 64  # store ids, receipt numbers, case references, sku
ITEMS_PER_RETURN_MAX = 200
RECEIPT_LINES_MAX = 10_000  # lines of one receipt
LINE_QTY_MAX = 100_000  # units one receipt line sells
CALENDAR_DATES_MAX = 4096  # holidays (or make-up workdays) a policy lists: about a decade
STORES_PER_MEMBER_MAX = 10_000  # a chain enrols its stores in one entry
KEYS_PER_PRINCIPAL_MAX = 8
NETWORK_MEMBERS_MAX = 4096  # the members one member honours and bills: a brand's franchisees
COMMITMENT_LEAD_DAYS_MAX = 365  # how far ahead a commitment change may take effect
# Business days one entry may end (the log idle that long records each day's cutoff):
# ten years, so a day-end write stays bounded even after a long outage.
DAY_ENDS_PER_ENTRY_MAX = 3660
# The nightly job: business days one run closes (a longer outage is caught up over runs),
# and how often it builds a night again when the log moved before it was admitted.
NIGHTS_PER_RUN_MAX = 62
BENCH_HTTP_CLIENTS_MAX = 1024  # concurrent connections of `alliance bench http`
CLOSE_ATTEMPTS_MAX = 3
REGIONS_MAX = 40  # China has 34 provincial divisions
ENDORSEMENT_TARGETS_MAX = 1000  # DESIGN §3
EVIDENCE_SEQS_MAX = 1000
AMOUNT_FEN_MAX = 2**53 - 1  # the RFC 8785 safe-integer range
# Before a genesis adopts a policy, entry times lie this close to the log clock (yrd.json's).
GENESIS_TIME_SKEW_S = 600

# Canonical JSON and entry parsing
NESTING_DEPTH_MAX = 16  # bodies nest at most four levels; this keeps hostile input off the stack
QUOTED_TEXT_MAX = 40  # characters of a refused literal an error quotes: enough to recognise it
PARSED_TIMES_MAX = 8192  # entry times memoised: about two full batches

# Leaves (C2SP tlog-tiles entry bundles)
LEAF_BYTES_MAX = 0xFFFF  # entry bundles prefix each leaf with a big-endian uint16 length
# {"entry":…,"logged":"2026-11-23T10:31:35.123456Z","seq":N,"signatures":…} around the parts.
RECORD_OVERHEAD_BYTES = 128

# Keys and signed notes
KEY_FILE_BYTES_MAX = 64 * 1024  # a PKCS#8 PEM Ed25519 key is ~120-300 bytes
CHECKED_PUBLIC_KEYS_CACHED = 4096  # checking a key costs ~85 µs, a cache hit well under 1 µs
NOTE_SIGNATURES_MAX = 100  # Go's sumdb/note refuses more; the spec asks to accept at least 16
NOTE_BYTES_MAX = 1_000_000  # the spec's alternative bound, torchwood's: far above any checkpoint

# Sequencer
BATCH_SIZE_MAX = 4096  # entries appended in one transaction
# Keys (or key prefixes) in one read of a paged projection (ledger.projections.SealedRows):
# a batch's prefetch, or a night's open obligations, in statements of this many.
PAGE_READ_KEYS_MAX = 8192
BATCH_BYTES_MAX = 32 * 1024 * 1024
GROUP_COMMIT_LINGER_S = 0.01  # a batch leader waits this long at most for concurrent callers
QUEUE_DEPTH_MAX = 65_536  # submissions waiting for the writer before callers are refused

# Database
SQLITE_BUSY_TIMEOUT_MS = 30_000  # a writer waits this long for another process's batch
# SQLite's write-ahead log is copied into the database file by a background job after
# each batch (ledger.walcheckpoint), not inside the writer's commit: SQLite's default
# (copy once the WAL passes 1,000 pages) made every batch's commit copy and fsync all it
# wrote, on the writer's thread: at 500 k returns 180 of the writer's 700 µs per entry.
# The WAL restarts only when a batch begins with every frame copied, which a job copying
# the last batch while the next one runs seldom allows; so once the job finds the WAL this
# long (pages of 4 KiB: 256 MiB), the writer waits for it before its next batch, which
# then restarts the WAL. A batch at 500 k entries writes 10-20 k pages: about one wait
# in five batches.
SQLITE_WAL_RESTART_PAGES = 65_536
# A commit copies the WAL itself only past this (512 MiB): the bound if the job cannot
# run, or another process writes without one (SQLite's wal_autocheckpoint).
SQLITE_WAL_AUTOCHECKPOINT_PAGES = 131_072
# Once the WAL restarts, its file is cut back to this size (SQLite's journal_size_limit).
SQLITE_WAL_SIZE_LIMIT_BYTES = 64 * 1024 * 1024
# Rows per multi-row INSERT that a batch's helper thread runs (ledger.store.SqliteStream);
# fewer when the columns times this would pass SQLite's bound-variable limit.
SQLITE_INSERT_ROWS_MAX = 512
SQLITE_STATEMENTS_PENDING_MAX = 8  # of those statements waiting for the helper at a time
POSTGRES_POOL_SIZE = 8  # connections one process keeps: its writer and a few concurrent readers
# The proofs' own pool on PostgreSQL (ledger.app: no ping on checkout), and how often a
# proof is tried when its connection is found dead (once more, on a fresh one).
PROOF_POOL_SIZE = 4
PROOF_POOL_OVERFLOW = 4
PROOF_ATTEMPTS = 2
READ_CHUNK_ENTRIES = 4096  # leaves read per query when streaming the log: one full batch
CHECKPOINT_CANDIDATES_MAX = 16  # stored checkpoints a reader tries, newest first, then: tampered
# Verdicts a Ledger remembers on the checkpoint rows (and cosignature sets) it verified,
# and the older roots it proved consistent with them; past this the memory starts over.
VERIFIED_CHECKPOINTS_MAX = 256
VERIFIED_ROOTS_MAX = 4096
# Hashes of leaf ranges of at least a tile's width that proofs verified against a
# verified root (ledger.app.VerifiedRanges): ~13 MB; a 16 M-entry log has 2**17 of them.
VERIFIED_RANGES_MAX = 1 << 16

# Merkle tiles (C2SP tlog-tiles)
TILE_HEIGHT = 8
TILE_WIDTH = 1 << TILE_HEIGHT
HASH_SIZE = 32
TILE_MEMO_TILES = (
    1024  # level >= 1 tiles memoised: ~8 MB, and 1,024 level-1 tiles span 67 M entries
)
PARTIAL_TILE_MEMO_TILES = 64  # right-edge partial tiles whose hashed-up nodes are memoised

# Reads
PROOF_TREE_SIZE_MAX = 2**40
ENTRY_BUNDLE_SIZE = TILE_WIDTH

# Nodes
REVIEW_QUEUE_MAX = 100_000  # entries a region's review queue holds
FETCH_LEAVES_MAX = 4096  # leaves a node asks the log for at a time: one full batch
DEFAULT_AUTO_APPROVE_MAX_FEN = 50_000  # 500 元: above it a person looks

# Parallel verification (ledger/verifying.py)
# Below this, shipping a batch to the worker costs more than it saves.
PARALLEL_VERIFY_MIN_ENTRIES = 512
VERIFY_CHUNK_ENTRIES = (
    512  # signatures sent to the worker at a time: admission starts after the first
)
VERIFY_WORKERS_MAX = 1  # the writer's thread verifies too: two cores, two verifiers
# Chunks the writer takes back from a verification worker that is behind: only while at
# least this many wait unstarted behind the one it needs (ledger.sequencer._await_verdicts).
STEAL_BACKLOG_MIN_CHUNKS = 2
VERIFY_PARENT_POLL_S = 1.0  # a worker whose parent died exits within this
VERIFY_WAIT_S = 120.0  # a worker that has not answered by then is a broken worker

# HTTP API (api/)
# Documents one `POST /v1/entries:batch` takes: a till's day of returns (issue 9).
BATCH_REQUEST_ENTRIES_MAX = 1000
# Its body: a till's return is ~2 KB signed, so 1,000 of them are ~2 MB; 16 MiB leaves
# room for large receipts, and a bigger upload is split by the client, not buffered here.
BATCH_REQUEST_BYTES_MAX = 16 * 1024 * 1024
# Entries the API has handed to the writer and not yet answered, across requests: past
# it a request is answered 503 with Retry-After before its body is judged (the writer's
# own QUEUE_DEPTH_MAX still bounds its queue; this keeps the server's memory bounded).
API_INFLIGHT_ENTRIES_MAX = 16_384
AUDITORS_MAX = 16  # auditors one policy declares
API_WRITER_THREADS = 128  # requests waiting for the writer at once (the rest wait their turn)
# RFC 9421 request signatures (api/deps.reader, ledger.access.authenticate):
# a request's `created` may be this far from the server's clock either way (clocks of
# tills drift; five minutes is the customary Kerberos-like window).
HTTP_SIGNATURE_SKEW_S = 300
# Nonces remembered, each until its request's `created` leaves the skew window: past it
# a signed request is answered 503 (forgetting a live nonce would let a replay in).
HTTP_NONCE_CACHE_MAX = 200_000
# Longest nonce, Signature-Input and Signature header accepted (a signature is 64 bytes,
# 90 in base64 with its label): anything longer is malformed, not parsed.
HTTP_NONCE_LENGTH_MAX = 64
HTTP_SIGNATURE_HEADER_BYTES_MAX = 1024
# Public search (一站式查询): members one page lists, and the shortest and longest query.
SEARCH_PAGE_SIZE_MAX = 50
SEARCH_PAGE_SIZE_DEFAULT = 20
SEARCH_QUERY_LENGTH_MAX = 64
# The public page's counts look back this far (issue 9: "12-month counts").
PUBLIC_COUNTS_WINDOW_DAYS = 365
# Entries one public member page proves (its statuses, commitments, stores, measures):
# past it the oldest are left out and the page says so.
PUBLIC_PROOFS_MAX = 256
# Region sign-in of the web console (ledger/sessions.py, issue 10): a login challenge
# lives this long (it is stateless, HMAC-authenticated) and this many used nonces are
# remembered (past it a sign-in is refused with 503 rather than a nonce forgotten
# early); a session lives SESSION_TTL_S and SESSIONS_MAX
# are held (a region signs in again after its session ends).
SESSION_CHALLENGE_TTL_S = 120
# A sign-in request (region, key id, nonce, signature: ~250 bytes), read no further:
# the route needs no credential, so its body must not be read whole whatever its size.
SESSION_SIGN_IN_BYTES_MAX = 4 * 1024
SESSION_CHALLENGES_MAX = 10_000
SESSION_TTL_S = 900
SESSIONS_MAX = 10_000
# The regulator desk's reads (ledger/desk.py): entries one review queue page lists, the
# days the region's picture looks back, and the open items (disputes, overdue
# instructions, notices) it lists.
DESK_QUEUE_PAGE_MAX = 500
DESK_WINDOW_DAYS = 30
DESK_ITEMS_MAX = 1000
# The transparency page's tree growth reads at most this many newest checkpoints (one a
# batch: weeks of a busy log), drawn as the last checkpoint of each local day.
GROWTH_CHECKPOINTS_MAX = 20_000
SERVE_PORT_DEFAULT = 8000
BODY_READ_DEADLINE_S = 10.0  # a request body must arrive whole within this (else 408)
SERVE_KEEP_ALIVE_S = 5  # an idle keep-alive connection is closed after this long
# Nodes over HTTP (nodes/http.py, api/nodes.py, api/witness.py, ops/witnessing.py):
# pending entries one `GET /v1/endorsements/pending` page holds, each with its leaf and
# inclusion proof (a node asks again after deciding them).
PENDING_PAGE_MAX = 1000
# Keys one `GET /v1/keys` answers, each with its declaring entry and proof.
KEYS_PAGE_MAX = 100
# `alliance serve --witness` sends the newest checkpoint to each witness at most this
# often (issue 9: "at most once per second").
WITNESS_PUSH_INTERVAL_S = 1.0
# How long a node waits for one HTTP answer (a log's or a witness's).
NODE_HTTP_TIMEOUT_S = 30.0
# A region's node over HTTP keeps the obligations it proved while endorsing their entries
# (to check the night that includes them without reading each entry again): at most this
# many, the oldest forgotten first (a forgotten one is read again when a night needs it).
NODE_OBLIGATIONS_KEPT_MAX = 1_000_000
# tlog-witness add-checkpoint: at most 63 proof lines (the spec's limit), and the body:
# the old size line, the proof lines and a checkpoint note.
WITNESS_PROOF_LINES_MAX = 63
WITNESS_REQUEST_BYTES_MAX = 64 + WITNESS_PROOF_LINES_MAX * 46 + NOTE_BYTES_MAX

# Waiting
WAIT_DEADLINE_S = 60.0  # how long a caller waits for the writer before DeadlineError

# Export files an auditor reads (bounded: an export may be hostile)
CHECKPOINT_FILE_BYTES_MAX = 1_000_000  # one signed note with its cosignatures (NOTE_BYTES_MAX)
TRUST_FILE_BYTES_MAX = 256 * 1024  # origin, log vkey and REGIONS_MAX witness vkeys: ~10 KB
LINE_BYTES_MAX = LEAF_BYTES_MAX  # a line of entries.jsonl is a leaf: the sequencer logs no longer
SKIP_CHUNK_BYTES = 1 << 20  # read size while skipping the rest of an overlong line: 1 MiB held
INTEGRATE_CHUNK = 4096  # leaves hashed into the auditor's tree at a time: one full batch
FINDINGS_MAX = 1000  # past this an export or a database is plainly broken; stop listing
TEMPORARY_NAME_ATTEMPTS = 16  # random 64-bit names: a 16th clash means someone is planting them

# `alliance import` (restoring an export into an empty database)
# The leaves are stored as the audit's replay integrates them (INTEGRATE_CHUNK at a
# time, as the writer's batches, or fewer once their lines reach IMPORT_CHUNK_BYTES_MAX);
# the replay runs at most IMPORT_CHUNKS_AHEAD chunks ahead of the import's database
# process. Memory: the chunk being gathered, those waiting (each also pickled on its way)
# and the one being stored, so at most about 2 x (IMPORT_CHUNKS_AHEAD + 2) x 16 MiB of
# lines, however long a hostile export's lines are (real leaves: about 2.5 MB a chunk).
IMPORT_CHUNKS_AHEAD = 2
IMPORT_CHUNK_BYTES_MAX = 16 * 1024 * 1024
# How long an import into PostgreSQL waits for a table of its target that another session
# holds locked (its DDL, a LOCK TABLE) before it answers log-busy: not behind it for ever.
IMPORT_LOCK_WAIT_MS = 5_000

# Command-line input (bounded: a file or stdin may be anything, arguments any number)
# One `submitted` document: its entry is at most ENTRY_BYTES_MAX canonical bytes, and a
# file may be indented, so allow generous whitespace.
SUBMISSION_BYTES_MAX = 1024 * 1024
# CPython's 700 collects the young generation every few entries and rescans the writer's
# state; ledger rows hold no reference cycles, so this saves ~10 % of append time.
GC_YOUNG_THRESHOLD = 50_000

# The demo
DEMO_DAYS_MAX = 366
DEMO_MERCHANTS_MAX = 100_000
DEMO_MERCHANTS_MIN = 8  # brands across two regions plus independents
DEMO_ENTRY_DELAY_MAX_S = 240  # a POS signs up to this long before the log sees it: within skew
DEMO_EVIDENCE_SEQS_MAX = 5  # overdue returns a penalty cites: enough to show, short to read
DEMO_DRAIN_ROUNDS_MAX = 10  # node rounds until nothing awaits: a day needs two or three
DEMO_PAIR_TRIES_MAX = 100  # draws to find two franchisees of one brand (almost always one)

# Benchmarks
BENCH_APPEND_ENTRIES_MAX = 200_000  # every signed document is built in memory first
# Every leaf and hash is held in memory (about 200 bytes a leaf: 3.2 GB at the bound), and
# pymerkle's baseline only up to BENCH_PYMERKLE_ENTRIES_MAX: 10 M is issue 11's size.
BENCH_PROOF_ENTRIES_MAX = 16_000_000
BENCH_SAMPLES_MAX = 1_000_000
BENCH_MEMORY_ENTRIES_MAX = 20_000_000  # twenty times the default run: hours of appending
BENCH_MEMORY_CHUNK_ENTRIES = 4 * BATCH_SIZE_MAX  # documents signed, then appended, at a time
BENCH_RESTART_TIMEOUT_S = 3600  # a restart replays nothing; an hour means it hangs
BENCH_LEAF_SAMPLES = 64  # leaves re-checked against the reference RFC 8785 implementation
BENCH_VERIFY_SAMPLES = 200  # proofs re-checked by the verifiers and against pymerkle, untimed
BENCH_RETURN_ITEMS_MAX = 3  # items on a bench return: a typical receipt, not a worst case
BENCH_PURCHASE_AGE_DAYS_MAX = 6.0  # inside the bench merchants' 7-day return window
BENCH_AUDIT_ENTRIES_MAX = 20_000_000  # the export is generated at ~9 k/s, audited: hours
BENCH_AUDIT_TIMEOUT_S = 4 * 3600  # the audit child of a 20 M export; longer means it hangs
BENCH_PYMERKLE_ENTRIES_MAX = 4_000_000  # pymerkle holds every leaf and node in memory
# The bench's export generator (ops/bench/generate.py): entries a worker signs and turns
# into leaves at a time (IPC per chunk is noise), and chunks in flight per worker (the
# workers never wait for the parent, and memory stays a few chunks however long the log).
BENCH_GENERATE_CHUNK_ENTRIES = 4096
BENCH_GENERATE_CHUNKS_AHEAD = 2

# The audit on every core (ledger/audit.py)
AUDIT_CHUNK_LINES = 8192  # lines a worker checks at a time: IPC per chunk is noise
AUDIT_CHUNKS_AHEAD = 2  # chunks in flight per worker: the workers never wait for the replay
# A chunk is cut at this many bytes of lines too (real ones: about 6.4 MB at 8,192 lines),
# so the chunks in flight (AUDIT_CHUNKS_AHEAD per worker, each also pickled on its way)
# hold at most about 2 x (AUDIT_CHUNKS_AHEAD x workers + 1) x 16 MiB, whatever the lines.
AUDIT_CHUNK_BYTES_MAX = 16 * 1024 * 1024
# The first chunks are smaller (doubling up to AUDIT_CHUNK_LINES), so the replay starts as
# soon as the workers are up instead of waiting for a whole chunk's signatures.
AUDIT_FIRST_CHUNK_LINES = 256
# Above this size of entries.jsonl an audit (and an import) pages the projections that grow
# with the log, and the entry ids, to a private SQLite file (ledger.spill): about 400 k
# entries, some 600 MB of replay state in memory, below which memory is the faster place.
AUDIT_SPILL_BYTES_MIN = 256 * 1024 * 1024
# The spill file's own page cache (SQLite's cache_size; its default is 2 MB): memory an
# audit above AUDIT_SPILL_BYTES_MIN spends, whatever the log's length.
AUDIT_SPILL_CACHE_BYTES = 64 * 1024 * 1024
# The spill's filter of the keys it holds (ledger.spill.KeyFilter, a Bloom filter): bits
# per key (with 3 probes: 0.5 % of absent keys still asked of the file) and the keys of
# its first layer (512 kB a table; each further layer twice the last). Powers of two.
SPILL_FILTER_BITS_PER_KEY = 16
SPILL_FILTER_KEYS_FIRST = 1 << 18


def _entry_problems() -> list[tuple[bool, str]]:
    return [
        (
            1 <= BATCH_SIZE_MAX <= QUEUE_DEPTH_MAX,
            "BATCH_SIZE_MAX must be within 1..QUEUE_DEPTH_MAX",
        ),
        (
            ENDORSEMENT_TARGETS_MAX <= BATCH_SIZE_MAX * 16,
            "ENDORSEMENT_TARGETS_MAX is out of proportion to BATCH_SIZE_MAX",
        ),
        (TILE_WIDTH == 256, "C2SP tlog-tiles fixes the tile width at 256"),
        (
            ENTRY_BYTES_MAX * BATCH_SIZE_MAX <= BATCH_BYTES_MAX * 16,
            "BATCH_BYTES_MAX too small for full batches",
        ),
        (AMOUNT_FEN_MAX <= 2**53 - 1, "AMOUNT_FEN_MAX beyond the RFC 8785 safe range"),
        (
            SUBMISSION_BYTES_MAX >= 2 * ENTRY_BYTES_MAX,
            "SUBMISSION_BYTES_MAX leaves no room for a full entry's signatures",
        ),
        (LEAF_BYTES_MAX <= 0xFFFF, "LEAF_BYTES_MAX beyond a C2SP bundle's uint16 length"),
        (
            ENTRY_BYTES_MAX + RECORD_OVERHEAD_BYTES < LEAF_BYTES_MAX,
            "a full entry and its record cannot fit LEAF_BYTES_MAX",
        ),
        (NESTING_DEPTH_MAX >= 4, "NESTING_DEPTH_MAX below the four levels a body nests"),
        (PARSED_TIMES_MAX >= BATCH_SIZE_MAX, "PARSED_TIMES_MAX must hold a full batch's times"),
        (
            max(16, REGIONS_MAX + 1) <= NOTE_SIGNATURES_MAX,
            "NOTE_SIGNATURES_MAX must be at least 16 and hold the log's and every witness's",
        ),
        (
            NOTE_BYTES_MAX <= CHECKPOINT_FILE_BYTES_MAX,
            "CHECKPOINT_FILE_BYTES_MAX must hold a note of NOTE_BYTES_MAX",
        ),
        (
            0 < GROUP_COMMIT_LINGER_S < WAIT_DEADLINE_S,
            "GROUP_COMMIT_LINGER_S must be positive and far below WAIT_DEADLINE_S",
        ),
        (
            STEAL_BACKLOG_MIN_CHUNKS >= 1,
            "STEAL_BACKLOG_MIN_CHUNKS must be at least 1 (a chunk behind the awaited one)",
        ),
        (
            0 < VERIFY_PARENT_POLL_S < VERIFY_WAIT_S and BODY_READ_DEADLINE_S > 0,
            "VERIFY_PARENT_POLL_S and BODY_READ_DEADLINE_S must be positive",
        ),
        (
            0 <= DEFAULT_AUTO_APPROVE_MAX_FEN <= AMOUNT_FEN_MAX,
            "DEFAULT_AUTO_APPROVE_MAX_FEN must be within 0..AMOUNT_FEN_MAX",
        ),
    ]


# Counts, sizes and times that must be at least 1 (0 would loop forever or hold nothing).
_POSITIVE = (
    "GENESIS_TIME_SKEW_S",
    "HTTP_SIGNATURE_SKEW_S",
    "HTTP_NONCE_CACHE_MAX",
    "HTTP_NONCE_LENGTH_MAX",
    "HTTP_SIGNATURE_HEADER_BYTES_MAX",
    "SESSION_CHALLENGE_TTL_S",
    "SESSION_SIGN_IN_BYTES_MAX",
    "SESSION_CHALLENGES_MAX",
    "SESSION_TTL_S",
    "SESSIONS_MAX",
    "DESK_QUEUE_PAGE_MAX",
    "DESK_WINDOW_DAYS",
    "DESK_ITEMS_MAX",
    "READ_CHUNK_ENTRIES",
    "REPORT_SEQS_PER_PART",
    "PARALLEL_ROOT_LEAVES_MIN",
    "HASH_WORKER_TIMEOUT_S",
    "HASH_WORKER_PIPE_BYTES",
    "INTEGRATE_CHUNK",
    "AUDIT_CHUNK_LINES",
    "AUDIT_CHUNKS_AHEAD",
    "AUDIT_CHUNK_BYTES_MAX",
    "AUDIT_FIRST_CHUNK_LINES",
    "AUDIT_SPILL_BYTES_MIN",
    "AUDIT_SPILL_CACHE_BYTES",
    "SPILL_FILTER_BITS_PER_KEY",
    "SPILL_FILTER_KEYS_FIRST",
    "PAGE_READ_KEYS_MAX",
    "IMPORT_CHUNKS_AHEAD",
    "IMPORT_CHUNK_BYTES_MAX",
    "IMPORT_LOCK_WAIT_MS",
    "SKIP_CHUNK_BYTES",
    "FINDINGS_MAX",
    "CHECKPOINT_CANDIDATES_MAX",
    "VERIFIED_CHECKPOINTS_MAX",
    "VERIFIED_ROOTS_MAX",
    "VERIFIED_RANGES_MAX",
    "PARTIAL_TILE_MEMO_TILES",
    "TEMPORARY_NAME_ATTEMPTS",
    "TILE_MEMO_TILES",
    "CHECKED_PUBLIC_KEYS_CACHED",
    "POSTGRES_POOL_SIZE",
    "PROOF_POOL_SIZE",
    "PROOF_ATTEMPTS",
    "SQLITE_BUSY_TIMEOUT_MS",
    "SQLITE_WAL_AUTOCHECKPOINT_PAGES",
    "SQLITE_WAL_RESTART_PAGES",
    "SQLITE_WAL_SIZE_LIMIT_BYTES",
    "SQLITE_INSERT_ROWS_MAX",
    "SQLITE_STATEMENTS_PENDING_MAX",
    "DEMO_DRAIN_ROUNDS_MAX",
    "DEMO_PAIR_TRIES_MAX",
    "BENCH_LEAF_SAMPLES",
    "BENCH_VERIFY_SAMPLES",
    "BENCH_RESTART_TIMEOUT_S",
    "BENCH_GENERATE_CHUNK_ENTRIES",
    "BENCH_GENERATE_CHUNKS_AHEAD",
    "BATCH_REQUEST_ENTRIES_MAX",
    "SEARCH_PAGE_SIZE_MAX",
    "SEARCH_PAGE_SIZE_DEFAULT",
    "SEARCH_QUERY_LENGTH_MAX",
    "PUBLIC_COUNTS_WINDOW_DAYS",
    "PUBLIC_PROOFS_MAX",
    "PENDING_PAGE_MAX",
    "KEYS_PAGE_MAX",
    "NODE_HTTP_TIMEOUT_S",
    "NODE_OBLIGATIONS_KEPT_MAX",
    "WITNESS_PUSH_INTERVAL_S",
    "GROWTH_CHECKPOINTS_MAX",
    "AUDITORS_MAX",
    "API_WRITER_THREADS",
)


def _reader_and_tool_problems() -> list[tuple[bool, str]]:
    return [
        (
            1 <= FETCH_LEAVES_MAX <= 65_536,
            "FETCH_LEAVES_MAX must be within 1..65536 (a fetch holds that many leaves)",
        ),
        (LINE_BYTES_MAX >= LEAF_BYTES_MAX, "LINE_BYTES_MAX must admit every leaf"),
        (
            DESK_QUEUE_PAGE_MAX <= ENDORSEMENT_TARGETS_MAX,
            "DESK_QUEUE_PAGE_MAX above ENDORSEMENT_TARGETS_MAX (a page's decision is one entry)",
        ),
        (1 <= DEMO_MERCHANTS_MIN <= DEMO_MERCHANTS_MAX, "DEMO_MERCHANTS_MIN above the maximum"),
        (
            0 <= DEMO_ENTRY_DELAY_MAX_S < GENESIS_TIME_SKEW_S,
            "DEMO_ENTRY_DELAY_MAX_S must lie within the entry time skew",
        ),
        (
            1 <= DEMO_EVIDENCE_SEQS_MAX <= EVIDENCE_SEQS_MAX,
            "DEMO_EVIDENCE_SEQS_MAX must be within 1..EVIDENCE_SEQS_MAX",
        ),
        (
            1 <= BENCH_RETURN_ITEMS_MAX <= ITEMS_PER_RETURN_MAX,
            "BENCH_RETURN_ITEMS_MAX must be within 1..ITEMS_PER_RETURN_MAX",
        ),
        (
            BENCH_MEMORY_CHUNK_ENTRIES >= BATCH_SIZE_MAX,
            "BENCH_MEMORY_CHUNK_ENTRIES must fill at least one batch",
        ),
        (0 < BENCH_PURCHASE_AGE_DAYS_MAX < 7, "BENCH_PURCHASE_AGE_DAYS_MAX beyond 7 days"),
        (
            BATCH_REQUEST_ENTRIES_MAX <= API_INFLIGHT_ENTRIES_MAX <= QUEUE_DEPTH_MAX,
            "API_INFLIGHT_ENTRIES_MAX must hold one batch request and fit the writer's queue",
        ),
        (
            BATCH_REQUEST_BYTES_MAX >= SUBMISSION_BYTES_MAX,
            "BATCH_REQUEST_BYTES_MAX must admit at least one full submission",
        ),
        (
            SEARCH_PAGE_SIZE_DEFAULT <= SEARCH_PAGE_SIZE_MAX,
            "SEARCH_PAGE_SIZE_DEFAULT above SEARCH_PAGE_SIZE_MAX",
        ),
        (
            SQLITE_WAL_RESTART_PAGES < SQLITE_WAL_AUTOCHECKPOINT_PAGES,
            "SQLITE_WAL_RESTART_PAGES must lie below SQLITE_WAL_AUTOCHECKPOINT_PAGES "
            "(the writer restarts the WAL before a commit has to copy it)",
        ),
    ]


def check_limits() -> None:
    """Validate the limits against each other (Tessera's habit): runs at import, below,
    and again from ``alliance`` before any command. A bad combination is a ConfigError."""
    rules = _entry_problems() + _reader_and_tool_problems() + _reconciliation_problems()
    problems = [message for holds, message in rules if not holds]
    limits = globals()
    problems += [f"{name} must be at least 1" for name in _POSITIVE if limits[name] < 1]
    if problems:
        raise ConfigError("; ".join(problems))


# Reconciliation (issue 8): the pure netting core, reconciliation/
# A night's included obligations are held in memory (~150 bytes each): 4 M is ~600 MB.
OBLIGATIONS_PER_NIGHT_MAX = 4_000_000
REPORT_SEQS_PER_PART = 65_536  # included seqs written as text per part of a report
PARALLEL_ROOT_LEAVES_MIN = 65_536  # a night's leaves hashed in-process before the worker helps
HASH_WORKER_PIPE_BYTES = 2**21  # the pipe to the hash worker: about four chunks of leaves
HASH_WORKER_TIMEOUT_S = 300  # the hash worker's roots, after the last chunk was sent
# Members with a position in one night: every enrolled member at most; positions are held
# in memory and are the report's second-largest list.
POSITIONS_PER_NIGHT_MAX = 1_000_000
# Greedy netting makes at most N-1 transfers among N positions.
INSTRUCTIONS_PER_NIGHT_MAX = POSITIONS_PER_NIGHT_MAX - 1
# Digits of the instruction index in a payment reference (AL20261201-000003-67): every
# index of a night fits, so the reference is fixed-width and sorts like the index.
REFERENCE_INDEX_DIGITS = 6
# Instructions of the past nights that one report lists as overdue (each a few dozen bytes).
OVERDUE_PER_REPORT_MAX = 1_000_000
SETTLEMENT_DAYS_MAX = 90  # the policy's own bound on settlement_days (schemas.bodies)
BENCH_RECONCILE_OBLIGATIONS_MAX = OBLIGATIONS_PER_NIGHT_MAX  # the bench holds them all
BENCH_RECONCILE_MEMBERS_MAX = POSITIONS_PER_NIGHT_MAX


def _reconciliation_problems() -> list[tuple[bool, str]]:
    return [
        (
            1 <= INSTRUCTIONS_PER_NIGHT_MAX <= 10**REFERENCE_INDEX_DIGITS,
            "INSTRUCTIONS_PER_NIGHT_MAX must fit REFERENCE_INDEX_DIGITS digits",
        ),
        (
            INSTRUCTIONS_PER_NIGHT_MAX >= POSITIONS_PER_NIGHT_MAX - 1,
            "INSTRUCTIONS_PER_NIGHT_MAX below the N-1 transfers of POSITIONS_PER_NIGHT_MAX",
        ),
        (
            POSITIONS_PER_NIGHT_MAX >= 2 and OBLIGATIONS_PER_NIGHT_MAX >= 1,
            "a night needs room for one obligation between two members",
        ),
        (OVERDUE_PER_REPORT_MAX >= 0, "OVERDUE_PER_REPORT_MAX must not be negative"),
        (1 <= SETTLEMENT_DAYS_MAX <= 366, "SETTLEMENT_DAYS_MAX must be within 1..366"),
        (
            BENCH_RECONCILE_OBLIGATIONS_MAX <= OBLIGATIONS_PER_NIGHT_MAX
            and 2 <= BENCH_RECONCILE_MEMBERS_MAX <= POSITIONS_PER_NIGHT_MAX,
            "the reconcile bench must stay within a night's limits",
        ),
    ]


check_limits()
