"""The audit on every core (ledger.checking): the entry's bytes taken as a slice of the
line are its canonical bytes, and a hostile export gets the same findings, tree and
state whether its lines are checked by workers in many chunks, in this process in one
chunk, or by the serial path alone."""

from __future__ import annotations

import base64
import gc
import json
import os
import sqlite3
from pathlib import Path

import pytest

from ledger import checking, merkle
from ledger.audit import (
    AuditReport,
    Replay,
    audit_directory,
    load_trust,
    open_export_file,
    read_lines,
)
from ledger.checking import (
    ENTRY_START,
    KeyHarvest,
    audited_entry_bytes,
    check_line,
    entry_slice,
)
from ledger.export import ENTRIES_FILE, REPORTS_DIR, TRUST_FILE
from ledger.reads import tile_within
from ledger.spill import KeyFilter, Spill
from ledger.state import PAGE_PREFIXES, PAGED_TABLES, State
from schemas.canonical import canonical
from schemas.errors import VerificationError
from schemas.limits import AUDIT_SPILL_CACHE_BYTES
from tests.ledger.builders import snapshot
from tests.ledger.conftest import EXPORTED_SIZE

WORKER_CHUNK_LINES = 3  # several chunks, so the workers check them


@pytest.fixture
def db_url(sqlite_url: str) -> str:
    return sqlite_url  # what is checked here is the export's files


def _lines(directory: Path) -> list[bytes]:
    return (directory / ENTRIES_FILE).read_bytes().splitlines()


def test_the_entry_slice_is_the_entrys_canonical_bytes(exported: Path) -> None:
    harvest = KeyHarvest()
    for line in _lines(exported):
        harvest.see(line)
    for line in _lines(exported):
        record = json.loads(line)
        end = entry_slice(record, line)
        assert end is not None
        assert line[ENTRY_START:end] == canonical(record["entry"])
        assert audited_entry_bytes(line) == canonical(record["entry"])  # ledger.restore's
        verdict = check_line(line, harvest.known)
        assert verdict is not None
        assert verdict == (end, tuple(range(len(record["signatures"]))))


def test_a_line_that_is_not_exactly_canonical_gets_no_slice(exported: Path) -> None:
    line = _lines(exported)[1]
    record = json.loads(line)
    assert entry_slice(record, line.replace(b'{"entry":', b'{ "entry":', 1)) is None
    extra = {**record, "zz": 1}
    assert entry_slice(extra, canonical(extra)) is None
    assert check_line(line.replace(b'"seq":1', b'"seq":1.0'), {}) is None
    assert check_line(b"[1]", {}) is None


def _tamper(directory: Path) -> None:
    """A bad signature, a non-canonical line, a copied line, a float: each a finding."""
    lines = _lines(directory)
    record = json.loads(lines[3])
    signature = base64.b64decode(record["signatures"][0]["sig"])
    flipped = bytes([signature[0] ^ 1]) + signature[1:]
    record["signatures"][0]["sig"] = base64.b64encode(flipped).decode("ascii")
    lines[3] = canonical(record)
    lines[4] = lines[4].replace(b'{"entry":', b'{"entry": ', 1)
    lines.insert(7, lines[6])
    lines[10] = lines[10].replace(b'"seq":9,', b'"seq":9.0,')
    (directory / ENTRIES_FILE).write_bytes(b"\n".join(lines) + b"\n")


def _serial(directory: Path) -> AuditReport:
    """The serial path alone: every line judged without a worker's verdict."""
    report = AuditReport()
    replay = Replay(report, load_trust(directory / TRUST_FILE), directory / REPORTS_DIR)
    with open_export_file(directory / ENTRIES_FILE, "entries") as handle:
        for line in read_lines(handle):
            replay.add(line)
    replay.finish()
    report.size, report.root = replay.size, replay.root
    return report


def test_findings_are_the_same_on_every_path(exported: Path) -> None:
    _tamper(exported)
    serial = _serial(exported)
    one_chunk = audit_directory(exported)
    workers = audit_directory(exported, chunk_lines=WORKER_CHUNK_LINES)
    codes = {finding.code for finding in serial.findings}
    assert {"bad-signature", "canonical", "duplicate-id", "malformed", "gap"} <= codes
    for report in (one_chunk, workers):
        # The replay's findings come first; the checkpoint's and witnesses' follow.
        assert report.findings[: len(serial.findings)] == serial.findings
        assert (report.size, report.root) == (serial.size, serial.root)
        assert snapshot(report.state) == snapshot(serial.state)
    # Paged to disk (ledger.spill: its filter, its ids written a chunk at a time), the
    # same findings (the duplicate ids among them) and the same rows.
    spilled = audit_directory(exported, chunk_lines=WORKER_CHUNK_LINES, spill=True)
    try:
        assert spilled.findings[: len(serial.findings)] == serial.findings
        assert (spilled.size, spilled.root) == (serial.size, serial.root)
        for name in PAGED_TABLES:
            assert spilled.state.table(name) == serial.state.table(name), name
    finally:
        spilled.close()


def test_an_honest_export_audits_clean_with_workers(exported: Path) -> None:
    report = audit_directory(exported, chunk_lines=WORKER_CHUNK_LINES)
    assert report.ok, report.findings
    assert report.findings == audit_directory(exported).findings


def _flip_signature(directory: Path, seq: int) -> None:
    """Line ``seq`` still canonical, its first signature one bit off."""
    lines = _lines(directory)
    record = json.loads(lines[seq])
    signature = base64.b64decode(record["signatures"][0]["sig"])
    flipped = bytes([signature[0] ^ 1]) + signature[1:]
    record["signatures"][0]["sig"] = base64.b64encode(flipped).decode("ascii")
    lines[seq] = canonical(record)
    (directory / ENTRIES_FILE).write_bytes(b"\n".join(lines) + b"\n")


def test_a_bad_signature_in_the_last_chunk_is_found_at_its_seq(exported: Path) -> None:
    late = EXPORTED_SIZE - 2  # in the last chunk of WORKER_CHUNK_LINES lines
    _flip_signature(exported, late)
    report = audit_directory(exported, chunk_lines=WORKER_CHUNK_LINES, workers=2)
    bad = [finding for finding in report.findings if finding.code == "bad-signature"]
    assert [finding.seq for finding in bad] == [late]
    assert not report.ok


def test_one_worker_and_several_give_the_same_report(exported: Path) -> None:
    _tamper(exported)
    reports = [
        audit_directory(exported, chunk_lines=chunk_lines, workers=workers)
        for chunk_lines, workers in ((WORKER_CHUNK_LINES, 1), (WORKER_CHUNK_LINES, 3), (2, 2))
    ]
    first = reports[0]
    assert first.findings
    for report in reports[1:]:
        assert report.findings == first.findings
        assert (report.size, report.root) == (first.size, first.root)
        assert snapshot(report.state) == snapshot(first.state)


def _die(lines: list[bytes], keys: dict[str, bytes]) -> checking.Checked:
    """A worker's task that kills its worker (run in the worker, found by name)."""
    os._exit(3)


def test_a_worker_that_dies_fails_the_audit(
    exported: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(checking, "check_chunk", _die)
    with pytest.raises(VerificationError, match="audit is incomplete"):
        audit_directory(exported, chunk_lines=WORKER_CHUNK_LINES, workers=2)


def test_the_leaf_hashes_a_worker_sends_are_the_lines(exported: Path) -> None:
    lines = _lines(exported)
    harvest = KeyHarvest()
    checked = checking.check_chunk(lines, harvest.for_lines(lines))
    assert checking.leaf_hashes(checked) == [merkle.leaf_hash(line) for line in lines]


@pytest.mark.parametrize(
    ("level", "index", "width", "size", "within"),
    [
        (0, 0, 6, 6, True),
        (0, 0, 7, 6, False),
        (0, 1, 1, 257, True),
        (0, 1, 2, 257, False),
        (1, 0, 1, 255, False),
        (1, 0, 1, 256, True),
        (1, 0, 2, 767, True),
        (2, 0, 1, 65_535, False),
    ],
)
def test_a_tile_is_within_a_tree_when_all_its_hashes_are(
    level: int, index: int, width: int, size: int, within: bool
) -> None:
    assert tile_within(level, index, width, size) is within


def test_a_spilled_audit_finds_what_an_in_memory_one_finds(exported: Path) -> None:
    """Paged to disk (ledger.spill), the replay reaches the same verdict, root and rows."""
    in_memory = audit_directory(exported, spill=False)
    spilled = audit_directory(exported, spill=True)
    try:
        assert spilled.spill is not None and in_memory.spill is None
        assert (spilled.size, spilled.root, spilled.findings) == (
            in_memory.size,
            in_memory.root,
            in_memory.findings,
        )
        for name in PAGED_TABLES:
            assert not spilled.state.table(name).rows_by_key, name  # nothing held
            assert spilled.state.table(name) == in_memory.state.table(name), name
        assert spilled.state.unreconciled == in_memory.state.unreconciled
        directory = spilled.spill.directory
    finally:
        spilled.close()
    assert not directory.exists()


def test_the_audit_gives_the_collector_back_as_it_found_it(exported: Path) -> None:
    """The replay holds automatic collection and freezes its rows chunk by chunk
    (ledger.collector.collection_deferred): afterwards the collector runs again and nothing
    stays frozen; a collector the caller had turned off stays off."""
    assert audit_directory(exported, chunk_lines=WORKER_CHUNK_LINES).ok
    assert gc.isenabled()
    assert gc.get_freeze_count() == 0
    gc.disable()
    try:
        assert audit_directory(exported, chunk_lines=WORKER_CHUNK_LINES).ok
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_the_spill_filter_never_rules_out_a_key_it_was_given() -> None:
    held = KeyFilter(first_keys=64)
    keys = [("M", f"S{number % 7}", f"ref-{number}") for number in range(2000)]
    held.add_all(keys)
    assert len(held.layers) > 1  # grown past its first layer
    assert all(held.might_hold(key) for key in keys)
    others = [("M", "S1", f"other-{number}") for number in range(2000)]
    assert sum(held.might_hold(key) for key in others) < len(others) // 10


def test_a_spill_reads_back_what_it_stored_and_nothing_else(exported: Path) -> None:
    """Every stored row by its key and by its table's read prefix; a key never stored
    finds nothing; an entry id's first seq holds before and after it is written."""
    source = audit_directory(exported, spill=False).state
    spill = Spill()
    try:
        (cache,) = spill.db.execute("PRAGMA cache_size").fetchone()
        assert cache == -AUDIT_SPILL_CACHE_BYTES // 1024  # its own bounded cache
        state = State()
        state.attach(spill)
        for name in PAGED_TABLES:
            for row, version in source.table(name).items().values():
                state.put(row, version)
        assert spill.first_seq(b"id-1", 5) == 5
        assert spill.first_seq(b"id-1", 9) == 5  # not written yet
        spill.store(state)
        assert spill.first_seq(b"id-1", 12) == 5  # from the file
        assert spill.first_seq(b"id-2", 13) == 13
        below = source.size
        for name in PAGED_TABLES:
            table = source.table(name)
            length = PAGE_PREFIXES.get(name)
            for key, (row, version) in table.items().items():
                assert spill.fetch(name, [key], below) == [(row, version)], name
                if length is not None:
                    under = {k: v for k, v in table.items().items() if k[:length] == key[:length]}
                    found = spill.fetch(name, [key[:length]], below)
                    assert {table.key_of(r): (r, v) for r, v in found} == under, name
                assert spill.fetch(name, [(*key[:-1], "never stored")], below) == [], name
        assert any(len(source.table(name)) for name in PAGED_TABLES)
    finally:
        spill.close()


def test_a_failed_spill_write_is_raised_where_the_file_is_next_needed() -> None:
    """The spill writes on a thread of its own: a write that fails (here its table is
    gone) is raised by the next read of the file, and by flush() at the replay's end,
    never lost."""
    spill = Spill()
    try:
        state = State()
        state.attach(spill)
        spill.db.execute("DROP TABLE entry_ids")
        assert spill.first_seq(b"id-1", 5) == 5
        spill.store(state)  # handed to the writing thread: it fails there
        with pytest.raises(sqlite3.OperationalError, match="no such table"):
            spill.first_seq(b"id-1", 9)  # the filter holds it: the file is asked
        assert spill.written is None  # raised once; the file is idle again
        assert spill.first_seq(b"id-2", 10) == 10  # a key the filter rules out
        spill.store(state)
        with pytest.raises(sqlite3.OperationalError, match="no such table"):
            spill.flush()
    finally:
        spill.close()
    assert not spill.directory.exists()


def test_chunks_are_cut_by_bytes_as_well_as_by_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    """A hostile file's long lines make smaller chunks: the chunks in flight hold at
    most AUDIT_CHUNK_BYTES_MAX bytes of lines each, whatever the line count allows."""
    lines = [b"x" * 1000] * 10
    whole = [len(chunk) for chunk, _ in checking.checked_chunks(lines, 100, workers=1)]
    assert whole == [10]  # one chunk, checked in this process
    monkeypatch.setattr(checking, "AUDIT_CHUNK_BYTES_MAX", 2500)
    cut = [len(chunk) for chunk, _ in checking.checked_chunks(lines, 100, workers=1)]
    assert cut == [3, 3, 3, 1]


def test_a_key_filed_again_costs_the_spill_filter_nothing() -> None:
    """Repeats (the spilled tables share one filter, and a receipt's key is filed by
    three of them) take no capacity: the filter's memory follows the distinct keys."""
    held = KeyFilter(first_keys=64)
    keys = [("M", "S1", f"ref-{number}") for number in range(500)]
    held.add_all(keys)
    filed, capacity = held.count, held.capacity
    assert filed <= 500
    held.add_all(keys)
    held.add_all(reversed(keys))
    assert (held.count, held.capacity) == (filed, capacity)
    assert all(held.might_hold(key) for key in keys)
