"""The Merkle tree of the log: RFC 6962 / RFC 9162 math over C2SP tlog-tiles storage.

Pure functions, no I/O. The only stored hashes are the *tiles* of C2SP tlog-tiles:
tile ``(L, N)`` holds up to 256 consecutive node hashes of tree level ``8*L`` (level 0 =
leaf hashes), nodes ``N*256 .. N*256+width-1``, 32 bytes each. A node exists once the
subtree it roots is complete, so a partial tile (width < 256) is a prefix of the full tile
it becomes; a tree of any earlier size can therefore be read from the newest tiles.

Every other node hash is derived, never stored:

* a complete node at level ``8*L + k`` (``0 < k < 8``) is hashed up from the ``2**k``
  stored level-``8*L`` hashes under it, which always sit inside one tile (≤ 127 hashes);
* the hash of the incomplete subtree on the right edge is folded from the complete
  subtrees it decomposes into (the binary digits of its width).

Proofs and roots first compute every node they need, then fetch all the tiles holding
them with ONE ``TileReader.read_tiles`` call (one database round trip), then hash. A proof
therefore touches O(log n) tiles and at most ~255 hashes per tile level, and never rehashes
the log.

Errors: bad arguments to the provers raise ``MalformedError`` (``LimitError`` beyond
``PROOF_TREE_SIZE_MAX``); tiles absent or narrower than the requested tree size raise
``NotFoundError`` (the size is beyond what is stored); the verifiers raise
``VerificationError`` for anything that does not verify, bad arguments included;
``integrate`` checks the writer's invariants with ``invariant()`` (a broken one halts it).

Paths: ``parse_tile_path`` returns level ``ENTRIES_LEVEL`` (-1) for ``tile/entries/...``.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from schemas.errors import (
    LimitError,
    MalformedError,
    NotFoundError,
    VerificationError,
    invariant,
)
from schemas.limits import (
    ENTRY_BUNDLE_SIZE,
    HASH_SIZE,
    PROOF_TREE_SIZE_MAX,
    TILE_HEIGHT,
    TILE_WIDTH,
)

TileKey = tuple[int, int]
"""(tile level L, tile index N)."""

LEAF_PREFIX = b"\x00"  # RFC 6962 §2.1 domain separation: leaves and nodes never collide
NODE_PREFIX = b"\x01"
EMPTY_ROOT: bytes = hashlib.sha256(b"").digest()  # MTH({}) per RFC 9162 §2.1.1

TILE_BYTES = TILE_WIDTH * HASH_SIZE  # a full tile: 8,192 bytes
TILE_MASK = TILE_WIDTH - 1
TILE_LEVEL_MAX = 63  # C2SP tlog-tiles: <L> is between 0 and 63
ENTRIES_LEVEL = -1  # parse_tile_path's level for an entry bundle (tile/entries/...)
ENTRY_LENGTH_MAX = 0xFFFF  # entry bundles prefix each entry with a big-endian uint16
ENTRY_LENGTH_BYTES = 2
PATH_GROUP = 1000  # tile indexes are written as 3-digit groups: x001/x234/067
PATH_GROUPS_MAX = 7  # enough 3-digit groups for any index below 2**64
# Full tiles of level >= 1 whose inner levels are memoised (see _inner_levels): ~16 MB at
# most, and 1,024 level-1 tiles already span 67 M entries.
TILE_MEMO_TILES = 1024

_NODE_STATE = hashlib.sha256(NODE_PREFIX)  # copied per node: cheaper than re-hashing the prefix
_PATH_RE = re.compile(
    r"tile/(entries|0|[1-9][0-9]?)/((?:x[0-9]{3}/){0,"
    + str(PATH_GROUPS_MAX - 1)
    + r"}[0-9]{3})(?:\.p/([1-9][0-9]{0,2}))?"
)


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
    slice. This loop is the hot path of every proof and append; copying a primed
    SHA-256 state is the cheapest per-hash call CPython's hashlib offers.
    """
    copy = _NODE_STATE.copy
    parents = []
    for start in range(0, len(hashes), 2 * HASH_SIZE):
        state = copy()
        state.update(hashes[start : start + 2 * HASH_SIZE])
        parents.append(state.digest())
    return b"".join(parents)


def _hash_up(hashes: bytes) -> bytes:
    """Root of a perfect subtree given its ``2**k`` concatenated bottom hashes."""
    while len(hashes) > HASH_SIZE:
        hashes = _parents(hashes)
    return hashes


@functools.lru_cache(maxsize=TILE_MEMO_TILES)
def _inner_levels(tile: bytes) -> tuple[bytes, ...]:
    """Every level of the subtree a full tile spans: (tile, 128 parents, ..., its root).

    A full tile never changes, and the memo is keyed by its content, so it is safe across
    logs in one process and can never change a result; it only spares the ~250 hashes a
    proof spends per tile level on the few, hot upper-level tiles.
    """
    levels = [tile]
    while len(levels[-1]) > HASH_SIZE:
        levels.append(_parents(levels[-1]))
    return tuple(levels)


def _fold_right(hashes: Sequence[bytes]) -> bytes:
    """MTH of a range from its complete subtrees, largest (leftmost) first.

    RFC 9162 splits a range at the largest power of two below its width, so a range
    decomposed into perfect subtrees of decreasing size hashes as H(a, H(b, H(c, ...))).
    """
    acc = hashes[-1]
    for left in reversed(hashes[:-1]):
        acc = node_hash(left, acc)
    return acc


# --- tree geometry ------------------------------------------------------------------------


def _split(width: int) -> int:
    """The largest power of two strictly below ``width`` (≥ 2): RFC 9162's ``k``."""
    return 1 << ((width - 1).bit_length() - 1)


def _range_nodes(start: int, end: int) -> list[TileKey]:
    """The complete nodes ``(level, index)`` whose leaves make up ``[start, end)``.

    Every range a proof needs is either one perfect subtree or the right edge ``[a, n)``
    with ``a`` aligned above the width, so the greedy aligned split yields the perfect
    subtrees of the RFC recursion, largest first.
    """
    nodes: list[TileKey] = []
    while start < end:
        level = (end - start).bit_length() - 1
        if start:
            level = min(level, (start & -start).bit_length() - 1)
        nodes.append((level, start >> level))
        start += 1 << level
    return nodes


def _tile_of(level: int, index: int) -> TileKey:
    """The tile holding the stored hashes a node at (level, index) is derived from."""
    tile_level, sublevel = divmod(level, TILE_HEIGHT)
    return tile_level, (index << sublevel) >> TILE_HEIGHT


def _inclusion_ranges(index: int, size: int) -> list[TileKey]:
    """Leaf ranges of PATH(index, D[0:size]) (RFC 9162 §2.1.3.1), leaf's sibling first."""
    ranges: list[TileKey] = []
    start, end = 0, size
    while end - start > 1:
        k = _split(end - start)
        if index < start + k:
            ranges.append((start + k, end))
            end = start + k
        else:
            ranges.append((start, start + k))
            start += k
    ranges.reverse()
    return ranges


def _consistency_ranges(old: int, new: int) -> list[TileKey]:
    """Leaf ranges of PROOF(old, D[0:new]) = SUBPROOF(old, D[0:new], true), 0 < old < new.

    RFC 9162 §2.1.4.1, unrolled: the recursion emits its deepest hash first.
    """
    ranges: list[TileKey] = []
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


def frontier_tile_keys(size: int) -> list[TileKey]:
    """Keys of the partial tiles on the right edge of a tree of ``size`` leaves.

    At level L the partial tile has ``floor(size / 256**L) mod 256`` hashes and is absent
    when that is 0 (C2SP tlog-tiles). These are the only tiles an append can extend, and
    exactly the tiles the root of that size is computed from.
    """
    if size < 0:
        raise MalformedError(f"tree size {size} is negative")
    keys: list[TileKey] = []
    level, count = 0, size
    while count:
        if count & TILE_MASK:
            keys.append((level, count >> TILE_HEIGHT))
        count >>= TILE_HEIGHT
        level += 1
    return keys


# --- reading stored hashes ----------------------------------------------------------------


class TileReader(Protocol):
    """Storage of tiles. One call per proof or root, so a database does one round trip."""

    def read_tiles(self, keys: Sequence[TileKey]) -> Mapping[TileKey, bytes]:
        """The current (widest stored) hashes of each requested tile; missing ones absent."""
        ...


class MemoryTiles:
    """A ``TileReader`` over a dict, for tests, benchmarks and the offline auditor."""

    def __init__(self, tiles: Mapping[TileKey, bytes] | None = None) -> None:
        self.tiles: dict[TileKey, bytes] = dict(tiles or {})

    def update(self, tiles: Mapping[TileKey, bytes]) -> None:
        """Store new or widened tiles (e.g. ``Integration.tiles``), replacing old contents."""
        self.tiles.update(tiles)

    def read_tiles(self, keys: Sequence[TileKey]) -> Mapping[TileKey, bytes]:
        return {key: self.tiles[key] for key in keys if key in self.tiles}


class _StoredNodes:
    """Node hashes derived from one batch of tiles (see the module docstring)."""

    def __init__(self, tiles: Mapping[TileKey, bytes]) -> None:
        self._tiles = tiles

    def node(self, level: int, index: int) -> bytes:
        tile_level, sublevel = divmod(level, TILE_HEIGHT)
        tile_index, offset = divmod(index << sublevel, TILE_WIDTH)
        start = offset * HASH_SIZE
        end = start + (HASH_SIZE << sublevel)
        data = self._tiles.get((tile_level, tile_index))
        if data is None or len(data) < end:
            raise NotFoundError(
                f"tile {tile_level}/{tile_index} is not stored with {end // HASH_SIZE} hashes:"
                " the tree size is beyond the stored log"
            )
        if tile_level and len(data) == TILE_BYTES:
            position = (offset >> sublevel) * HASH_SIZE
            return _inner_levels(data)[sublevel][position : position + HASH_SIZE]
        return _hash_up(data[start:end])

    def range_hash(self, nodes: Sequence[TileKey]) -> bytes:
        return _fold_right([self.node(level, index) for level, index in nodes])


def _hash_ranges(ranges: Sequence[TileKey], reader: TileReader) -> list[bytes]:
    """MTH of each leaf range, reading every tile involved in a single batch."""
    per_range = [_range_nodes(start, end) for start, end in ranges]
    keys = sorted({_tile_of(level, index) for nodes in per_range for level, index in nodes})
    stored = _StoredNodes(reader.read_tiles(keys) if keys else {})
    return [stored.range_hash(nodes) for nodes in per_range]


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
    return _hash_ranges([(0, size)], reader)[0]


def inclusion_proof(index: int, size: int, reader: TileReader) -> list[bytes]:
    """RFC 9162 §2.1.3.1 inclusion proof of leaf ``index`` in the tree of ``size`` leaves."""
    _check_tree_size(size)
    if not 0 <= index < size:
        raise MalformedError(f"leaf index {index} is outside a tree of size {size}")
    return _hash_ranges(_inclusion_ranges(index, size), reader)


def consistency_proof(old: int, new: int, reader: TileReader) -> list[bytes]:
    """RFC 9162 §2.1.4.1 consistency proof from size ``old`` to size ``new``.

    Empty when ``old`` is 0 or equal to ``new``: those trees are consistent by definition.
    """
    _check_tree_size(new)
    if not 0 <= old <= new:
        raise MalformedError(f"old tree size {old} is not within 0..{new}")
    if old in (0, new):
        return []
    return _hash_ranges(_consistency_ranges(old, new), reader)


# --- appending ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Integration:
    """The outcome of appending leaves: every tile created or extended, in full."""

    size: int
    root: bytes
    tiles: dict[TileKey, bytes]


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
    level: int, count: int, partial: bytes, added: bytes, out: dict[TileKey, bytes]
) -> list[bytes]:
    """Append hashes to tile level ``level`` (``count`` stored before); return the hashes
    of the tiles this filled, which are the new stored hashes of the level above."""
    first_tile = count >> TILE_HEIGHT
    hashes = partial + added
    filled: list[bytes] = []
    for offset in range(0, len(hashes), TILE_BYTES):
        chunk = hashes[offset : offset + TILE_BYTES]
        out[(level, first_tile + offset // TILE_BYTES)] = chunk
        if len(chunk) == TILE_BYTES:
            # Upper tiles go through the memo: same hashes, and the next proofs find them.
            filled.append(_inner_levels(chunk)[-1] if level else _hash_up(chunk))
    return filled


def integrate(
    size: int, frontier: Mapping[TileKey, bytes], leaf_hashes: Sequence[bytes]
) -> Integration:
    """Append ``leaf_hashes`` to a tree of ``size`` leaves whose frontier tiles (keys
    ``frontier_tile_keys(size)``, current contents) are ``frontier``.

    Work is linear in the batch plus one partial tile per level, so a batch of thousands
    costs about one hash per leaf and a single leaf costs at most a few hundred hashes.
    """
    invariant(size >= 0, f"tree size {size} is negative")
    _check_frontier(size, frontier)
    invariant(
        all(len(h) == HASH_SIZE for h in leaf_hashes),
        f"every leaf hash must be {HASH_SIZE} bytes",
    )
    new_size = size + len(leaf_hashes)
    tiles: dict[TileKey, bytes] = {}
    level, count, added = 0, size, list(leaf_hashes)
    while added:
        partial = frontier[(level, count >> TILE_HEIGHT)] if count & TILE_MASK else b""
        added = _extend_level(level, count, partial, b"".join(added), tiles)
        count >>= TILE_HEIGHT
        level += 1
    new_root = EMPTY_ROOT
    if new_size:
        new_root = _StoredNodes({**frontier, **tiles}).range_hash(_range_nodes(0, new_size))
    return Integration(size=new_size, root=new_root, tiles=tiles)


# --- verifying ----------------------------------------------------------------------------


def _check_hash(value: bytes, what: str) -> None:
    if not isinstance(value, bytes) or len(value) != HASH_SIZE:
        raise VerificationError(f"{what} is not a {HASH_SIZE}-byte hash")


def verify_inclusion(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Check an inclusion proof by RFC 9162 §2.1.3.2; raise ``VerificationError`` if not."""
    _check_hash(leaf_hash, "leaf hash")
    _check_hash(root, "root")
    for position, element in enumerate(proof):
        _check_hash(element, f"proof element {position}")
    if not 0 <= index < size:
        raise VerificationError(f"leaf index {index} is outside a tree of size {size}")
    fn, sn, r = index, size - 1, leaf_hash
    for element in proof:
        if sn == 0:
            raise VerificationError("inclusion proof is longer than the tree is deep")
        if fn & 1 or fn == sn:
            r = node_hash(element, r)
            while fn and not fn & 1:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, element)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise VerificationError("inclusion proof is shorter than the tree is deep")
    if not hmac.compare_digest(r, root):
        raise VerificationError(f"inclusion proof of leaf {index} does not lead to the root")


def _check_trivial_consistency(
    old: int, new: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> None:
    """Sizes 0 and old == new need an empty proof; their roots are fixed by definition."""
    if proof:
        raise VerificationError(f"consistency proof from {old} to {new} must be empty")
    if old == 0 and not hmac.compare_digest(old_root, EMPTY_ROOT):
        raise VerificationError("the root of the empty tree is SHA-256 of the empty string")
    if old == new and not hmac.compare_digest(old_root, new_root):
        raise VerificationError(f"two different roots for the same tree size {new}")


def verify_consistency(
    old: int, new: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> None:
    """Check a consistency proof by RFC 9162 §2.1.4.2; raise ``VerificationError`` if not."""
    _check_hash(old_root, "old root")
    _check_hash(new_root, "new root")
    for position, element in enumerate(proof):
        _check_hash(element, f"proof element {position}")
    if not 0 <= old <= new:
        raise VerificationError(f"old tree size {old} is not within 0..{new}")
    if old in (0, new):
        _check_trivial_consistency(old, new, old_root, new_root, proof)
        return
    if not proof:
        raise VerificationError(f"consistency proof from {old} to {new} is empty")
    path = [old_root, *proof] if old & (old - 1) == 0 else list(proof)
    fn, sn = old - 1, new - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for element in path[1:]:
        if sn == 0:
            raise VerificationError("consistency proof is longer than the tree is deep")
        if fn & 1 or fn == sn:
            fr = node_hash(element, fr)
            sr = node_hash(element, sr)
            while fn and not fn & 1:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, element)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise VerificationError("consistency proof is shorter than the tree is deep")
    if not (hmac.compare_digest(fr, old_root) and hmac.compare_digest(sr, new_root)):
        raise VerificationError(f"consistency proof from {old} to {new} does not match the roots")


# --- C2SP tlog-tiles paths and entry bundles ----------------------------------------------


def _index_path(index: int) -> str:
    """``1234067`` → ``x001/x234/067``: keeps directories and files apart on a filesystem."""
    if index < 0:
        raise MalformedError(f"tile index {index} is negative")
    groups = []
    while True:
        index, group = divmod(index, PATH_GROUP)
        groups.append(group)
        if not index:
            break
    if len(groups) > PATH_GROUPS_MAX:
        raise MalformedError("tile index too large")
    groups.reverse()
    return "/".join([f"x{g:03d}" for g in groups[:-1]] + [f"{groups[-1]:03d}"])


def _width_suffix(width: int) -> str:
    if not 1 <= width <= TILE_WIDTH:
        raise MalformedError(f"tile width {width} is not within 1..{TILE_WIDTH}")
    return "" if width == TILE_WIDTH else f".p/{width}"


def tile_path(level: int, index: int, width: int) -> str:
    """``tile/<L>/<N>[.p/<W>]`` for a hash tile of ``width`` hashes (256 = full)."""
    if not 0 <= level <= TILE_LEVEL_MAX:
        raise MalformedError(f"tile level {level} is not within 0..{TILE_LEVEL_MAX}")
    return f"tile/{level}/{_index_path(index)}{_width_suffix(width)}"


def entries_path(index: int, width: int) -> str:
    """``tile/entries/<N>[.p/<W>]`` for the entry bundle of level-0 tile ``index``."""
    return f"tile/entries/{_index_path(index)}{_width_suffix(width)}"


def parse_tile_path(path: str) -> tuple[int, int, int]:
    """(level, index, width) of a canonical tile or entry-bundle path.

    Entry bundles get level ``ENTRIES_LEVEL`` (-1); a full tile has width 256. One leading
    ``/`` is accepted (HTTP paths); anything not byte-for-byte canonical is rejected, so
    one resource never has two names.
    """
    relative = path.removeprefix("/")
    match = _PATH_RE.fullmatch(relative)
    if match is None:
        raise MalformedError(f"not a tlog-tiles path: {path!r}")
    level_text, index_text, width_text = match.groups()
    level = ENTRIES_LEVEL if level_text == "entries" else int(level_text)
    index = int(index_text.replace("x", "").replace("/", ""))
    width = TILE_WIDTH if width_text is None else int(width_text)
    # Re-encoding rejects level > 63, width 256 written as ".p/256", "x000/" groups...
    canonical = (
        entries_path(index, width) if level == ENTRIES_LEVEL else tile_path(level, index, width)
    )
    if canonical != relative:
        raise MalformedError(f"not a canonical tlog-tiles path: {path!r}")
    return level, index, width


def entry_bundle(leaves: Sequence[bytes]) -> bytes:
    """Entries concatenated, each prefixed by its big-endian uint16 length (tlog-tiles)."""
    if len(leaves) > ENTRY_BUNDLE_SIZE:
        raise LimitError(f"an entry bundle holds at most {ENTRY_BUNDLE_SIZE} entries")
    parts = []
    for position, leaf in enumerate(leaves):
        if len(leaf) > ENTRY_LENGTH_MAX:
            raise LimitError(
                f"entry {position} is {len(leaf)} bytes; a bundle entry is at most"
                f" {ENTRY_LENGTH_MAX}"
            )
        parts.append(len(leaf).to_bytes(ENTRY_LENGTH_BYTES, "big"))
        parts.append(leaf)
    return b"".join(parts)


def parse_entry_bundle(data: bytes) -> list[bytes]:
    """The entries of a bundle; a truncated or oversized bundle is ``MalformedError``."""
    entries: list[bytes] = []
    offset = 0
    while offset < len(data):
        if len(entries) == ENTRY_BUNDLE_SIZE:
            raise MalformedError(f"entry bundle holds more than {ENTRY_BUNDLE_SIZE} entries")
        header_end = offset + ENTRY_LENGTH_BYTES
        if header_end > len(data):
            raise MalformedError("entry bundle ends inside a length prefix")
        length = int.from_bytes(data[offset:header_end], "big")
        offset = header_end + length
        if offset > len(data):
            raise MalformedError("entry bundle ends inside an entry")
        entries.append(data[header_end:offset])
    return entries
