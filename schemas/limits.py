"""Every limit of the system, named once. ``check_limits()`` runs at start-up."""

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
STORES_PER_MEMBER_MAX = 10_000  # a chain enrols its stores in one entry
KEYS_PER_PRINCIPAL_MAX = 8
REGIONS_MAX = 40  # China has 34 provincial divisions
ENDORSEMENT_TARGETS_MAX = 1000  # DESIGN §3
EVIDENCE_SEQS_MAX = 1000
AMOUNT_FEN_MAX = 2**53 - 1  # the RFC 8785 safe-integer range

# Key files
KEY_FILE_BYTES_MAX = 64 * 1024  # a PKCS#8 PEM Ed25519 key is ~120-300 bytes

# Sequencer
BATCH_SIZE_MAX = 4096  # entries appended in one transaction
BATCH_BYTES_MAX = 32 * 1024 * 1024
QUEUE_DEPTH_MAX = 65_536  # submissions waiting for the writer before callers are refused

# Merkle tiles (C2SP tlog-tiles)
TILE_HEIGHT = 8
TILE_WIDTH = 1 << TILE_HEIGHT
HASH_SIZE = 32

# Reads
PROOF_TREE_SIZE_MAX = 2**40
ENTRY_BUNDLE_SIZE = TILE_WIDTH

# Nodes
REVIEW_QUEUE_MAX = 100_000  # entries a region's review queue holds

# Waiting
WAIT_DEADLINE_S = 60.0  # how long a caller waits for the writer before DeadlineError

# Export files an auditor reads (bounded: an export may be hostile)
CHECKPOINT_FILE_BYTES_MAX = 1_000_000  # one signed note with its cosignatures (NOTE_BYTES_MAX)
TRUST_FILE_BYTES_MAX = 256 * 1024  # origin, log vkey and REGIONS_MAX witness vkeys: ~10 KB

# Command-line input (bounded: a file or stdin may be anything, arguments any number)
# One `submitted` document: its entry is at most ENTRY_BYTES_MAX canonical bytes, and a
# file may be indented, so allow generous whitespace.
SUBMISSION_BYTES_MAX = 1024 * 1024
DEMO_DAYS_MAX = 366
DEMO_MERCHANTS_MAX = 100_000
BENCH_APPEND_ENTRIES_MAX = 200_000  # every signed document is built in memory first
BENCH_PROOF_ENTRIES_MAX = 4_000_000  # every leaf and hash is held in memory
BENCH_SAMPLES_MAX = 1_000_000


def check_limits() -> None:
    """Validate the limits against each other once, at start-up (Tessera's habit)."""
    problems = []
    if not 1 <= BATCH_SIZE_MAX <= QUEUE_DEPTH_MAX:
        problems.append("BATCH_SIZE_MAX must be within 1..QUEUE_DEPTH_MAX")
    if ENDORSEMENT_TARGETS_MAX > BATCH_SIZE_MAX * 16:
        problems.append("ENDORSEMENT_TARGETS_MAX is out of proportion to BATCH_SIZE_MAX")
    if TILE_WIDTH != 256:
        problems.append("C2SP tlog-tiles fixes the tile width at 256")
    if ENTRY_BYTES_MAX * BATCH_SIZE_MAX > BATCH_BYTES_MAX * 16:
        problems.append("BATCH_BYTES_MAX too small for full batches")
    if AMOUNT_FEN_MAX > 2**53 - 1:
        problems.append("AMOUNT_FEN_MAX beyond the RFC 8785 safe range")
    if SUBMISSION_BYTES_MAX < 2 * ENTRY_BYTES_MAX:
        problems.append("SUBMISSION_BYTES_MAX leaves no room for a full entry's signatures")
    if problems:
        raise ConfigError("; ".join(problems))
