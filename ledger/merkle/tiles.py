"""C2SP tlog-tiles storage layout: tile keys and paths, the inner-nodes blobs of full
tiles, entry bundles, and the readers proofs and roots fetch them through. No hashing.

Tile ``(L, N)`` holds up to 256 consecutive node hashes of tree level ``8*L`` (level 0 =
leaf hashes), nodes ``N*256 .. N*256+width-1``, 32 bytes each. A node exists once the
subtree it roots is complete, so a partial tile (width < 256) is a prefix of the full tile
it becomes; a tree of any earlier size can therefore be read from the newest tiles.

Every *full* tile also has an **inner-nodes blob** (``Integration.nodes``, served by
``TileReader.read_nodes``): the hashes of tree levels ``8*L + 1 .. 8*L + 7`` of the
perfect subtree whose 256 bottom hashes the tile holds, produced once, when the tile
becomes full, by the hashing ``integrate`` does anyway. Storage format, exactly
``NODES_BYTES`` = 254 * 32 = 8,128 bytes, no header, levels bottom-up, each left to right::

    sublevel k    hashes    first hash (index in the blob)    byte offset
        1           128              0                              0
        2            64            128                          4,096
        3            32            192                          6,144
        4            16            224                          7,168
        5             8            240                          7,680
        6             4            248                          7,936
        7             2            252                          8,064

i.e. hash ``j`` of sublevel ``k`` (the node at tree level ``8*L + k``, index
``N * 2**(8-k) + j``) is the 32 bytes at ``(256 - 2**(9-k) + j) * 32``; sublevel ``k``
holds ``SHA-256(0x01 || h[2j] || h[2j+1])`` over sublevel ``k-1`` (sublevel 0 = the tile
itself). The tile's root (sublevel 8) is *not* in the blob: it is already stored, once, as
a hash of tile ``(L+1, N // 256)``. Partial tiles have no blob. A blob is a pure function
of its full tile, so it never changes either.

Paths: ``parse_tile_path`` returns level ``ENTRIES_LEVEL`` (-1) for ``tile/entries/...``.
Bad paths, bundles and tree sizes raise ``MalformedError`` (``LimitError`` for a bundle
beyond its size limits).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

from schemas.errors import LimitError, MalformedError
from schemas.limits import ENTRY_BUNDLE_SIZE, HASH_SIZE, TILE_HEIGHT, TILE_WIDTH

TileKey = tuple[int, int]
"""(tile level L, tile index N)."""

TILE_BYTES = TILE_WIDTH * HASH_SIZE  # a full tile: 8,192 bytes
TILE_MASK = TILE_WIDTH - 1
TILE_LEVEL_MAX = 63  # C2SP tlog-tiles: <L> is between 0 and 63
ENTRIES_LEVEL = -1  # parse_tile_path's level for an entry bundle (tile/entries/...)
ENTRY_LENGTH_MAX = 0xFFFF  # entry bundles prefix each entry with a big-endian uint16
ENTRY_LENGTH_BYTES = 2
PATH_GROUP = 1000  # tile indexes are written as 3-digit groups: x001/x234/067
PATH_GROUPS_MAX = 7  # enough 3-digit groups for any index below 2**64
NODES_HASHES = TILE_WIDTH - 2  # sublevels 1..7 of a full tile: 128 + 64 + ... + 2
NODES_BYTES = NODES_HASHES * HASH_SIZE  # an inner-nodes blob: 8,128 bytes
_PATH_RE = re.compile(
    r"tile/(entries|0|[1-9][0-9]?)/((?:x[0-9]{3}/){0,"
    + str(PATH_GROUPS_MAX - 1)
    + r"}[0-9]{3})(?:\.p/([1-9][0-9]{0,2}))?"
)


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
    """Storage of tiles and of the inner-nodes blobs of full tiles. A proof or root makes
    one ``read_tiles`` call, then at most one ``read_nodes`` call (database round trips)."""

    def read_tiles(self, keys: Sequence[TileKey]) -> Mapping[TileKey, bytes]:
        """The current (widest stored) hashes of each requested tile; missing ones absent."""
        ...

    def read_nodes(self, keys: Sequence[TileKey]) -> Mapping[TileKey, bytes]:
        """The inner-nodes blob (``NODES_BYTES``, see the module docstring) of each requested full
        tile that has one; others absent. Returning none is correct, only slower: the
        nodes are then hashed up from the tiles."""
        ...


class MemoryTiles:
    """A ``TileReader`` over dicts, for tests, benchmarks and the offline auditor."""

    def __init__(
        self,
        tiles: Mapping[TileKey, bytes] | None = None,
        nodes: Mapping[TileKey, bytes] | None = None,
    ) -> None:
        self.tiles: dict[TileKey, bytes] = dict(tiles or {})
        self.nodes: dict[TileKey, bytes] = dict(nodes or {})

    def update(
        self, tiles: Mapping[TileKey, bytes], nodes: Mapping[TileKey, bytes] | None = None
    ) -> None:
        """Store new or widened tiles and new blobs (e.g. ``Integration.tiles`` and
        ``Integration.nodes``), replacing old contents."""
        self.tiles.update(tiles)
        if nodes:
            self.nodes.update(nodes)

    def read_tiles(self, keys: Sequence[TileKey]) -> Mapping[TileKey, bytes]:
        tiles = self.tiles
        return {key: tiles[key] for key in keys if key in tiles}

    def read_nodes(self, keys: Sequence[TileKey]) -> Mapping[TileKey, bytes]:
        nodes = self.nodes
        return {key: nodes[key] for key in keys if key in nodes}


class CachingReader:
    """Remembers what another ``TileReader`` returned, for many proofs of one tree (an
    endorsement node proving a thousand targets against one checkpoint). Stored hashes
    never change and tiles only grow, so a remembered tile serves every tree size up to
    the one it was read for; use one CachingReader per tree size, then drop it."""

    def __init__(self, reader: TileReader) -> None:
        self._reader = reader
        self._tiles: dict[TileKey, bytes | None] = {}
        self._nodes: dict[TileKey, bytes | None] = {}

    @staticmethod
    def _through(
        cache: dict[TileKey, bytes | None],
        read: Callable[[Sequence[TileKey]], Mapping[TileKey, bytes]],
        keys: Sequence[TileKey],
    ) -> Mapping[TileKey, bytes]:
        missing = [key for key in keys if key not in cache]
        if missing:
            found = read(missing)
            for key in missing:
                cache[key] = found.get(key)
        return {key: value for key in keys if (value := cache[key]) is not None}

    def read_tiles(self, keys: Sequence[TileKey]) -> Mapping[TileKey, bytes]:
        return self._through(self._tiles, self._reader.read_tiles, keys)

    def read_nodes(self, keys: Sequence[TileKey]) -> Mapping[TileKey, bytes]:
        return self._through(self._nodes, self._reader.read_nodes, keys)


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
