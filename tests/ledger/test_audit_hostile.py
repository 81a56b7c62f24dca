"""The audit and the export against an attacker: one who could write rows into the log
(the same signed entry logged twice, then checkpointed and cosigned), who hands the
auditor a trust root that asks for fewer witnesses, or whose export files are built to
crash, hang or exhaust the auditor; and planted symlinks in an export directory.

Every hostile input ends in a finding or a one-line `error <type>: …` with exit 1, never
a traceback, a hang or an unbounded read."""

from __future__ import annotations

import io
import json
import os
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from ledger import merkle
from ledger.audit import (
    AuditReport,
    Overlong,
    audit_directory,
    read_lines,
)
from ledger.export import CHECKPOINT_FILE, ENTRIES_FILE, REPORTS_DIR, TRUST_FILE
from ledger.rows import TABLES
from ops.cli import app
from ops.world import witness_name
from schemas.canonical import canonical
from schemas.errors import ConfigError
from schemas.limits import CHECKPOINT_FILE_BYTES_MAX, LINE_BYTES_MAX, TRUST_FILE_BYTES_MAX
from signing.checkpoint import (
    Checkpoint,
    CosignatureVerifier,
    add_cosignatures,
    cosign,
    sign_checkpoint,
)
from signing.keys import PrivateKey
from signing.note import NoteSigner
from tests.conftest import Alliance
from tests.ledger.test_export_audit import (
    EDITED,
    RETURN_SEQ,
    build_log,
    codes,
    write_lines,
)
from tests.ledger.test_export_audit import (
    read_lines as export_lines,
)
from tests.ops.test_cli import assert_clean_error

REGIONS = ("31", "32", "33", "34")
SIZE = 12  # leaves of build_log()
HUGE_LINE_BYTES = 200 * 1024 * 1024
READ_PEAK_BYTES_MAX = 32 * 1024 * 1024  # far below the huge line: it was never held


@pytest.fixture
def db_url(sqlite_url: str) -> str:
    """What is attacked here is the export's files: one backend is enough."""
    return sqlite_url


def audit_cli(directory: Path, *options: str) -> Result:
    return CliRunner().invoke(app, ["audit", str(directory), *options])


def resign(alliance: Alliance, directory: Path, lines: list[bytes]) -> None:
    """What an attacker who got ``lines`` into the log obtains: the operator's process
    checkpoints the grown tree and every witness, seeing a consistent append, cosigns."""
    write_lines(directory, lines)
    origin = alliance.config.origin
    root = merkle.integrate(0, {}, [merkle.leaf_hash(line) for line in lines]).root
    checkpoint = Checkpoint(origin, len(lines), root)
    note = sign_checkpoint(checkpoint, NoteSigner(origin, alliance.ring.keys["operator"]))
    timestamp_s = int(alliance.clock().timestamp())
    cosignatures = [
        cosign(
            checkpoint,
            NoteSigner(witness_name(origin, code), alliance.ring.witnesses[code]),
            timestamp_s,
        )
        for code in REGIONS
    ]
    (directory / CHECKPOINT_FILE).write_text(add_cosignatures(note, cosignatures))


def projections(report: AuditReport) -> dict[str, list[Any]]:
    return {name: list(report.state.table(name).rows()) for name in TABLES}


# --- the same signed entry twice ------------------------------------------------------------


def test_a_logged_return_copied_to_the_next_seq_is_found_and_not_applied(
    alliance: Alliance, exported: Path
) -> None:
    honest = audit_directory(exported)
    assert honest.ok
    lines = export_lines(exported)
    copy = json.loads(lines[RETURN_SEQ])
    copy["seq"] = SIZE  # same entry, same signatures, same leaf entry id: a new seq
    resign(alliance, exported, [*lines, canonical(copy)])

    report = audit_directory(exported)
    assert codes(report) == {(SIZE, "duplicate-id")}
    (finding,) = report.findings
    assert f"seq {RETURN_SEQ}" in finding.message and copy["entry"]["id"] in finding.message
    assert report.size == report.checkpoint_size == SIZE + 1
    assert sorted(report.cosigned_by) == list(REGIONS)
    # Replay refused it: the receipt is refunded once, one obligation, as before the copy.
    assert projections(report) == projections(honest)


def test_a_repeated_id_is_found_however_far_apart(alliance: Alliance, exported: Path) -> None:
    lines = export_lines(exported)
    copy = json.loads(lines[1])  # an enrolment, repeated at the end of the log
    copy["seq"] = SIZE
    resign(alliance, exported, [*lines, canonical(copy)])
    report = audit_directory(exported)
    # The copy also carries the original's logged time, earlier than the seq before it.
    assert codes(report) == {(SIZE, "duplicate-id"), (SIZE, "logged-order")}
    duplicate = next(f for f in report.findings if f.code == "duplicate-id")
    assert "seq 1;" in duplicate.message


# --- the trust root must ask for every witness the log declared ------------------------------


def _edit_trust(directory: Path, change: Any) -> None:
    trust = json.loads((directory / TRUST_FILE).read_text())
    change(trust["witness_keys"])
    (directory / TRUST_FILE).write_text(json.dumps(trust))


def test_a_trust_root_omitting_a_declared_witness_is_a_finding(exported: Path) -> None:
    _edit_trust(exported, lambda witnesses: witnesses.pop("32"))
    report = audit_directory(exported)
    assert codes(report) == {(0, "trust")}
    assert "region 32" in report.findings[0].message
    assert report.cosigned_by == ["31", "33", "34"]
    assert report.witnesses_declared == list(REGIONS)
    summary = json.loads(audit_cli(exported, "--json").stdout)
    assert summary["ok"] is False and summary["witnesses_declared"] == list(REGIONS)


def test_a_trust_root_with_no_witnesses_is_a_finding_per_declared_witness(
    exported: Path,
) -> None:
    _edit_trust(exported, lambda witnesses: witnesses.clear())
    report = audit_directory(exported)
    assert [(f.seq, f.code) for f in report.findings] == [(0, "trust")] * len(REGIONS)
    assert report.cosigned_by == []
    assert audit_cli(exported).exit_code == 1


def test_a_trust_root_with_another_key_for_a_declared_witness_is_a_trust_finding(
    alliance: Alliance, exported: Path
) -> None:
    """One finding, about the trust root: the cosignature by the declared key is not
    then reported missing as well."""
    other = NoteSigner(witness_name(alliance.config.origin, "33"), PrivateKey.from_seed(b"w"))
    vkey = CosignatureVerifier.from_public(other.name, other.key.public).vkey
    _edit_trust(exported, lambda witnesses: witnesses.update({"33": vkey}))
    report = audit_directory(exported)
    assert codes(report) == {(0, "trust")}
    assert "region 33" in report.findings[0].message
    assert report.cosigned_by == ["31", "32", "34"]


def test_a_trust_root_listing_an_undeclared_witness_is_a_trust_finding(exported: Path) -> None:
    def add(witnesses: dict[str, str]) -> None:
        witnesses["35"] = witnesses["31"]

    _edit_trust(exported, add)
    report = audit_directory(exported)
    assert codes(report) == {(None, "trust")}
    assert "region 35" in report.findings[0].message


# --- malformed genesis bodies: findings, never AttributeError ---------------------------------


@pytest.mark.parametrize(
    "field, value",
    [
        ("operator_keys", "not a list"),
        ("operator_keys", [{"key": "k", "pub": ["unhashable"]}]),
        ("operator_keys", ["not an object"]),
        ("regions", ["not an object"]),
        ("regions", "not a list"),
        ("witness", "a string"),
    ],
)
def test_a_malformed_genesis_body_gives_findings(exported: Path, field: str, value: Any) -> None:
    lines = export_lines(exported)
    genesis = json.loads(lines[0])
    body = genesis["entry"]["body"]
    if field == "witness":
        body["regions"][0]["witness"] = value
    else:
        body[field] = value
    lines[0] = canonical(genesis)
    write_lines(exported, lines)
    report = audit_directory(exported)
    assert (0, "malformed") in codes(report)
    assert (None, "genesis") in codes(report)
    result = audit_cli(exported)
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
    assert "seq 0" in result.stdout


# --- export files that are missing, not files, not text, or too big -------------------------


def test_a_missing_entries_file_is_a_clean_error(exported: Path) -> None:
    (exported / ENTRIES_FILE).unlink()
    assert_clean_error(audit_cli(exported), "not-found", ENTRIES_FILE)


def test_an_entries_file_that_is_a_directory_is_a_clean_error(exported: Path) -> None:
    (exported / ENTRIES_FILE).unlink()
    (exported / ENTRIES_FILE).mkdir()
    assert_clean_error(audit_cli(exported), "malformed", "not a regular file")


@pytest.mark.parametrize("name", [CHECKPOINT_FILE, TRUST_FILE, ENTRIES_FILE])
@pytest.mark.parametrize("target", ["/dev/zero", "fifo"])
def test_a_file_linked_to_a_device_or_a_fifo_is_refused_without_reading(
    exported: Path, name: str, target: str
) -> None:
    """/dev/zero never ends and a FIFO without a writer blocks: both are refused before
    any read (the test would hang or run out of memory otherwise)."""
    (exported / name).unlink()
    if target == "fifo":
        fifo = exported.parent / "fifo"
        os.mkfifo(fifo)
        target = str(fifo)
    (exported / name).symlink_to(target)
    assert_clean_error(audit_cli(exported), "malformed", "not a regular file")


def test_a_fifo_in_place_of_a_file_is_refused(exported: Path) -> None:
    (exported / CHECKPOINT_FILE).unlink()
    os.mkfifo(exported / CHECKPOINT_FILE)
    assert_clean_error(audit_cli(exported), "malformed", "not a regular file")


def test_a_checkpoint_that_is_not_utf8_is_a_finding(exported: Path) -> None:
    note = (exported / CHECKPOINT_FILE).read_bytes()
    (exported / CHECKPOINT_FILE).write_bytes(b"\xff\xfe" + note)
    report = audit_directory(exported)
    assert (None, "checkpoint") in codes(report)
    assert report.checkpoint_size is None
    result = audit_cli(exported)
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
    assert "not UTF-8" in result.stdout


def test_a_checkpoint_over_its_limit_is_refused_unread(exported: Path) -> None:
    with (exported / CHECKPOINT_FILE).open("ab") as out:
        out.truncate(CHECKPOINT_FILE_BYTES_MAX + 1)  # a sparse tail of zero bytes
    assert_clean_error(audit_cli(exported), "malformed", str(CHECKPOINT_FILE_BYTES_MAX))


def test_every_malformed_trust_root_is_a_clean_error(exported: Path) -> None:
    honest = json.loads((exported / TRUST_FILE).read_text())
    vkey = honest["witness_keys"]["31"]
    cases: list[bytes] = [
        b"\xff\xfe{}",  # not UTF-8
        b'{"origin": ',  # not JSON
        b"[" * 100_000,  # nested past the parser's depth
        b"[]",
        json.dumps({**honest, "witness_keys": []}).encode(),
        json.dumps({**honest, "witness_keys": [["31", vkey]]}).encode(),
        json.dumps({**honest, "witness_keys": {"31": 5}}).encode(),
        json.dumps({**honest, "log_key": None}).encode(),
        json.dumps({**honest, "origin": ["x"]}).encode(),
        json.dumps({**honest, "log_key": vkey}).encode(),  # a witness vkey as the log's
        # The honest root padded past its limit: read no further than the limit.
        json.dumps(honest).encode() + b" " * TRUST_FILE_BYTES_MAX,
    ]
    for data in cases:
        (exported / TRUST_FILE).write_bytes(data)
        assert_clean_error(audit_cli(exported), "malformed", "trust root")


# --- bounded lines -----------------------------------------------------------------------------


def test_read_lines_holds_at_most_a_leaf_of_a_line() -> None:
    longest = b"a" * LINE_BYTES_MAX
    over = b"b" * (LINE_BYTES_MAX + 1)
    data = b"x\n" + longest + b"\n" + over + b"\n\n" + over + b"y\nlast"
    got = list(read_lines(io.BytesIO(data)))
    assert got == [
        b"x",
        longest,
        Overlong(len(over), merkle.leaf_hash(over)),
        b"",
        Overlong(len(over) + 1, merkle.leaf_hash(over + b"y")),
        b"last",
    ]
    at_end = list(read_lines(io.BytesIO(over)))
    assert at_end == [Overlong(len(over), merkle.leaf_hash(over))]


def test_a_200_mb_line_is_a_finding_and_is_never_held(exported: Path) -> None:
    """The line is a sparse hole of zero bytes (no disk used); the audit names it, checks
    every other line at its own seq, and peaks at a few MB, not 200."""
    lines = export_lines(exported)
    with (exported / ENTRIES_FILE).open("wb") as out:
        out.write(b"".join(line + b"\n" for line in lines[:EDITED]))
        out.seek(HUGE_LINE_BYTES, os.SEEK_CUR)
        out.write(b"\n" + b"".join(line + b"\n" for line in lines[EDITED + 1 :]))
    tracemalloc.start()
    try:
        report = audit_directory(exported)
        _, peak_bytes = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak_bytes < READ_PEAK_BYTES_MAX
    assert (EDITED, "too-long") in codes(report)
    assert str(HUGE_LINE_BYTES) in report.findings[0].message
    assert report.size == SIZE  # counted as one leaf: the seqs after it are unchanged
    assert {seq for seq, _ in codes(report)} <= {EDITED, None}  # e.g. the root, no gaps
    result = audit_cli(exported)
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
    assert f"seq {EDITED}: [too-long]" in result.stdout


# --- export: planted symlinks are replaced, never written through ----------------------------


def test_an_export_never_writes_through_planted_symlinks(
    alliance: Alliance, tmp_path: Path
) -> None:
    build_log(alliance)
    outside = tmp_path / "outside.txt"
    outside.write_bytes(b"not yours\n")
    directory = tmp_path / "export"
    directory.mkdir()
    names = [CHECKPOINT_FILE, ENTRIES_FILE, TRUST_FILE]
    for name in [*names, *(name + ".tmp" for name in names)]:
        (directory / name).symlink_to(outside)
    alliance.ledger.export(directory)
    assert outside.read_bytes() == b"not yours\n"
    for name in names:
        assert not (directory / name).is_symlink() and (directory / name).is_file()
    assert audit_directory(directory).ok
    # Another export over the first replaces its files the same way.
    alliance.ledger.export(directory)
    assert outside.read_bytes() == b"not yours\n"
    leftovers = {path.name for path in directory.iterdir()} - {*names, REPORTS_DIR}
    assert leftovers == {name + ".tmp" for name in names}  # the planted links, untouched


def test_an_export_never_follows_a_planted_reports_folder(
    alliance: Alliance, tmp_path: Path
) -> None:
    build_log(alliance)
    outside = tmp_path / "outside"
    outside.mkdir()
    directory = tmp_path / "export"
    directory.mkdir()
    (directory / REPORTS_DIR).symlink_to(outside)
    with pytest.raises(ConfigError, match="cannot export into"):
        alliance.ledger.export(directory)
    assert list(outside.iterdir()) == []


def test_an_export_into_a_file_is_a_clean_error(alliance: Alliance, tmp_path: Path) -> None:
    target = tmp_path / "a-file"
    target.write_bytes(b"keep")
    with pytest.raises(ConfigError, match="cannot export into"):
        alliance.ledger.export(target)
    assert target.read_bytes() == b"keep"


def test_a_logged_time_that_goes_back_is_a_finding(alliance: Alliance, tmp_path: Path) -> None:
    """Leaves are logged in time order; an export whose logged times go back (a planted or
    edited leaf, re-signed checkpoint or not) is flagged at that seq."""
    alliance.sequencer.submit_many([alliance.enroll_doc() for _ in range(2)])
    alliance.cosign()
    directory = tmp_path / "export"
    alliance.ledger.export(directory)
    lines = (directory / "entries.jsonl").read_bytes().splitlines()
    record = json.loads(lines[2])
    record["logged"] = "2020-01-01T00:00:00.000000Z"
    lines[2] = canonical(record)
    (directory / "entries.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    report = audit_directory(directory)
    assert (2, "logged-order") in {(f.seq, f.code) for f in report.findings}
