"""The Merkle tree of the log: RFC 6962 / RFC 9162 math over C2SP tlog-tiles storage.

Pure functions, no I/O: leaf and node hashes, ``integrate`` (appending leaves yields the
tiles and inner-nodes blobs to store, see ``ledger.merkle.tiles`` for their layout), and
roots and proofs read through a ``TileReader``.

Node hashes are read or derived as follows:

* a complete node at level ``8*L + k`` (``0 < k < 8``) is read from the blob of its tile
  if that tile is full in storage (even when it is partial in the tree size asked for: a
  complete node never changes); without a blob (a partial tile, or a reader that stores
  none, e.g. the auditor rebuilding from leaves), it is hashed up from the ``2**k`` stored
  level-``8*L`` hashes under it, which always sit inside one tile (≤ 127 hashes);
* the hash of the incomplete subtree on the right edge is folded from the complete
  subtrees it decomposes into (the binary digits of its width).

Proofs and roots first compute every node they need, then fetch all the tiles holding
them with ONE ``TileReader.read_tiles`` call and, only if some needed node is an inner
node of a tile that is full in storage, the blobs of those tiles with ONE
``TileReader.read_nodes`` call; then they hash. A proof therefore touches O(log n) tiles
and, with blobs, hashes only inside the partial tiles of the right edge (≤ 127 hashes per
tile level) and for the O(log n) folds.

Stored blobs are trusted like stored tiles: a corrupt one yields a proof that
``verify_inclusion``/``verify_consistency`` reject; a blob of the wrong length is ignored
(the node is hashed up from the tile instead). The one piece of state is a bounded memo of
the inner nodes of *full* tiles of level >= 1 for readers without blobs, keyed by tile
content: a content key can never return a wrong hash (see ``_memo_nodes``); and a bounded
memo of the nodes hashed up inside the right edge's *partial* tiles, keyed the same way
(``_memo_partial``: every proof of a tree size hashes up the same nodes there).

Errors: bad arguments to the provers raise ``MalformedError`` (``LimitError`` beyond
``PROOF_TREE_SIZE_MAX``); tiles absent or narrower than the requested tree size raise
``NotFoundError`` (the size is beyond what is stored); ``integrate`` checks the writer's
invariants with ``invariant()`` (a broken one halts it).
"""

from __future__ import annotations

import functools
import hashlib
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ledger.merkle.tiles import (
    NODES_BYTES,
    TILE_BYTES,
    TILE_MASK,
    MemoryTiles,
    TileKey,
    TileReader,
    frontier_tile_keys,
)
from schemas.errors import LimitError, MalformedError, NotFoundError, invariant
from schemas.limits import (
    HASH_SIZE,
    PARTIAL_TILE_MEMO_TILES,
    PROOF_TREE_SIZE_MAX,
    TILE_HEIGHT,
    TILE_MEMO_TILES,
    TILE_WIDTH,
)

_Range = tuple[int, int]  # leaves [start, end)
KnownRanges = Mapping[_Range, bytes]  # MTH(D[start:end]) the caller already verified
_Address = tuple[TileKey, int, int]  # a node: (tile key, sublevel k, first hash's offset)

LEAF_PREFIX = b"\x00"  # RFC 6962 §2.1 domain separation: leaves and nodes never collide
NODE_PREFIX = b"\x01"
EMPTY_ROOT: bytes = hashlib.sha256(b"").digest()  # MTH({}) per RFC 9162 §2.1.1

_SUBLEVEL_MASK = TILE_HEIGHT - 1  # level & mask: the sublevel within a tile (8 = 2**3)
_LEVEL_SHIFT = TILE_HEIGHT.bit_length() - 1  # level >> shift: the tile level
# Byte offset of sublevel k's first hash in a blob: (256 - 2**(9-k)) * 32, for k = 1..7.
_NODES_OFFSET = tuple(
    (TILE_WIDTH - (2 * TILE_WIDTH >> sublevel)) * HASH_SIZE for sublevel in range(TILE_HEIGHT)
)

_NODE_STATE = hashlib.sha256(NODE_PREFIX)  # copied per node: cheaper than re-hashing the prefix
_PAIRS = struct.Struct(f"{2 * HASH_SIZE}s").iter_unpack  # 64-byte sibling pairs, cut in C


# --- hashing ------------------------------------------------------------------------------


def leaf_hash(data: bytes) -> bytes:
    """SHA-256(0x00 || data): the RFC 6962 hash of one log entry."""
    return hashlib.sha256(LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 || left || right): the RFC 6962 hash of an interior node."""
    state = _NODE_STATE.copy()
    state.update(left)
    state.update(right)
    return state.digest()


def _parents(hashes: bytes) -> bytes:
    """The level above an even number of concatenated sibling hashes.

    Adjacent siblings are already concatenated, so each parent is one hash of a 64-byte
    chunk. This loop is the hot path of every proof and append; copying a primed SHA-256
    state is the cheapest per-hash call CPython's hashlib offers, and ``struct`` cuts the
    chunks in C (~15% faster than slicing in the loop).
    """
    copy = _NODE_STATE.copy
    parents: list[bytes] = []
    append = parents.append
    for (pair,) in _PAIRS(hashes):
        state = copy()
        state.update(pair)
        append(state.digest())
    return b"".join(parents)


def _hash_up(hashes: bytes) -> bytes:
    """Root of a perfect subtree given its ``2**k`` concatenated bottom hashes."""
    while len(hashes) > HASH_SIZE:
        hashes = _parents(hashes)
    return hashes


def perfect_root(hashes: bytes) -> bytes:
    """Root of a perfect subtree given its ``2**k`` concatenated leaf hashes (k >= 0)."""
    return _hash_up(hashes)


def _tile_nodes(tile: bytes) -> tuple[bytes, bytes]:
    """(inner-nodes blob, root) of a full tile: the blob layout of ``ledger.merkle.tiles``."""
    levels = []
    level = _parents(tile)
    while len(level) > HASH_SIZE:
        levels.append(level)
        level = _parents(level)
    return b"".join(levels), level


@functools.lru_cache(maxsize=TILE_MEMO_TILES)
def _memo_nodes(tile: bytes) -> bytes:
    """The inner-nodes blob of a full tile of level >= 1, for readers that store none.

    A full tile never changes, and the memo is keyed by its content, so it is safe across
    logs in one process and can never change a result; it only spares the ~250 hashes a
    proof would spend per tile level on the few, hot upper-level tiles.
    """
    return _tile_nodes(tile)[0]


# --- tree geometry ------------------------------------------------------------------------


def _split(width: int) -> int:
    """The largest power of two strictly below ``width`` (≥ 2): RFC 9162's ``k``."""
    return 1 << ((width - 1).bit_length() - 1)


def _consistency_ranges(old: int, new: int) -> list[_Range]:
    """Leaf ranges of PROOF(old, D[0:new]) = SUBPROOF(old, D[0:new], true), 0 < old < new.

    RFC 9162 §2.1.4.1, unrolled: the recursion emits its deepest hash first.
    """
    ranges: list[_Range] = []
    start, end, whole = 0, new, True
    while old != end:
        k = _split(end - start)
        if old - start <= k:
            ranges.append((start + k, end))
            end = start + k
        else:
            ranges.append((start, start + k))
            start += k
            whole = False
    if not whole:
        ranges.append((start, end))
    ranges.reverse()
    return ranges


class _Plan:
    """The complete nodes a proof or root reads, grouped into the ranges it folds.

    A complete node at tree level ``8*L + k`` (``0 <= k < 8``) is addressed by its tile
    ``(L, N)``, its sublevel ``k`` and the offset in that tile of the first of the ``2**k``
    stored hashes under it. ``ends[i]`` is the position in ``nodes`` just past range
    ``i``'s nodes; ``keys`` are the tiles to read, ``inner`` those whose blobs could serve
    a node (``k > 0``).
    """

    __slots__ = ("ends", "inner", "keys", "nodes")

    def __init__(self) -> None:
        self.nodes: list[_Address | bytes] = []  # bytes: a range's hash, already known
        self.ends: list[int] = []
        self.keys: set[TileKey] = set()
        self.inner: set[TileKey] = set()

    def add_range(self, start: int, end: int) -> None:
        """Add the range of leaves ``[start, end)`` as its complete nodes, largest first.

        Every range a proof needs is either one perfect subtree or the right edge
        ``[a, n)`` with ``a`` aligned above the width, so the greedy aligned split yields
        the perfect subtrees of the RFC recursion, largest first.
        """
        nodes, keys, inner = self.nodes, self.keys, self.inner
        while start < end:
            level = (end - start).bit_length() - 1
            if start:
                level = min(level, (start & -start).bit_length() - 1)
            sublevel = level & _SUBLEVEL_MASK
            shift = level - sublevel
            key = (level >> _LEVEL_SHIFT, start >> (shift + TILE_HEIGHT))
            nodes.append((key, sublevel, (start >> shift) & TILE_MASK))
            keys.add(key)
            if sublevel:
                inner.add(key)
            start += 1 << level
        self.ends.append(len(nodes))

    def add_known(self, value: bytes) -> None:
        """A whole range whose hash the caller knows: nothing to read for it."""
        self.nodes.append(value)
        self.ends.append(len(self.nodes))


def _ranges_plan(ranges: Sequence[_Range], known: KnownRanges | None = None) -> _Plan:
    plan = _Plan()
    for start, end in ranges:
        value = None if known is None else known.get((start, end))
        if value is None:
            plan.add_range(start, end)
        else:
            plan.add_known(value)
    return plan


def inclusion_ranges(index: int, size: int) -> list[_Range]:
    """The leaf range each hash of PATH(index, D[0:size]) is the root of, in the
    proof's order (RFC 9162 §2.1.3.1; see _inclusion_plan)."""
    ranges = []
    for level in range((size - 1).bit_length()):
        start = ((index >> level) ^ 1) << level
        if start < size:
            ranges.append((start, min(size, start + (1 << level))))
    return ranges


def consistency_ranges(old: int, new: int) -> list[_Range]:
    """The leaf range each hash of PROOF(old, D[0:new]) is the root of, in the proof's
    order (0 < old < new)."""
    return _consistency_ranges(old, new)


def _inclusion_plan(index: int, size: int, known: KnownRanges | None = None) -> _Plan:
    """PATH(index, D[0:size]) (RFC 9162 §2.1.3.1), leaf's sibling first, as a plan.

    Bottom-up, level by level: the sibling of the subtree holding the leaf, clipped to the
    tree, if any of its leaves are in it. RFC 9162's ``MTH(D[k:n])`` for ``m < k`` is the
    clipped sibling at level ``log2(k)``; clipping happens at most once, as every sibling
    above it starts beyond the tree. Unclipped siblings are single nodes, planned inline.
    """
    plan = _Plan()
    nodes, ends, keys, inner = plan.nodes, plan.ends, plan.keys, plan.inner
    for level in range((size - 1).bit_length()):
        start = ((index >> level) ^ 1) << level
        if start >= size:
            continue
        value = None if known is None else known.get((start, min(size, start + (1 << level))))
        if value is not None:
            plan.add_known(value)
            continue
        if start + (1 << level) > size:
            plan.add_range(start, size)
            continue
        sublevel = level & _SUBLEVEL_MASK
        shift = level - sublevel
        key = (level >> _LEVEL_SHIFT, start >> (shift + TILE_HEIGHT))
        nodes.append((key, sublevel, (start >> shift) & TILE_MASK))
        keys.add(key)
        if sublevel:
            inner.add(key)
        ends.append(len(nodes))
    return plan


def _hash_plan(plan: _Plan, reader: TileReader) -> list[bytes]:
    """MTH of each planned range: one ``read_tiles``, at most one ``read_nodes``, hashing.

    Apart from the hashing on the right edge, its per-node work (a dict lookup and a
    slice) is what a proof costs, so it is one flat loop. A range's complete subtrees,
    largest (leftmost) first, hash as H(a, H(b, H(c, ...))): RFC 9162 splits a range at
    the largest power of two below its width.
    """
    if not plan.nodes:
        return []
    tiles = reader.read_tiles(sorted(plan.keys))
    full = sorted(key for key in plan.inner if len(tiles.get(key, b"")) == TILE_BYTES)
    blobs = reader.read_nodes(full) if full else {}
    offsets = _NODES_OFFSET
    hashes: list[bytes] = []
    append = hashes.append
    for node in plan.nodes:
        if isinstance(node, bytes):
            append(node)
            continue
        key, sublevel, offset = node
        if sublevel:
            blob = blobs.get(key)
            if blob is not None and len(blob) == NODES_BYTES:
                position = offsets[sublevel] + (offset >> sublevel) * HASH_SIZE
                append(blob[position : position + HASH_SIZE])
                continue
        append(_tile_node(tiles, key, sublevel, offset))
    out: list[bytes] = []
    copy, done = _NODE_STATE.copy, 0
    for end in plan.ends:
        acc = hashes[end - 1]
        for position in range(end - 2, done - 1, -1):
            state = copy()
            state.update(hashes[position])
            state.update(acc)
            acc = state.digest()
        out.append(acc)
        done = end
    return out


def _tile_node(tiles: Mapping[TileKey, bytes], key: TileKey, sublevel: int, offset: int) -> bytes:
    """The node over hashes ``offset .. offset + 2**sublevel - 1`` of tile ``key``, from
    the tile itself (no blob): a stored hash, a memoised upper tile, or hashed up."""
    start = offset * HASH_SIZE
    end = start + (HASH_SIZE << sublevel)
    data = tiles.get(key)
    if data is None or len(data) < end:
        raise NotFoundError(
            f"tile {key[0]}/{key[1]} is not stored with {end // HASH_SIZE} hashes:"
            " the tree size is beyond the stored log"
        )
    if not sublevel:
        return data[start:end]
    if len(data) == TILE_BYTES:
        if key[0]:
            first = _NODES_OFFSET[sublevel] + (offset >> sublevel) * HASH_SIZE
            return _memo_nodes(bytes(data))[first : first + HASH_SIZE]
        return _hash_up(data[start:end])
    # A partial tile on the right edge: every proof of the tree needs nodes of it, so
    # what was hashed up is kept, keyed by the tile's content like _memo_nodes.
    known = _memo_partial(bytes(data))
    node = known.get((sublevel, offset))
    if node is None:
        node = known[(sublevel, offset)] = _hash_up(data[start:end])
    return node


@functools.lru_cache(maxsize=PARTIAL_TILE_MEMO_TILES)
def _memo_partial(tile: bytes) -> dict[tuple[int, int], bytes]:
    """The nodes hashed up so far inside a partial tile, by (sublevel, offset), filled
    by _tile_node. Keyed by the tile's content, so a node here is always the hash of
    the hashes under it in that content (a tile that grows is another key)."""
    return {}


def _check_tree_size(size: int) -> None:
    if size < 0:
        raise MalformedError(f"tree size {size} is negative")
    if size > PROOF_TREE_SIZE_MAX:
        raise LimitError(f"tree size {size} exceeds PROOF_TREE_SIZE_MAX {PROOF_TREE_SIZE_MAX}")


def root(size: int, reader: TileReader) -> bytes:
    """MTH(D[0:size]) from the right-edge tiles of that size."""
    _check_tree_size(size)
    if size == 0:
        return EMPTY_ROOT
    return _hash_plan(_ranges_plan([(0, size)]), reader)[0]


def inclusion_proof(
    index: int, size: int, reader: TileReader, known: KnownRanges | None = None
) -> list[bytes]:
    """RFC 9162 §2.1.3.1 inclusion proof of leaf ``index`` in the tree of ``size`` leaves.
    A hash whose range (inclusion_ranges) is in ``known`` is taken from there, unread."""
    _check_tree_size(size)
    if not 0 <= index < size:
        raise MalformedError(f"leaf index {index} is outside a tree of size {size}")
    return _hash_plan(_inclusion_plan(index, size, known), reader)


def consistency_proof(
    old: int, new: int, reader: TileReader, known: KnownRanges | None = None
) -> list[bytes]:
    """RFC 9162 §2.1.4.1 consistency proof from size ``old`` to size ``new``.

    Empty when ``old`` is 0 or equal to ``new``: those trees are consistent by definition.
    A hash whose range (consistency_ranges) is in ``known`` is taken from there, unread.
    """
    _check_tree_size(new)
    if not 0 <= old <= new:
        raise MalformedError(f"old tree size {old} is not within 0..{new}")
    if old in (0, new):
        return []
    return _hash_plan(_ranges_plan(_consistency_ranges(old, new), known), reader)


# --- appending ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Integration:
    """The outcome of appending leaves: every tile created or extended, in full, and the
    inner-nodes blob (module docstring) of every tile that became full in this append."""

    size: int
    root: bytes
    tiles: dict[TileKey, bytes]
    nodes: dict[TileKey, bytes]


def _check_frontier(size: int, frontier: Mapping[TileKey, bytes]) -> None:
    """The writer's view of the right edge must match its tree size exactly."""
    expected = frontier_tile_keys(size)
    invariant(
        set(frontier) == set(expected),
        f"frontier tiles {sorted(frontier)} do not match tree size {size}: expected {expected}",
    )
    for level, index in expected:
        width = (size >> (TILE_HEIGHT * level)) & TILE_MASK
        invariant(
            len(frontier[(level, index)]) == width * HASH_SIZE,
            f"frontier tile {level}/{index} holds {len(frontier[(level, index)])} bytes,"
            f" a tree of size {size} needs {width * HASH_SIZE}",
        )


def _extend_level(
    level: int,
    count: int,
    partial: bytes,
    added: bytes,
    out: dict[TileKey, bytes],
    nodes: dict[TileKey, bytes],
) -> list[bytes]:
    """Append hashes to tile level ``level`` (``count`` stored before); return the hashes
    of the tiles this filled, which are the new stored hashes of the level above, and put
    the inner nodes met on the way up into ``nodes``."""
    first_tile = count >> TILE_HEIGHT
    hashes = partial + added
    filled: list[bytes] = []
    for offset in range(0, len(hashes), TILE_BYTES):
        chunk = hashes[offset : offset + TILE_BYTES]
        key = (level, first_tile + offset // TILE_BYTES)
        out[key] = chunk
        if len(chunk) == TILE_BYTES:
            nodes[key], tile_root = _tile_nodes(chunk)
            filled.append(tile_root)
    return filled


def integrate(
    size: int, frontier: Mapping[TileKey, bytes], leaf_hashes: Sequence[bytes]
) -> Integration:
    """Append ``leaf_hashes`` to a tree of ``size`` leaves whose frontier tiles (keys
    ``frontier_tile_keys(size)``, current contents) are ``frontier``.

    Work is linear in the batch plus one partial tile per level, so a batch of thousands
    costs about one hash per leaf and a single leaf costs at most a few hundred hashes.
    The tree only grows: every returned tile that was on the frontier starts with its old
    contents, so storage may check that it only ever widens a tile.
    """
    invariant(size >= 0, f"tree size {size} is negative")
    _check_frontier(size, frontier)
    invariant(
        all(len(h) == HASH_SIZE for h in leaf_hashes),
        f"every leaf hash must be {HASH_SIZE} bytes",
    )
    new_size = size + len(leaf_hashes)
    tiles: dict[TileKey, bytes] = {}
    nodes: dict[TileKey, bytes] = {}
    level, count, added = 0, size, list(leaf_hashes)
    while added:
        partial = frontier[(level, count >> TILE_HEIGHT)] if count & TILE_MASK else b""
        added = _extend_level(level, count, partial, b"".join(added), tiles, nodes)
        count >>= TILE_HEIGHT
        level += 1
    invariant(
        all(tiles[key].startswith(frontier[key]) for key in frontier if key in tiles),
        "tiles are only ever extended: a stored prefix never changes",
    )
    # The root's nodes all lie in the frontier tiles of the new size, so no blob is needed.
    new_root = _hash_plan(_ranges_plan([(0, new_size)]), MemoryTiles({**frontier, **tiles}))
    return Integration(
        size=new_size,
        root=new_root[0] if new_root else EMPTY_ROOT,
        tiles=tiles,
        nodes=nodes,
    )
