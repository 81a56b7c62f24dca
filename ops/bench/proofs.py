"""Proof latency benchmark: our tile-backed proofs against pymerkle 7, in one run.

DESIGN §9 asks for inclusion and consistency proofs under 1 ms p50 in the library at 10 M
entries. This bench builds the C2SP tiles of ``entries`` synthetic leaves with
``ledger.merkle.integrate`` (in sequencer-sized batches) and keeps them in ``MemoryTiles``
together with the inner-nodes blobs of the full tiles (``Integration.nodes``), as the
database stores them. It then times ``inclusion_proof`` and ``consistency_proof`` for
random indexes and (old, new) pairs at that size, each call including its one
``read_tiles``, its ``read_nodes`` and all hashing (the right edge's partial tiles have no
blobs and are hashed up on every call).

The baseline is pymerkle 7's ``InmemoryTree`` over the same leaves. Its default hasher
already follows RFC 6962 (0x00 leaf / 0x01 node prefixes, ``disable_security=False``), so
its roots equal ours and its inclusion path is ours preceded by the leaf hash; its
consistency proofs use a format of its own (leaf-level paths with masks), not RFC 9162's,
so they are only checked to verify against our roots. pymerkle keeps every node in memory
and reads proof hashes off the node graph; we read stored tiles and blobs.

Measured cold and fairly: there is no warm-up pass, the memo of ``ledger.merkle`` (upper
tiles' inner nodes, for readers without blobs) is emptied before timing and its hits while
timing are reported (0: blobs, not the memo, serve the full tiles), and both sides are
timed interleaved, sample by sample, so a noisy machine slows both alike. Our proofs are
re-checked by the verifiers and against pymerkle only after timing.

Building pymerkle at 1 M entries takes ~15 s on the 2-core reference machine (under the
~60 s budget); ``pymerkle_entries`` builds the baseline at a smaller size if needed (its
samples are then drawn at that size, and the result says so). By default it is built at
``entries`` up to BENCH_PYMERKLE_ENTRIES_MAX: pymerkle keeps every leaf and node as Python
objects, so at 10 M it would not fit beside the run. Its proofs at a smaller size are
shallower, so a smaller baseline is faster, never slower, than it would be at ``entries``.

With ``--db URL`` (or ``sqlite``), the tiles, blobs and leaves are bulk-loaded into the
``merkle_tiles``, ``merkle_tile_nodes`` and ``log_entries`` tables of a fresh SQLite file
or PostgreSQL schema (with one ``checkpoints`` row), and each timed proof is served as
``Ledger.inclusion`` / ``Ledger.consistency`` serve one (issue 11: proofs from the
database): a connection from the ledger's proof pool (``ledger.app.proof_pool``: on
PostgreSQL no ping on checkout), then ``ledger.app.serve_inclusion`` (the newest
checkpoint row, which must still be the remembered verified one, the tiles and the
blobs, in one query; the leaf's hash is its level-0 tile's) /
``ledger.app.serve_consistency`` (the same), the very functions the ledger calls, with
the hashing and the check against the roots before the proof leaves.
Like the ledger, the bench keeps one ``VerifiedRanges`` across its proofs: empty when
timing starts (a freshly started server), filled only by proofs that verified, it spares
later proofs the tiles above level 0 (``known_ranges`` reports how many it held at the
end). What is not timed is what the ledger does once per checkpoint or tree size and then
remembers: verifying the checkpoint's signature, and proving an older size's root
consistent with it (the bench knows the roots it built).

Garbage collection is off while building and timing (both sides alike): pymerkle's node
graph has millions of cyclic objects whose collections would otherwise land in its p99.
"""

from __future__ import annotations

import contextlib
import gc
import random
import time
from collections.abc import Callable, Sequence
from typing import Any

import pymerkle
from sqlalchemy import Engine

from ledger import store
from ledger.app import VerifiedRanges, proof_pool, serve_consistency, serve_inclusion
from ledger.merkle import (
    MemoryTiles,
    TileReader,
    consistency_proof,
    frontier_tile_keys,
    inclusion_proof,
    integrate,
    leaf_hash,
    root,
    verify_consistency,
    verify_inclusion,
)
from ledger.merkle import tree as merkle_tree
from ledger.store import DbTiles, StoredCheckpoint, StoredEntry
from ledger.tables import Checkpoint, LogEntry, MerkleTile, MerkleTileNodes
from ops.bench.append import _fresh_database
from ops.bench.machine import machine
from schemas.errors import VerificationError, invariant
from schemas.limits import BATCH_SIZE_MAX, BENCH_PYMERKLE_ENTRIES_MAX, BENCH_VERIFY_SAMPLES

NS_PER_US = 1_000
PERCENTILES = (50, 99)
LOAD_CHUNK_ROWS = 5_000  # tile rows per bulk insert

Pair = tuple[int, int]  # (index, size) or (old, new)


def _leaf(index: int) -> bytes:
    """A synthetic leaf about the size of a small log record."""
    return b'{"bench":"proofs","seq":%d,"pad":"alliance-ledger"}' % index


def _percentile_us(samples_ns: Sequence[int], percentile: int) -> float:
    """Nearest-rank percentile, in microseconds."""
    ordered = sorted(samples_ns)
    rank = max(1, -(-percentile * len(ordered) // 100))
    return round(ordered[rank - 1] / NS_PER_US, 1)


def _time_interleaved(
    ours: Callable[[int, int], object],
    our_args: Sequence[Pair],
    theirs: Callable[[int, int], object],
    their_args: Sequence[Pair],
) -> tuple[list[int], list[int]]:
    """Latency of each call, in nanoseconds, alternating the two sides (and which of them
    goes first) sample by sample."""
    our_ns: list[int] = []
    their_ns: list[int] = []
    clock = time.perf_counter_ns
    for position, (mine, other) in enumerate(zip(our_args, their_args, strict=True)):
        order = ((ours, mine, our_ns), (theirs, other, their_ns))
        for call, (a, b), out in order if position % 2 == 0 else reversed(order):
            started = clock()
            call(a, b)
            out.append(clock() - started)
    return our_ns, their_ns


def _build_tiles(hashes: Sequence[bytes]) -> MemoryTiles:
    """Append like the sequencer does: frontier in, changed tiles and new blobs out."""
    tiles, size = MemoryTiles(), 0
    for start in range(0, len(hashes), BATCH_SIZE_MAX):
        frontier = tiles.read_tiles(frontier_tile_keys(size))
        step = integrate(size, frontier, hashes[start : start + BATCH_SIZE_MAX])
        tiles.update(step.tiles, step.nodes)
        size = step.size
    return tiles


def _samples(seed: int, size: int, count: int) -> tuple[list[Pair], list[Pair]]:
    """(index, size) inclusion arguments and (old, new) consistency pairs, 1 <= old < new,
    reproducible from ``seed`` (sampling only, so a non-cryptographic generator is right)."""
    rng = random.Random(seed)  # noqa: S311
    inclusions = [(rng.randrange(size), size) for _ in range(count)]
    pairs = []
    for _ in range(count):
        old = rng.randrange(1, size)
        pairs.append((old, rng.randrange(old + 1, size + 1)))
    return inclusions, pairs


def _verify_ours(
    tiles: TileReader, hashes: Sequence[bytes], inclusions: Sequence[Pair], pairs: Sequence[Pair]
) -> int:
    """Run the verifiers over a sample of our proofs; raises if any fails."""
    checked = 0
    for index, size in inclusions[:BENCH_VERIFY_SAMPLES]:
        proof = inclusion_proof(index, size, tiles)
        verify_inclusion(hashes[index], index, size, proof, root(size, tiles))
        checked += 1
    for old, new in pairs[:BENCH_VERIFY_SAMPLES]:
        proof = consistency_proof(old, new, tiles)
        verify_consistency(old, new, root(old, tiles), root(new, tiles), proof)
        checked += 1
    return checked


def _build_pymerkle(leaves: Sequence[bytes]) -> Any:
    """pymerkle's RFC 6962 mode is its default: SHA-256 with 0x00/0x01 prefixes."""
    tree = pymerkle.InmemoryTree(algorithm="sha256", disable_security=False)
    append = tree.append_entry
    for leaf in leaves:
        append(leaf)
    return tree


def _cross_check(
    tree: Any, tiles: MemoryTiles, inclusions: Sequence[Pair], pairs: Sequence[Pair]
) -> None:
    """Same roots; pymerkle's inclusion path is [leaf hash] + ours; its consistency proofs
    (its own format) verify against our roots."""
    for index, size in inclusions[:BENCH_VERIFY_SAMPLES]:
        if tree.get_root(size) != root(size, tiles):
            raise VerificationError(f"pymerkle and ledger.merkle disagree on the root of {size}")
        if list(tree.prove_inclusion(index + 1, size).path[1:]) != inclusion_proof(
            index, size, tiles
        ):
            raise VerificationError(f"pymerkle's inclusion path of {index} in {size} differs")
    for old, new in pairs[:BENCH_VERIFY_SAMPLES]:
        proof = tree.prove_consistency(old, new)
        try:
            pymerkle.verify_consistency(root(old, tiles), root(new, tiles), proof)
        except pymerkle.InvalidProof as exc:
            raise VerificationError(f"pymerkle consistency {old}->{new} fails our roots") from exc


def _latencies(
    prefix: str, inclusion_ns: Sequence[int], consistency_ns: Sequence[int]
) -> dict[str, float]:
    out = {}
    for kind, samples in (("inclusion", inclusion_ns), ("consistency", consistency_ns)):
        for percentile in PERCENTILES:
            out[f"{prefix}{kind}_p{percentile}_us"] = _percentile_us(samples, percentile)
    return out


class Provers:
    """Our two timed calls: in memory, the library's provers over MemoryTiles; from a
    database, a proof served as the Ledger serves it (module docstring)."""

    def __init__(self, tiles: MemoryTiles, size: int, engine: Engine | None) -> None:
        self.tiles = tiles
        self.size = size  # the tree's, which the bench's checkpoint row is of
        self.engine = engine
        self._roots: dict[int, bytes] = {}
        self.known = VerifiedRanges()

    def root(self, size: int) -> bytes:
        """The root of ``size`` (the bench's own, from the tiles it built in memory)."""
        if size not in self._roots:
            self._roots[size] = root(size, self.tiles)
        return self._roots[size]

    def inclusion(self, index: int, size: int) -> object:
        if self.engine is None:
            return inclusion_proof(index, size, self.tiles)
        with self.engine.connect() as connection:
            proof = serve_inclusion(connection, index, (size, self.root(size)), self.known)
        invariant(proof is not None, "the bench's checkpoint row is its tree's")
        return proof

    def consistency(self, old: int, new: int) -> object:
        if self.engine is None:
            return consistency_proof(old, new, self.tiles)
        head = (self.size, self.root(self.size))
        with self.engine.connect() as connection:
            proof = serve_consistency(
                connection, (old, self.root(old)), (new, self.root(new)), head, self.known
            )
        invariant(proof is not None, "the bench's checkpoint row is its tree's")
        return proof


def _time_both(
    ours: Provers, tree: Any, entries: int, baseline_entries: int, samples: int, seed: int
) -> tuple[dict[str, float], dict[str, float], int]:
    """Our and pymerkle's latencies (same seed, each at its size), and the memo's hits."""
    inclusions, pairs = _samples(seed, entries, samples)
    their_inclusions, their_pairs = _samples(seed, baseline_entries, samples)
    one_based = [(index + 1, size) for index, size in their_inclusions]
    for old, new in pairs:  # the roots a ledger has verified once and remembers
        ours.root(old), ours.root(new)
    merkle_tree._memo_nodes.cache_clear()  # cold: nothing derived before timing starts
    merkle_tree._memo_partial.cache_clear()
    our_inclusion, their_inclusion = _time_interleaved(
        ours.inclusion, inclusions, tree.prove_inclusion, one_based
    )
    our_consistency, their_consistency = _time_interleaved(
        ours.consistency, pairs, tree.prove_consistency, their_pairs
    )
    memo_hits = merkle_tree._memo_nodes.cache_info().hits
    return (
        _latencies("", our_inclusion, our_consistency),
        _latencies("pymerkle_", their_inclusion, their_consistency),
        memo_hits,
    )


def _entry(seq: int, leaf: bytes, hashed: bytes) -> StoredEntry:
    """A log row around a synthetic leaf (only seq and leaf are read by a proof)."""
    return StoredEntry(seq, f"bench-{seq:030d}", hashed, "bench", "bench", "", leaf, hashed)


def _load_leaves(
    engine: Engine, leaves: Sequence[bytes], hashes: Sequence[bytes], head: bytes
) -> None:
    """Bulk-load the leaves into log_entries, and one checkpoint row (unsigned: the
    bench times the row's read, not its verification, which a ledger remembers)."""
    for table in (LogEntry.__table__, Checkpoint.__table__):
        table.create(engine)  # type: ignore[attr-defined]
    with engine.begin() as connection:
        for start in range(0, len(leaves), LOAD_CHUNK_ROWS * 10):
            chunk = range(start, min(len(leaves), start + LOAD_CHUNK_ROWS * 10))
            entries = [_entry(seq, leaves[seq], hashes[seq]) for seq in chunk]
            store.insert_entries(connection, entries)
        size = len(leaves)
        note = f"bench\n{size}\n"
        store.insert_checkpoint(connection, StoredCheckpoint(size, head, note, ""))


def _load_tiles(engine: Engine, tiles: MemoryTiles) -> None:
    """Bulk-load the tiles and blobs into the production tables (the tables are created
    bare, without the triggers that tie them to a log)."""
    for table in (MerkleTile.__table__, MerkleTileNodes.__table__):
        table.create(engine)  # type: ignore[attr-defined]
    rows = [
        {"level": level, "idx": idx, "hashes": data} for (level, idx), data in tiles.tiles.items()
    ]
    blobs = [
        {"level": level, "idx": idx, "nodes": data} for (level, idx), data in tiles.nodes.items()
    ]
    tile_table, nodes_table = MerkleTile.__table__, MerkleTileNodes.__table__
    with engine.begin() as connection:
        for table, items in ((tile_table, rows), (nodes_table, blobs)):
            for start in range(0, len(items), LOAD_CHUNK_ROWS):
                statement = table.insert()  # type: ignore[attr-defined]
                connection.execute(statement, items[start : start + LOAD_CHUNK_ROWS])


def bench_proofs(
    entries: int = 1_000_000,
    samples: int = 2000,
    seed: int = 1,
    pymerkle_entries: int | None = None,
    db: str | None = None,
) -> dict[str, object]:
    """Proof latency (p50/p99, µs) of ledger.merkle at ``entries`` leaves, next to
    pymerkle's; with ``db``, our proofs are read from that database's tile tables."""
    if entries < 2 or samples < 1:
        raise ValueError("need at least 2 entries and 1 sample")
    if pymerkle_entries is None:
        pymerkle_entries = BENCH_PYMERKLE_ENTRIES_MAX
    baseline_entries = min(pymerkle_entries, entries)
    host = machine()
    backend = "memory"
    gc.collect()
    gc.disable()
    try:
        leaves = [_leaf(i) for i in range(entries)]
        started = time.perf_counter()
        hashes = [leaf_hash(leaf) for leaf in leaves]
        tiles = _build_tiles(hashes)
        build_s = time.perf_counter() - started
        started = time.perf_counter()
        tree = _build_pymerkle(leaves[:baseline_entries])
        pymerkle_build_s = time.perf_counter() - started
        with contextlib.ExitStack() as stack:
            reader: TileReader = tiles
            engine = None
            if db is not None:
                backend, engine = stack.enter_context(_fresh_database(db))
                _load_tiles(engine, tiles)
                _load_leaves(engine, leaves, hashes, root(entries, tiles))
                reader = DbTiles(stack.enter_context(engine.connect()))
            # Proofs are served from the ledger's proof pool (ledger.app.proof_pool).
            pool = None if engine is None else proof_pool(engine)
            if pool is not None and pool is not engine:
                stack.callback(pool.dispose)
            provers = Provers(tiles, entries, pool)
            ours, theirs, memo_hits = _time_both(
                provers, tree, entries, baseline_entries, samples, seed
            )
            inclusions, pairs = _samples(seed, entries, samples)
            verified = _verify_ours(reader, hashes, inclusions, pairs)
        _cross_check(tree, tiles, *_samples(seed, baseline_entries, samples))
    finally:
        gc.enable()
        gc.collect()
    speedups = {
        f"speedup_{name}": round(theirs[f"pymerkle_{name}_us"] / max(ours[f"{name}_us"], 0.1), 2)
        for name in ("inclusion_p50", "inclusion_p99", "consistency_p50", "consistency_p99")
    }
    return {
        "bench": "proofs",
        "backend": backend,
        "entries": entries,
        "samples": samples,
        "seed": seed,
        **ours,
        "pymerkle_entries": baseline_entries,
        **theirs,
        **speedups,
        "memo_hits_while_timing": memo_hits,
        "known_ranges": len(provers.known.hashes),
        "build_tiles_s": round(build_s, 2),
        "pymerkle_build_s": round(pymerkle_build_s, 2),
        "tiles": len(tiles.tiles),
        "node_blobs": len(tiles.nodes),
        "verified_proofs": verified,
        "machine": host,
    }
