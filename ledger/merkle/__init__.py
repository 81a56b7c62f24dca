"""The Merkle tree of the log: RFC 6962 / RFC 9162 over C2SP tlog-tiles storage.

Three modules, by role, all pure (no I/O):

* ``tree``: leaf and node hashes, ``integrate`` (append leaf hashes, get the tiles to
  store), roots and proofs planned over the tiles a ``TileReader`` serves;
* ``verify``: the verifiers of inclusion and consistency proofs;
* ``tiles``: the C2SP tlog-tiles layout (tile keys and paths, inner-nodes blobs, entry
  bundles) and the readers (``TileReader``, ``MemoryTiles``, ``CachingReader``).

Callers use this package's names (``from ledger import merkle; merkle.root(...)``).
"""

from __future__ import annotations

from ledger.merkle.tiles import (
    ENTRIES_LEVEL,
    ENTRY_LENGTH_BYTES,
    ENTRY_LENGTH_MAX,
    NODES_BYTES,
    NODES_HASHES,
    PATH_GROUP,
    PATH_GROUPS_MAX,
    TILE_BYTES,
    TILE_LEVEL_MAX,
    TILE_MASK,
    CachingReader,
    MemoryTiles,
    TileKey,
    TileReader,
    entries_path,
    entry_bundle,
    frontier_tile_keys,
    parse_entry_bundle,
    parse_tile_path,
    tile_path,
)
from ledger.merkle.tree import (
    EMPTY_ROOT,
    LEAF_PREFIX,
    NODE_PREFIX,
    Integration,
    KnownRanges,
    consistency_proof,
    consistency_ranges,
    inclusion_proof,
    inclusion_ranges,
    integrate,
    leaf_hash,
    node_hash,
    perfect_root,
    root,
)
from ledger.merkle.verify import verify_consistency, verify_inclusion

__all__ = [
    "EMPTY_ROOT",
    "ENTRIES_LEVEL",
    "ENTRY_LENGTH_BYTES",
    "ENTRY_LENGTH_MAX",
    "LEAF_PREFIX",
    "NODES_BYTES",
    "NODES_HASHES",
    "NODE_PREFIX",
    "PATH_GROUP",
    "PATH_GROUPS_MAX",
    "TILE_BYTES",
    "TILE_LEVEL_MAX",
    "TILE_MASK",
    "CachingReader",
    "Integration",
    "KnownRanges",
    "MemoryTiles",
    "TileKey",
    "TileReader",
    "consistency_proof",
    "consistency_ranges",
    "entries_path",
    "entry_bundle",
    "frontier_tile_keys",
    "inclusion_proof",
    "inclusion_ranges",
    "integrate",
    "leaf_hash",
    "node_hash",
    "parse_entry_bundle",
    "parse_tile_path",
    "perfect_root",
    "root",
    "tile_path",
    "verify_consistency",
    "verify_inclusion",
]
