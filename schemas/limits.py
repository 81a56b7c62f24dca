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
    if problems:
        raise ConfigError("; ".join(problems))
