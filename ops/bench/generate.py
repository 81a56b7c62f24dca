"""The bench's signed export, generated at the speed of signing instead of appending.

``alliance bench audit`` and ``alliance bench scale`` need the export of a log of up to
millions of entries: the bench's genesis, RETURN_MERCHANTS merchants, then returns among
them (``return_submissions``). Appending them through the writer runs every rule against
the state, one transaction per batch (a few hundred entries per second on two cores: ten
hours for 10 M). This module writes the very bytes the writer's export would hold:

* the setup (genesis and merchants) IS appended by the writer, on a scratch SQLite file,
  and its leaves, keys and trust are read back from that log;
* every return is the submission the bench appended before, with the same ids and
  bodies (the same seeded generators, drawn in the same order, here in the parent), and
  is signed, checked and made into its leaf in worker processes by the writer's own code
  (``ledger.synthetic.LeafMaker``: ``Sequencer.prepare`` for the schemas and RFC 8785
  bytes, then ``record_leaf`` at the seq it would get, logged at the bench clock's time);
* the Merkle tree is integrated chunk by chunk (``ledger.synthetic.Frontier``, keeping only
  the frontier), entries.jsonl is streamed, never held;
* the checkpoint is signed by the operator key at the bench clock's time as the writer
  publishes it (``ledger.synthetic.checkpoint``), cosigned by each region's
  ``WitnessNode`` (nodes/witness.py) in the order the log
  stores the lines, and written with trust.json by ledger/export.py.

What is not run is ``admit()``: the rules against the state. The audit, which every bench
runs on the export first, replays each entry under every rule with every signature
checked, as does ``alliance import``; and tests/ops/test_bench_generate.py proves the
files byte-identical to the writer's export of the same submissions.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import random
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from ledger import merkle, verifying
from ledger.app import LogKeys, SignedCheckpoint, _with_cosignatures, export_trust
from ledger.audit import Trust
from ledger.export import ENTRIES_FILE, Exported, ExportFolder, finish_export, write_reports
from ledger.state import OPERATOR
from ledger.store import StoredCheckpoint
from ledger.synthetic import Frontier, LeafMaker, Submission, checkpoint
from nodes.witness import WitnessNode
from ops.bench.append import (
    BENCH_NOW,
    RETURN_MERCHANTS,
    SAME_MERCHANT_SHARE,
    SEED,
    Fixture,
    _enrol_merchants,
    _fresh_database,
    _return_body,
    _start_log,
)
from ops.service import trust_from_ledger
from ops.world import Keyring
from schemas.errors import InvariantError, NotFoundError, invariant
from schemas.limits import BENCH_GENERATE_CHUNK_ENTRIES, BENCH_GENERATE_CHUNKS_AHEAD
from signing.keys import PrivateKey

RETURN_KIND = "return.recorded"


def return_submissions(
    fixture: Fixture, merchants: Sequence[str], count: int
) -> Iterator[Submission]:
    """The bench export's ``count`` returns among ``merchants``, unsigned: who signs each
    (the accepting merchant) and its entry (id from the fixture's factory, time
    BENCH_NOW). Ten percent are accepted by the seller itself; receipts are numbered
    from R000000000."""
    rng = random.Random(SEED)  # noqa: S311 - bench data, not secrets
    for index in range(count):
        acceptor = seller = rng.choice(merchants)
        if rng.random() >= SAME_MERCHANT_SHARE:
            while seller == acceptor:
                seller = rng.choice(merchants)
        body = _return_body(rng, seller, f"R{index:09d}")
        yield acceptor, fixture.factory.entry(RETURN_KIND, acceptor, body, BENCH_NOW)


# --- the workers ------------------------------------------------------------------------


@dataclass
class _Worker:
    keys: dict[str, PrivateKey] = field(default_factory=dict)
    maker: LeafMaker | None = None


_WORKER = _Worker()


def _worker_init(key_ids: dict[str, str], now: datetime) -> None:
    """Each worker derives the signers' keys from the bench seed (keys do not pickle) and
    checks them against the parent's; its leaf maker only prepares, never appends."""
    ring = Keyring(seed=SEED)
    for principal, key_id in key_ids.items():
        key = ring.ensure(principal)
        invariant(key.key_id == key_id, f"worker key of {principal} is not the bench's")
        _WORKER.keys[principal] = key
    _WORKER.maker = LeafMaker(ring.ensure(OPERATOR), now)
    gc.freeze()  # the modules and keys: the collector need not walk them again


def _worker_chunk(first_seq: int, submissions: list[Submission]) -> tuple[bytes, bytes]:
    maker = _WORKER.maker
    invariant(maker is not None, "a generator worker ran before its initializer")
    assert maker is not None
    return maker.leaves(_WORKER.keys, first_seq, submissions)


# --- the parent -------------------------------------------------------------------------


@dataclass
class _Setup:
    """What the writer logged before the returns, and what the export needs of it."""

    fixture: Fixture
    merchants: list[str]
    leaves: list[bytes]
    keys: LogKeys
    trust: Trust


def _set_up() -> _Setup:
    """The genesis and merchants appended by the writer on a scratch SQLite file (as the
    bench always built them), read back before the file goes."""
    with _fresh_database(None) as (_, engine):
        fixture = _start_log(engine)
        merchants = _enrol_merchants(fixture, RETURN_MERCHANTS)
        ledger = fixture.ledger
        leaves = ledger.leaves(0, ledger.size())
        setup = _Setup(fixture, merchants, leaves, ledger.log_keys(), trust_from_ledger(ledger))
    verifying.shutdown()  # the writer's verification worker: its core goes to the signers
    return setup


def _leaf_chunks(
    setup: _Setup, count: int, workers: int, chunk_entries: int
) -> Iterator[tuple[bytes, bytes]]:
    """The leaves of the ``count`` returns after the setup, chunk by chunk in seq order,
    made by ``workers`` processes with at most BENCH_GENERATE_CHUNKS_AHEAD chunks each
    in flight (memory stays a few chunks however long the log)."""
    fixture = setup.fixture
    key_ids = {m: fixture.ring.keys[m].key_id for m in setup.merchants}
    key_ids[OPERATOR] = fixture.ring.keys[OPERATOR].key_id
    now = fixture.clock.now  # the bench clock once the setup is logged: BENCH_NOW
    # spawn: a forked worker would inherit the parent's threads' locks mid-state.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(
        workers, mp_context=context, initializer=_worker_init, initargs=(key_ids, now)
    ) as executor:
        pending: list[Future[tuple[bytes, bytes]]] = []
        chunk: list[Submission] = []
        seq = len(setup.leaves)
        for submission in return_submissions(fixture, setup.merchants, count):
            chunk.append(submission)
            if len(chunk) == chunk_entries:
                pending.append(executor.submit(_worker_chunk, seq, chunk))
                seq, chunk = seq + len(chunk), []
                if len(pending) > BENCH_GENERATE_CHUNKS_AHEAD * workers:
                    yield pending.pop(0).result()
        if chunk:
            pending.append(executor.submit(_worker_chunk, seq, chunk))
        for future in pending:
            yield future.result()


@dataclass
class _GeneratedLog:
    """The LogClient a witness cosigns through: the generated checkpoint, with the lines
    cosigned so far (as the log serves its checkpoint), and nothing cosigned before."""

    keys: LogKeys
    checkpoint_row: StoredCheckpoint
    lines: dict[str, str] = field(default_factory=dict)  # by witness name

    def checkpoint(self) -> str:
        return self.signed().note

    def signed(self) -> SignedCheckpoint:
        """The checkpoint with every line that verifies, in the order the log stores
        them (by witness name: ledger.store.cosignature_lines)."""
        lines = [self.lines[name] for name in sorted(self.lines)]
        return _with_cosignatures(self.keys, self.checkpoint_row, lines)

    def leaves(self, start: int, end: int) -> list[bytes]:
        raise NotFoundError("a generated log serves no leaves")

    def consistency(self, old: int, new: int) -> list[bytes]:
        invariant(old in (0, new), "nothing was cosigned before the generated checkpoint")
        return []

    def awaiting(self, region: str) -> list[int]:
        return []

    def submit(self, document: dict[str, Any]) -> dict[str, Any]:
        raise NotFoundError("a generated log takes no submissions")

    def cosigned(self, region: str) -> str | None:
        return None

    def add_cosignature(self, region: str, size: int, line: str, timestamp_s: int) -> None:
        invariant(size == self.checkpoint_row.size, f"a cosignature of size {size}")
        self.lines[self.keys.witnesses[region].name] = line


def _cosigned_note(setup: _Setup, tree: Frontier) -> str:
    """The operator's checkpoint of the tree, signed at the bench clock's time, with
    every region's witness's cosignature (as `run_witness` adds them, at that time)."""
    ring, now = setup.fixture.ring, setup.fixture.clock.now
    row = checkpoint(setup.keys.origin, tree, ring.keys[OPERATOR], now)
    log = _GeneratedLog(setup.keys, row)
    for code, key in sorted(ring.witnesses.items()):
        WitnessNode(code, key, setup.trust).cosign(log, now)
    signed = log.signed()
    if signed.cosigned_by != tuple(sorted(setup.keys.witnesses)):
        raise InvariantError(f"only {signed.cosigned_by} cosigned the generated checkpoint")
    return signed.note


def generate_export(
    directory: Path,
    entries: int,
    workers: int | None = None,
    chunk_entries: int = BENCH_GENERATE_CHUNK_ENTRIES,
) -> Exported:
    """The bench's export of ``entries`` entries (at least the setup's) in ``directory``,
    byte for byte what the writer's would be (module docstring)."""
    setup = _set_up()
    tree = Frontier()
    tree.add(b"".join(merkle.leaf_hash(leaf) for leaf in setup.leaves))
    count = max(entries - len(setup.leaves), 0)

    def lines() -> Iterator[bytes]:
        yield b"".join(leaf + b"\n" for leaf in setup.leaves)
        chunks = _leaf_chunks(setup, count, workers or os.cpu_count() or 1, chunk_entries)
        for text, hashes in chunks:
            tree.add(hashes)
            yield text

    with ExportFolder(directory) as folder:
        write_reports(folder, ())  # the bench closes no night
        folder.write(ENTRIES_FILE, lines())
        invariant(tree.size == len(setup.leaves) + count, "the generated log lost entries")
        note = _cosigned_note(setup, tree)
        return finish_export(folder, note, export_trust(setup.keys, note), tree.size, tree.root)
