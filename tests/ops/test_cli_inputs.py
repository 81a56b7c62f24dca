"""The command line against hostile inputs: a FIFO, /dev/zero, a directory, a file or
stdin past SUBMISSION_BYTES_MAX, integers of thousands of digits, seqs beyond int64, a
--db that is no database, negative arguments. Each is one `error <type>: …` line on
stderr with exit status 1: never a traceback, a hang or a MemoryError.

The commands run in a child process (``python -m ops.cli``) with a timeout and a memory
cap, so code that blocks on a FIFO or reads /dev/zero to the end fails the test instead
of hanging it or exhausting the machine."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from ops.cli import app
from ops.world import EntryFactory, Keyring, uscc
from schemas.limits import SUBMISSION_BYTES_MAX
from tests.dbtools import enroll_doc

REPO = Path(__file__).resolve().parents[2]
RUN_TIMEOUT_S = 60  # a command here answers in about a second; a blocked one never does
MEMORY_CAP_BYTES = 3 * 1024**3  # reading /dev/zero to the end hits this, not the machine
INT64_MAX = 2**63 - 1


@dataclass
class Ledger:
    db: str
    keys: Path
    tmp: Path
    serial: int = 0

    def document(self) -> dict[str, Any]:
        """A valid member.enrolled of a new member, signed by region:31."""
        self.serial += 1
        ring = Keyring.load(self.keys)
        return enroll_doc(ring, EntryFactory(), uscc("31", self.serial), datetime.now(UTC))


@pytest.fixture(scope="module")
def ledger(tmp_path_factory: pytest.TempPathFactory) -> Ledger:
    tmp = tmp_path_factory.mktemp("cli-inputs")
    db, keys = f"sqlite:///{tmp / 'ledger.db'}", tmp / "keys"
    result = CliRunner().invoke(app, ["init", "--db", db, "--keys", str(keys)])
    assert result.exit_code == 0, (result.output, result.exception)
    return Ledger(db, keys, tmp)


def _cap_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP_BYTES, MEMORY_CAP_BYTES))


@dataclass
class Ran:
    returncode: int
    stdout: str
    stderr: str


def run(ledger: Ledger, *args: str, stdin: bytes = b"") -> Ran:
    """``alliance ARGS`` in a child process, in the ledger's folder (so a default
    sqlite:///alliance.db would land there, not in the repository)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALLIANCE_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    completed = subprocess.run(
        [sys.executable, "-m", "ops.cli", *args],
        input=stdin,
        capture_output=True,
        check=False,
        timeout=RUN_TIMEOUT_S,
        cwd=ledger.tmp,
        env=env,
        preexec_fn=_cap_memory,
    )
    return Ran(
        completed.returncode,
        completed.stdout.decode("utf-8", "replace"),
        completed.stderr.decode("utf-8", "replace"),
    )


def assert_clean_error(result: Ran, *fragments: str) -> str:
    """Exit 1, one `error …` line on stderr containing ``fragments``, nothing on stdout."""
    assert "Traceback" not in result.stderr + result.stdout, result.stderr[-2000:]
    assert result.returncode == 1, (result.returncode, result.stderr[-2000:])
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr[-2000:]
    assert lines[0].startswith("error "), lines[0]
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    assert result.stdout == ""
    return lines[0]


def submit(ledger: Ledger, source: str | Path, stdin: bytes = b"") -> Ran:
    return run(
        ledger, "submit", str(source), "--db", ledger.db, "--keys", str(ledger.keys), stdin=stdin
    )


def padded(document: dict[str, Any], size_bytes: int) -> bytes:
    """``document`` as JSON followed by whitespace, ``size_bytes`` in all."""
    text = json.dumps(document).encode()
    assert len(text) < size_bytes
    return text + b" " * (size_bytes - len(text))


# --- input files and stdin ---------------------------------------------------------------


def test_an_integer_of_5000_digits_is_malformed(ledger: Ledger) -> None:
    text = json.dumps(ledger.document())
    assert '"return_days": 7' in text
    path = ledger.tmp / "huge-int.json"
    path.write_text(text.replace('"return_days": 7', '"return_days": ' + "9" * 5000))
    line = assert_clean_error(submit(ledger, path), "malformed", "safe range")
    assert len(line) < 300  # the message does not quote 5000 digits


def test_a_fifo_is_refused_without_blocking(ledger: Ledger) -> None:
    fifo = ledger.tmp / "queue.fifo"
    os.mkfifo(fifo)
    assert_clean_error(submit(ledger, fifo), "not-found", "FIFO", "not a regular file")


def test_a_symlink_to_dev_zero_is_refused(ledger: Ledger) -> None:
    link = ledger.tmp / "zero.json"
    link.symlink_to("/dev/zero")
    assert_clean_error(submit(ledger, link), "not-found", "character device")


def test_a_directory_is_refused_and_a_missing_file_not_found(ledger: Ledger) -> None:
    folder = ledger.tmp / "folder.json"
    folder.mkdir()
    assert_clean_error(submit(ledger, folder), "not-found", "directory", "not a regular file")
    assert_clean_error(submit(ledger, ledger.tmp / "absent.json"), "not-found", "absent.json")


def test_a_file_one_byte_over_the_limit_is_refused_and_at_the_limit_accepted(
    ledger: Ledger,
) -> None:
    over = ledger.tmp / "over.json"
    over.write_bytes(padded(ledger.document(), SUBMISSION_BYTES_MAX + 1))
    assert_clean_error(submit(ledger, over), "limit-exceeded", str(SUBMISSION_BYTES_MAX))
    at_limit = ledger.tmp / "at-limit.json"
    at_limit.write_bytes(padded(ledger.document(), SUBMISSION_BYTES_MAX))
    accepted = submit(ledger, at_limit)
    assert accepted.returncode == 0, accepted.stderr[-2000:]
    assert set(json.loads(accepted.stdout)) == {"seq", "leaf_hash"}


def test_stdin_is_read_up_to_the_limit(ledger: Ledger) -> None:
    over = padded(ledger.document(), SUBMISSION_BYTES_MAX + 1)
    assert_clean_error(submit(ledger, "-", stdin=over), "limit-exceeded", "standard input")
    huge = padded(ledger.document(), 8 * SUBMISSION_BYTES_MAX)
    assert_clean_error(submit(ledger, "-", stdin=huge), "limit-exceeded", "standard input")
    accepted = submit(ledger, "-", stdin=padded(ledger.document(), SUBMISSION_BYTES_MAX))
    assert accepted.returncode == 0, accepted.stderr[-2000:]


# --- seqs and tree sizes beyond the proof limit and int64 --------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["proof", "inclusion", str(INT64_MAX)],
        ["proof", "inclusion", str(INT64_MAX + 1)],
        ["proof", "inclusion", "0", "--tree-size", str(INT64_MAX)],
        ["proof", "inclusion", "0", "--tree-size", str(2**64)],
        ["proof", "consistency", "1", str(INT64_MAX)],
        ["proof", "consistency", str(2**70), "1"],
    ],
    ids=lambda args: " ".join(args)[:40],
)
def test_seqs_and_sizes_beyond_the_limit_are_refused(ledger: Ledger, args: list[str]) -> None:
    assert_clean_error(run(ledger, *args, "--db", ledger.db), "limit-exceeded", "at most")


def test_a_db_that_is_not_a_database(ledger: Ledger) -> None:
    text = ledger.tmp / "notes.txt"
    text.write_text("these are notes, not a database\n" * 200)
    url = f"sqlite:///{text}"
    assert_clean_error(run(ledger, "checkpoint", "--db", url), "database", "not a database")
    assert_clean_error(run(ledger, "proof", "inclusion", "0", "--db", url), "not a database")
    path = ledger.tmp / "doc.json"
    path.write_text(json.dumps(ledger.document()))
    assert_clean_error(
        run(ledger, "submit", str(path), "--db", url, "--keys", str(ledger.keys)), "not a database"
    )


# --- negative arguments ------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["proof", "inclusion", "--", "-1"],
        ["proof", "inclusion", "0", "--tree-size", "-1"],
        ["proof", "consistency", "--", "-1", "1"],
        ["proof", "consistency", "--", "1", "-5"],
        ["demo", "--days", "-1"],
        ["demo", "--merchants", "-5"],
        ["bench", "append", "--entries", "-1"],
        ["bench", "proofs", "--entries", "-5"],
        ["bench", "proofs", "--samples", "-1"],
    ],
    ids=" ".join,
)
def test_negative_arguments_are_refused_clearly(ledger: Ledger, args: list[str]) -> None:
    if args[0] == "proof":
        args = [args[0], args[1], "--db", ledger.db, *args[2:]]
    negative = next(arg for arg in args if arg.startswith("-") and arg[1:].isdigit())
    line = assert_clean_error(run(ledger, *args), "malformed", "must be at least")
    assert line.endswith(f"not {negative}")
