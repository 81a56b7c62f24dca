"""Tests of ledger.merkle: RFC 6962 vectors, a naive RFC reference, tiles, paths, bundles."""

from __future__ import annotations

import functools
import json
import random
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.merkle import (
    EMPTY_ROOT,
    ENTRIES_LEVEL,
    NODES_BYTES,
    Integration,
    MemoryTiles,
    consistency_proof,
    entries_path,
    entry_bundle,
    frontier_tile_keys,
    inclusion_proof,
    integrate,
    leaf_hash,
    node_hash,
    parse_entry_bundle,
    parse_tile_path,
    root,
    tile_path,
    tree,
    verify_consistency,
    verify_inclusion,
)
from schemas.errors import (
    InvariantError,
    LimitError,
    MalformedError,
    NotFoundError,
    VerificationError,
)
from schemas.limits import HASH_SIZE, PROOF_TREE_SIZE_MAX, TILE_WIDTH

VECTORS = json.loads(
    (Path(__file__).parent.parent / "fixtures" / "rfc6962_vectors.json").read_text()
)
SMALL = 64  # every size, index and (old, new) pair up to this is checked exhaustively
BIG = 65_536 + 300  # just past the level-2 tile boundary (256**2 leaves)


def h(hex_text: str) -> bytes:
    return bytes.fromhex(hex_text)


def synthetic_leaves(count: int, start: int = 0) -> list[bytes]:
    return [leaf_hash(i.to_bytes(8, "big")) for i in range(start, start + count)]


# --- a naive reference, straight from RFC 9162 §2.1 -----------------------------------------


class Reference:
    """MTH, PATH, PROOF and SUBPROOF as written in RFC 9162 §2.1.1, 2.1.3.1 and 2.1.4.1,
    over leaf hashes; MTH is memoised by range so large trees stay affordable."""

    def __init__(self, leaf_hashes: Sequence[bytes]) -> None:
        self.leaves = list(leaf_hashes)
        self.memo: dict[tuple[int, int], bytes] = {}

    @staticmethod
    def k(n: int) -> int:
        """The largest power of two smaller than n (n > 1)."""
        k = 1
        while k * 2 < n:
            k *= 2
        return k

    def mth(self, start: int, end: int) -> bytes:
        n = end - start
        if n == 0:
            return EMPTY_ROOT
        if n == 1:
            return self.leaves[start]
        if (start, end) not in self.memo:
            k = self.k(n)
            self.memo[(start, end)] = node_hash(
                self.mth(start, start + k), self.mth(start + k, end)
            )
        return self.memo[(start, end)]

    def path(self, m: int, start: int, end: int) -> list[bytes]:
        n = end - start
        if n == 1:
            return []
        k = self.k(n)
        if m < k:
            return [*self.path(m, start, start + k), self.mth(start + k, end)]
        return [*self.path(m - k, start + k, end), self.mth(start, start + k)]

    def subproof(self, m: int, start: int, end: int, b: bool) -> list[bytes]:
        n = end - start
        if m == n:
            return [] if b else [self.mth(start, end)]
        k = self.k(n)
        if m <= k:
            return [*self.subproof(m, start, start + k, b), self.mth(start + k, end)]
        return [*self.subproof(m - k, start + k, end, False), self.mth(start, start + k)]

    def inclusion(self, index: int, size: int) -> list[bytes]:
        return self.path(index, 0, size)

    def consistency(self, old: int, new: int) -> list[bytes]:
        if old in (0, new):
            return []
        return self.subproof(old, 0, new, True)


# --- building trees -------------------------------------------------------------------------


def grow(tiles: MemoryTiles, size: int, hashes: Sequence[bytes]) -> Integration:
    """One append as the storage layer does it: read the frontier, integrate, store."""
    result = integrate(size, tiles.read_tiles(frontier_tile_keys(size)), hashes)
    tiles.update(result.tiles, result.nodes)
    return result


def build(hashes: Sequence[bytes], chunks: Sequence[int]) -> tuple[MemoryTiles, list[Integration]]:
    tiles, size, steps = MemoryTiles(), 0, []
    for chunk in chunks:
        step = grow(tiles, size, hashes[size : size + chunk])
        size = step.size
        steps.append(step)
    assert size == len(hashes)
    return tiles, steps


def chunks_of(total: int, sizes: Sequence[int]) -> list[int]:
    out, done, i = [], 0, 0
    while done < total:
        take = min(sizes[i % len(sizes)], total - done)
        out.append(take)
        done += take
        i += 1
    return out


class CountingReader:
    def __init__(self, inner: MemoryTiles) -> None:
        self.inner = inner
        self.calls: list[list[tuple[int, int]]] = []
        self.node_calls: list[list[tuple[int, int]]] = []
        self.order: list[str] = []

    def read_tiles(self, keys: Sequence[tuple[int, int]]) -> Mapping[tuple[int, int], bytes]:
        self.calls.append(list(keys))
        self.order.append("tiles")
        return self.inner.read_tiles(keys)

    def read_nodes(self, keys: Sequence[tuple[int, int]]) -> Mapping[tuple[int, int], bytes]:
        self.node_calls.append(list(keys))
        self.order.append("nodes")
        return self.inner.read_nodes(keys)


class NoNodes:
    """A reader that stores no inner-nodes blobs, e.g. the auditor rebuilding from leaves."""

    def __init__(self, inner: MemoryTiles) -> None:
        self.inner = inner

    def read_tiles(self, keys: Sequence[tuple[int, int]]) -> Mapping[tuple[int, int], bytes]:
        return self.inner.read_tiles(keys)

    def read_nodes(self, keys: Sequence[tuple[int, int]]) -> Mapping[tuple[int, int], bytes]:
        return {}


def naive_blob(tile: bytes) -> bytes:
    """The inner-nodes blob by the letter of the layout: sublevels 1..7, bottom-up."""
    level = [tile[i : i + HASH_SIZE] for i in range(0, len(tile), HASH_SIZE)]
    out: list[bytes] = []
    while len(level) > 2:
        level = [node_hash(level[i], level[i + 1]) for i in range(0, len(level), 2)]
        out += level
    return b"".join(out)


def full_keys(tiles: Mapping[tuple[int, int], bytes]) -> set[tuple[int, int]]:
    return {key for key, data in tiles.items() if len(data) == TILE_WIDTH * HASH_SIZE}


SMALL_LEAVES = synthetic_leaves(SMALL)
SMALL_REF = Reference(SMALL_LEAVES)
SMALL_TILES, _ = build(SMALL_LEAVES, [1] * SMALL)


# --- tampering ------------------------------------------------------------------------------


def flipped(proof: Sequence[bytes], position: int) -> list[bytes]:
    out = list(proof)
    out[position] = bytes([out[position][0] ^ 0x08]) + out[position][1:]
    return out


def assert_inclusion_tamper_fails(leaf: bytes, index: int, size: int, proof: list[bytes]) -> None:
    good_root = SMALL_REF.mth(0, size) if size <= SMALL else None
    assert good_root is not None
    other = b"\x5a" * HASH_SIZE
    probes: list[tuple[bytes, int, int, list[bytes], bytes]] = [
        (leaf, index - 1, size, proof, good_root),
        (leaf, index + 1, size, proof, good_root),
        (leaf, index ^ 2, size, proof, good_root),
        (leaf, index, size * 2, proof, good_root),
        (leaf, index, size // 2, proof, good_root),
        (other, index, size, proof, good_root),
        (leaf, index, size, proof, EMPTY_ROOT),
        (leaf, index, size, proof, other),
        (leaf, index, size, [*proof, good_root], good_root),
        (leaf, index, size, [good_root, *proof], good_root),
    ]
    for wrong_size in (size - 1, size + 1):
        if 0 < wrong_size <= SMALL:
            probes.append((leaf, index, wrong_size, proof, SMALL_REF.mth(0, wrong_size)))
    if proof:
        probes.append((leaf, index, size, proof[:-1], good_root))
        probes.append((leaf, index, size, proof[1:], good_root))
        probes += [(leaf, index, size, flipped(proof, i), good_root) for i in range(len(proof))]
    for p_leaf, p_index, p_size, p_proof, p_root in probes:
        with pytest.raises(VerificationError):
            verify_inclusion(p_leaf, p_index, p_size, p_proof, p_root)
    with pytest.raises(VerificationError):
        verify_inclusion(leaf, index, size, [*proof, b""], good_root)  # trailing garbage


def assert_consistency_tamper_fails(old: int, new: int, proof: list[bytes]) -> None:
    r1, r2 = SMALL_REF.mth(0, old), SMALL_REF.mth(0, new)
    other = b"\xa5" * HASH_SIZE
    probes = [
        (old - 1, new, r1, r2, proof),
        (old + 1, new, r1, r2, proof),
        (old ^ 2, new, r1, r2, proof),
        (old, new * 2, r1, r2, proof),
        (old, new // 2, r1, r2, proof),
        (old, new, other, r2, proof),
        (old, new, r1, other, proof),
        (old, new, r2, r1, proof),
        (old, new, r1, r2, []),
        (old, new, r1, r2, [*proof, r1]),
        (old, new, r1, r2, [*proof, r2]),
        (old, new, r1, r2, [r1, *proof]),
        (old, new, r1, r2, [r2, *proof]),
        (old, new, r1, r2, [proof[0], *proof]),
        (old, new, r1, r2, proof[:-1]),
    ]
    probes += [(old, new, r1, r2, flipped(proof, i)) for i in range(len(proof))]
    for wrong_new in (new - 1, new + 1):
        if old < wrong_new <= SMALL:
            probes.append((old, wrong_new, r1, SMALL_REF.mth(0, wrong_new), proof))
    for p_old, p_new, p_r1, p_r2, p_proof in probes:
        with pytest.raises(VerificationError):
            verify_consistency(p_old, p_new, p_r1, p_r2, p_proof)


# --- RFC 6962 vectors -----------------------------------------------------------------------


def test_vector_leaf_hashes_and_empty_root() -> None:
    for data, expected in zip(VECTORS["leaves"], VECTORS["leaf_hashes"], strict=True):
        assert leaf_hash(h(data)) == h(expected)
    assert h(VECTORS["roots"][0]) == EMPTY_ROOT


def vector_tiles() -> MemoryTiles:
    tiles, steps = build([leaf_hash(h(d)) for d in VECTORS["leaves"]], [1] * 8)
    assert [s.root for s in steps] == [h(r) for r in VECTORS["roots"][1:]]
    return tiles


def test_vector_roots() -> None:
    tiles = vector_tiles()
    for size, expected in enumerate(VECTORS["roots"]):
        assert root(size, tiles) == h(expected)
    assert integrate(0, {}, []).root == EMPTY_ROOT


def test_vector_inclusion_proofs() -> None:
    tiles = vector_tiles()
    for vector in VECTORS["inclusion"]:
        index, size, expected = vector["index"], vector["size"], [h(p) for p in vector["proof"]]
        assert inclusion_proof(index, size, tiles) == expected
        leaf = h(VECTORS["leaf_hashes"][index])
        verify_inclusion(leaf, index, size, expected, h(VECTORS["roots"][size]))


def test_vector_consistency_proofs() -> None:
    tiles = vector_tiles()
    for vector in VECTORS["consistency"]:
        old, new, expected = vector["old"], vector["new"], [h(p) for p in vector["proof"]]
        assert consistency_proof(old, new, tiles) == expected
        verify_consistency(old, new, h(VECTORS["roots"][old]), h(VECTORS["roots"][new]), expected)


# --- exhaustive comparison with the reference -----------------------------------------------


def test_roots_match_reference_small() -> None:
    for size in range(SMALL + 1):
        assert root(size, SMALL_TILES) == SMALL_REF.mth(0, size)


def test_inclusion_matches_reference_and_tamper_fails() -> None:
    for size in range(1, SMALL + 1):
        for index in range(size):
            proof = inclusion_proof(index, size, SMALL_TILES)
            assert proof == SMALL_REF.inclusion(index, size), (index, size)
            verify_inclusion(SMALL_LEAVES[index], index, size, proof, SMALL_REF.mth(0, size))
            assert_inclusion_tamper_fails(SMALL_LEAVES[index], index, size, proof)


def test_consistency_matches_reference_and_tamper_fails() -> None:
    for new in range(SMALL + 1):
        for old in range(new + 1):
            proof = consistency_proof(old, new, SMALL_TILES)
            assert proof == SMALL_REF.consistency(old, new), (old, new)
            verify_consistency(old, new, SMALL_REF.mth(0, old), SMALL_REF.mth(0, new), proof)
            if proof:
                assert_consistency_tamper_fails(old, new, proof)


def test_trivial_consistency_cases() -> None:
    """Sizes 0 and equal sizes: empty proof, fixed roots (after transparency-dev's tests)."""
    r1, r2 = SMALL_REF.mth(0, 1), SMALL_REF.mth(0, 2)
    verify_consistency(0, 0, EMPTY_ROOT, EMPTY_ROOT, [])
    verify_consistency(0, 5, EMPTY_ROOT, r2, [])
    verify_consistency(1, 1, r1, r1, [])
    bad = [
        (0, 0, EMPTY_ROOT, EMPTY_ROOT, [EMPTY_ROOT]),
        (0, 1, r1, r1, []),  # the empty tree has only one root
        (1, 1, r1, r2, []),
        (1, 1, r1, r1, [r1]),
        (1, 0, r1, r2, []),
        (2, 1, r2, r1, []),
        (1, 2, r1, r2, []),
        (-1, 2, r1, r2, [r1]),
        (1, 2, r1[:16], r2, [SMALL_LEAVES[1]]),
    ]
    for old, new, root1, root2, proof in bad:
        with pytest.raises(VerificationError):
            verify_consistency(old, new, root1, root2, proof)


def test_inclusion_verifier_edge_cases() -> None:
    leaf = SMALL_LEAVES[0]
    verify_inclusion(leaf, 0, 1, [], leaf)
    for index, size in ((0, 0), (1, 0), (2, 1), (-1, 1)):
        with pytest.raises(VerificationError):
            verify_inclusion(leaf, index, size, [], leaf)
    with pytest.raises(VerificationError):
        verify_inclusion(leaf[:31], 0, 1, [], leaf)
    with pytest.raises(VerificationError):
        verify_inclusion(leaf, 0, 1, [], b"")


# --- across tile boundaries -----------------------------------------------------------------


def check_against_reference(
    tiles: MemoryTiles, ref: Reference, pairs: Sequence[tuple[int, int]]
) -> None:
    for a, b in pairs:
        proof = inclusion_proof(a, b, tiles)
        assert proof == ref.inclusion(a, b), ("inclusion", a, b)
        verify_inclusion(ref.leaves[a], a, b, proof, ref.mth(0, b))
        cproof = consistency_proof(a, b, tiles)
        assert cproof == ref.consistency(a, b), ("consistency", a, b)
        verify_consistency(a, b, ref.mth(0, a), ref.mth(0, b), cproof)


def boundary_sizes(limit: int) -> list[int]:
    edges = [1, 2, 255, 256, 257, 511, 512, 513, 768, 65_535, 65_536, 65_537, limit]
    return sorted({e + d for e in edges for d in (-1, 0, 1) if 0 < e + d <= limit})


def test_proofs_across_level1_tiles() -> None:
    total = 1_200
    leaves = synthetic_leaves(total)
    ref = Reference(leaves)
    tiles, _ = build(leaves, chunks_of(total, [1, 7, 300, 3, 255, 256, 2]))
    rng = random.Random(6962)
    sizes = boundary_sizes(total)
    pairs = [(a, b) for b in sizes for a in sizes if a < b]
    for _ in range(300):
        a, b = sorted(rng.sample(range(total + 1), 2))
        pairs.append((a, b))
    check_against_reference(tiles, ref, pairs)
    for size in sizes:
        assert root(size, tiles) == ref.mth(0, size)


def test_big_tree_past_65536() -> None:
    """A tree just past 256**2 leaves, built in uneven chunks, equals one big batch."""
    leaves = synthetic_leaves(BIG)
    rng = random.Random(65_536)
    chunked, steps = build(leaves, chunks_of(BIG, [rng.randint(1, 5_000) for _ in range(40)]))
    whole, (single,) = build(leaves, [BIG])
    assert chunked.tiles == whole.tiles
    assert chunked.nodes == whole.nodes == single.nodes
    assert set(whole.nodes) == full_keys(whole.tiles)
    assert (1, 0) in whole.nodes and (2, 0) not in whole.nodes
    for key in ((1, 0), (0, 0), (0, 255)):
        assert whole.nodes[key] == naive_blob(whole.tiles[key])
    assert steps[-1].root == single.root
    assert frontier_tile_keys(BIG) == [(0, BIG // 256), (1, 1), (2, 0)]
    assert len(whole.tiles[(2, 0)]) == HASH_SIZE  # the one complete 65536-leaf subtree
    assert len(whole.tiles[(1, 0)]) == TILE_WIDTH * HASH_SIZE
    ref = Reference(leaves)
    sizes = [s for s in boundary_sizes(BIG) if s > 60_000] + [256, 1_000]
    for size in sizes:
        assert root(size, chunked) == ref.mth(0, size)
    for step in steps:
        assert root(step.size, chunked) == step.root
    pairs = [(a, b) for b in sizes for a in sizes if a < b]
    pairs += [(rng.randrange(b), b) for b in sizes for _ in range(3)]
    check_against_reference(chunked, ref, pairs)
    # Around 65,536, proofs from the blobs (level-0 and the one full level-1 tile) equal
    # proofs hashed up from the tiles alone.
    bare = NoNodes(chunked)
    near = [s for s in boundary_sizes(BIG) if s > 65_000]
    for a, b in pairs + [(rng.randrange(b), b) for b in near for _ in range(20)]:
        assert inclusion_proof(a, b, chunked) == inclusion_proof(a, b, bare), (a, b)
        assert consistency_proof(a, b, chunked) == consistency_proof(a, b, bare), (a, b)
    for size in near:
        assert root(size, chunked) == root(size, bare) == ref.mth(0, size)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=300), min_size=1, max_size=12))
def test_batch_splitting_is_irrelevant(chunks: list[int]) -> None:
    total = sum(chunks)
    leaves = HYPOTHESIS_LEAVES[:total]
    tiles, steps = build(leaves, chunks)
    assert tiles.tiles == one_by_one().tiles_at(total)
    whole, (single,) = build(leaves, [total])
    assert tiles.tiles == whole.tiles
    # Blobs: exactly for the tiles each append completes, each once, as a direct hash-up.
    seen: set[tuple[int, int]] = set()
    for step in steps:
        assert set(step.nodes) == full_keys(step.tiles)
        assert seen.isdisjoint(step.nodes)
        seen |= set(step.nodes)
        for key, blob in step.nodes.items():
            assert blob == naive_blob(step.tiles[key])
    assert seen == full_keys(tiles.tiles) == set(single.nodes)
    final_nodes = one_by_one().final.nodes
    assert tiles.nodes == whole.nodes == {key: final_nodes[key] for key in seen}
    assert steps[-1].root == single.root == one_by_one().roots[total]
    for step in steps:
        assert root(step.size, tiles) == step.root == one_by_one().roots[step.size]


def changed_tiles(size: int) -> set[tuple[int, int]]:
    """Tiles a one-leaf append reaching ``size`` must write: one per level it completes."""
    keys, level, count = set(), 0, size
    while count:
        keys.add((level, (count - 1) >> 8))
        if count % 256:
            break
        count >>= 8
        level += 1
    return keys


class OneByOne:
    """The tree grown one leaf at a time, with the full tile set at every size."""

    def __init__(self, leaves: Sequence[bytes]) -> None:
        self.roots = [EMPTY_ROOT]
        self.history: list[dict[tuple[int, int], bytes]] = [{}]
        tiles = MemoryTiles()
        for size in range(len(leaves)):
            step = grow(tiles, size, leaves[size : size + 1])
            assert set(step.tiles) == changed_tiles(size + 1)
            assert set(step.nodes) == full_keys(step.tiles)
            self.roots.append(step.root)
            self.history.append(step.tiles)
        self.final = tiles

    def tiles_at(self, size: int) -> dict[tuple[int, int], bytes]:
        out: dict[tuple[int, int], bytes] = {}
        for changed in self.history[: size + 1]:
            out.update(changed)
        return out


HYPOTHESIS_LEAVES = synthetic_leaves(12 * 300)


@functools.cache
def one_by_one() -> OneByOne:
    return OneByOne(HYPOTHESIS_LEAVES)


def test_one_by_one_matches_reference() -> None:
    ref = Reference(HYPOTHESIS_LEAVES)
    for size in (0, 1, 255, 256, 257, 1_000, len(HYPOTHESIS_LEAVES)):
        assert one_by_one().roots[size] == ref.mth(0, size)


# --- storage contract -----------------------------------------------------------------------


def test_frontier_tile_keys_spec_examples() -> None:
    # C2SP tlog-tiles: "a tree of size 70,000 will be represented by 273 full level 0 tiles,
    # one partial level 0 tile of width 112, one full level 1 tile, one partial level 1 tile
    # of width 17, and one partial level 2 tile of width 1."
    assert frontier_tile_keys(70_000) == [(0, 273), (1, 1), (2, 0)]
    assert 70_000 % 256 == 112 and (70_000 >> 8) % 256 == 17
    # "a tree of size 256 will be represented by a full level 0 tile and a partial level 1
    # tile of width 1."
    assert frontier_tile_keys(256) == [(1, 0)]
    assert frontier_tile_keys(0) == []
    assert frontier_tile_keys(1) == [(0, 0)]


def test_integration_tiles_are_full_contents() -> None:
    tiles = MemoryTiles()
    first = grow(tiles, 0, SMALL_LEAVES[:10])
    assert first.tiles == {(0, 0): b"".join(SMALL_LEAVES[:10])}
    second = grow(tiles, 10, SMALL_LEAVES[10:12])
    assert second.tiles == {(0, 0): b"".join(SMALL_LEAVES[:12])}
    assert second.size == 12 and second.root == SMALL_REF.mth(0, 12)
    empty = integrate(12, tiles.read_tiles(frontier_tile_keys(12)), [])
    assert empty.tiles == {} and empty.size == 12 and empty.root == second.root


def test_integrate_checks_invariants() -> None:
    tiles = MemoryTiles()
    grow(tiles, 0, SMALL_LEAVES[:10])
    frontier = dict(tiles.read_tiles(frontier_tile_keys(10)))
    with pytest.raises(InvariantError):
        integrate(9, frontier, [SMALL_LEAVES[10]])  # tile wider than the size
    with pytest.raises(InvariantError):
        integrate(11, frontier, [SMALL_LEAVES[10]])  # tile narrower than the size
    with pytest.raises(InvariantError):
        integrate(10, {}, [SMALL_LEAVES[10]])  # frontier missing
    with pytest.raises(InvariantError):
        integrate(10, {**frontier, (1, 0): SMALL_LEAVES[0]}, [SMALL_LEAVES[10]])
    with pytest.raises(InvariantError):
        integrate(10, frontier, [b"short"])
    with pytest.raises(InvariantError):
        integrate(-1, {}, [])


def test_one_batched_read_of_few_tiles() -> None:
    tiles, _ = build(synthetic_leaves(BIG), [BIG])
    for action in (
        lambda r: inclusion_proof(12_345, BIG, r),
        lambda r: consistency_proof(65_535, BIG, r),
        lambda r: consistency_proof(300, BIG - 7, r),
        lambda r: root(BIG - 1, r),
    ):
        reader = CountingReader(tiles)
        action(reader)
        assert len(reader.calls) == 1
        assert len(reader.calls[0]) <= 6  # O(log n) tiles: a few per tile level
        # At most one blob read, after the tiles, and only for full tiles it read.
        assert reader.order in (["tiles"], ["tiles", "nodes"])
        for keys in reader.node_calls:
            assert keys and set(keys) <= set(reader.calls[0]) & full_keys(tiles.tiles)
    reader = CountingReader(tiles)
    inclusion_proof(12_345, BIG, reader)
    assert reader.node_calls == [[(0, 12_345 // 256), (1, 0)]]
    reader = CountingReader(tiles)
    root(BIG - 1, reader)  # the root's nodes all lie in partial tiles: no blob to read
    assert reader.order == ["tiles"]
    small, _ = build(SMALL_LEAVES, [SMALL])
    reader = CountingReader(small)
    inclusion_proof(3, SMALL, reader)
    consistency_proof(5, SMALL, reader)
    assert reader.node_calls == []  # no full tile at all


# --- inner-nodes blobs -----------------------------------------------------------------------

NODES_TOTAL = 600  # past two full level-0 tiles and into a third
NODES_LEAVES = synthetic_leaves(NODES_TOTAL)


@functools.cache
def nodes_tree() -> MemoryTiles:
    tiles, _ = build(NODES_LEAVES, [1] * NODES_TOTAL)
    return tiles


def test_blob_layout_is_the_documented_storage_format() -> None:
    """Hash j of sublevel k of tile (L, N) is at (256 - 2**(9-k) + j) * 32: pinned here,
    since stored blobs outlive this code."""
    tiles = nodes_tree()
    ref = Reference(NODES_LEAVES)
    assert NODES_BYTES == 254 * HASH_SIZE == 8_128
    assert set(tiles.nodes) == {(0, 0), (0, 1)}
    for tile_index in (0, 1):
        blob = tiles.nodes[(0, tile_index)]
        assert len(blob) == NODES_BYTES
        for k in range(1, 8):
            for j in range(TILE_WIDTH >> k):
                start = tile_index * TILE_WIDTH + (j << k)
                at = (TILE_WIDTH - 2 ** (9 - k) + j) * HASH_SIZE
                assert blob[at : at + HASH_SIZE] == ref.mth(start, start + (1 << k)), (k, j)


def test_proofs_from_blobs_equal_proofs_without_blobs(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every size up to 600; at each, a rotating fifth of the indexes and old sizes (so
    every index and old size is covered at ~120 sizes), and all of them at the sizes around
    the tile boundaries. Exhaustive would be 360 k proof pairs, ~100 s."""
    # Without blobs, each proof hashes up to ~250 nodes in full tiles; a content-keyed memo
    # (a pure function) keeps this affordable and cannot change a result.
    monkeypatch.setattr(tree, "_hash_up", functools.cache(tree._hash_up))
    tiles = nodes_tree()
    bare = NoNodes(tiles)
    ref = Reference(NODES_LEAVES)
    exhaustive = {255, 256, 257, 300, 384, 511, 512, 513, 599, 600}
    for size in range(NODES_TOTAL + 1):
        assert root(size, tiles) == root(size, bare) == ref.mth(0, size)
        every = 1 if size in exhaustive else 5
        for index in range(size % every, size, every):
            proof = inclusion_proof(index, size, tiles)
            assert proof == inclusion_proof(index, size, bare), (index, size)
            if size in exhaustive:
                assert proof == ref.inclusion(index, size)
        for old in range(size % every, size + 1, every):
            proof = consistency_proof(old, size, tiles)
            assert proof == consistency_proof(old, size, bare), (old, size)
            if size in exhaustive:
                assert proof == ref.consistency(old, size)


def corrupted(tiles: MemoryTiles, key: tuple[int, int], at: int) -> MemoryTiles:
    blob = bytearray(tiles.nodes[key])
    blob[at] ^= 0x40
    return MemoryTiles(tiles.tiles, {**tiles.nodes, key: bytes(blob)})


def test_corrupt_blob_yields_proofs_that_fail_verification() -> None:
    """Proofs trust stored blobs like stored tiles; the verifiers catch a corrupt one."""
    tiles = nodes_tree()
    ref = Reference(NODES_LEAVES)
    index, size = 300, NODES_TOTAL  # in tile (0, 1): its siblings at levels 1..7 are blobbed
    position = index - TILE_WIDTH
    for k in range(1, 8):
        sibling = (position >> k) ^ 1
        bad = corrupted(tiles, (0, 1), (TILE_WIDTH - 2 ** (9 - k) + sibling) * HASH_SIZE + 5)
        proof = inclusion_proof(index, size, bad)
        assert proof != inclusion_proof(index, size, tiles)
        with pytest.raises(VerificationError):
            verify_inclusion(NODES_LEAVES[index], index, size, proof, ref.mth(0, size))
    # Consistency 300 -> 600 reads leaves [256, 300) from (0, 1)'s blob: 32 + 8 + 4.
    bad = corrupted(tiles, (0, 1), (TILE_WIDTH - 2 ** (9 - 5)) * HASH_SIZE)
    proof = consistency_proof(300, size, bad)
    assert proof != consistency_proof(300, size, tiles)
    with pytest.raises(VerificationError):
        verify_consistency(300, size, ref.mth(0, 300), ref.mth(0, size), proof)
    # A blob of the wrong length is not used: the node is hashed up from the tile.
    short = MemoryTiles(tiles.tiles, {**tiles.nodes, (0, 1): tiles.nodes[(0, 1)][:-1]})
    assert inclusion_proof(index, size, short) == ref.inclusion(index, size)


def test_memory_tiles_store_and_serve_blobs() -> None:
    tiles = MemoryTiles()
    step = grow(tiles, 0, NODES_LEAVES[: TILE_WIDTH + 3])
    assert set(step.nodes) == {(0, 0)} and tiles.nodes == step.nodes
    assert tiles.read_nodes([(0, 0), (0, 1), (1, 0)]) == {(0, 0): step.nodes[(0, 0)]}
    tiles.update({(0, 1): step.tiles[(0, 1)]})  # tiles only: blobs untouched
    assert tiles.nodes == step.nodes
    assert MemoryTiles(tiles.tiles).read_nodes([(0, 0)]) == {}
    assert integrate(0, {}, []).nodes == {}


def test_prover_argument_errors() -> None:
    with pytest.raises(MalformedError):
        inclusion_proof(5, 5, SMALL_TILES)
    with pytest.raises(MalformedError):
        inclusion_proof(-1, 5, SMALL_TILES)
    with pytest.raises(MalformedError):
        consistency_proof(6, 5, SMALL_TILES)
    with pytest.raises(MalformedError):
        consistency_proof(-1, 5, SMALL_TILES)
    with pytest.raises(MalformedError):
        root(-1, SMALL_TILES)
    with pytest.raises(LimitError):
        root(PROOF_TREE_SIZE_MAX + 1, SMALL_TILES)
    with pytest.raises(NotFoundError):
        inclusion_proof(0, SMALL + 3, SMALL_TILES)  # beyond the stored log
    with pytest.raises(NotFoundError):
        root(300, SMALL_TILES)
    assert consistency_proof(0, 5, SMALL_TILES) == []
    assert consistency_proof(5, 5, SMALL_TILES) == []
    assert root(0, MemoryTiles()) == EMPTY_ROOT


# --- C2SP paths and entry bundles -----------------------------------------------------------


def test_tile_paths_spec_examples() -> None:
    # C2SP tlog-tiles: "index 1234067 will be encoded as x001/x234/067"
    assert tile_path(0, 1_234_067, 256) == "tile/0/x001/x234/067"
    assert tile_path(1, 1_234_067, 5) == "tile/1/x001/x234/067.p/5"
    assert tile_path(0, 0, 256) == "tile/0/000"
    assert tile_path(2, 5, 1) == "tile/2/005.p/1"
    assert tile_path(63, 1000, 255) == "tile/63/x001/000.p/255"
    assert entries_path(273, 112) == "tile/entries/273.p/112"
    assert entries_path(1_234_067, 256) == "tile/entries/x001/x234/067"


def test_parse_tile_paths() -> None:
    assert parse_tile_path("tile/0/x001/x234/067") == (0, 1_234_067, 256)
    assert parse_tile_path("/tile/1/x001/x234/067.p/5") == (1, 1_234_067, 5)
    assert parse_tile_path("tile/entries/273.p/112") == (ENTRIES_LEVEL, 273, 112)
    for level, index, width in ((0, 0, 1), (17, 999_999_999, 200), (63, 2**63, 256)):
        assert parse_tile_path(tile_path(level, index, width)) == (level, index, width)
    bad = [
        "tile/0/1",
        "tile/0/x000/001",
        "tile/00/001",
        "tile/64/001",
        "tile/0/001.p/256",
        "tile/0/001.p/0",
        "tile/0/001.p/05",
        "tile/0/001/002",
        "tile/-1/001",
        "tiles/0/001",
        "tile/entries/001.p/",
        "tile/0/001.p/5/",
        "",
    ]
    for path in bad:
        with pytest.raises(MalformedError):
            parse_tile_path(path)
    for args in ((64, 0, 1), (-1, 0, 1), (0, -1, 1), (0, 0, 0), (0, 0, 257)):
        with pytest.raises(MalformedError):
            tile_path(*args)


def test_entry_bundles() -> None:
    leaves = [b"", b"a", b"x" * 300, bytes(range(256)) * 255 + b"\x00" * 255]
    bundle = entry_bundle(leaves)
    assert bundle[:2] == b"\x00\x00" and bundle[2:5] == b"\x00\x01a"
    assert parse_entry_bundle(bundle) == leaves
    assert parse_entry_bundle(b"") == []
    with pytest.raises(LimitError):
        entry_bundle([b"x" * 65_536])
    with pytest.raises(LimitError):
        entry_bundle([b""] * (TILE_WIDTH + 1))
    for broken in (b"\x00", b"\x00\x02a", entry_bundle([b""] * TILE_WIDTH) + b"\x00\x00"):
        with pytest.raises(MalformedError):
            parse_entry_bundle(broken)
