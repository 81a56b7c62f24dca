"""The `alliance` command line (DESIGN §7) on a temporary SQLite ledger: output shapes,
exit codes, and one-line errors without tracebacks."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from ledger import merkle
from ledger.db import make_engine
from ledger.export import ENTRIES_FILE
from ops.cli import app
from ops.world import EntryFactory, Keyring, ReturnItem, entry_time, receipt_wire, return_body
from schemas.entry import parse_record
from signing.checkpoint import Checkpoint
from signing.keys import b64decode
from tests.dbtools import enroll_doc, snapshot, uscc

REGIONS = ("31", "32", "33", "34")


@dataclass
class Cli:
    runner: CliRunner
    db: str
    keys: Path
    tmp: Path

    def __call__(self, *args: str, input: str | bytes | None = None) -> Result:
        return self.runner.invoke(app, [*args], input=input)

    def ok(self, *args: str, input: str | bytes | None = None) -> Result:
        result = self(*args, input=input)
        assert result.exit_code == 0, (result.output, result.exception)
        return result

    def json(self, *args: str, input: str | bytes | None = None) -> Any:
        return json.loads(self.ok(*args, "--db", self.db, input=input).stdout)

    def document(self, serial: int) -> dict[str, Any]:
        """A member.enrolled signed with region:31's key from the keys folder."""
        ring = Keyring.load(self.keys)
        return enroll_doc(ring, EntryFactory(), uscc("31", serial), datetime.now(UTC))

    def submit(self, document: dict[str, Any]) -> Any:
        path = self.tmp / f"{document['entry']['id']}.json"
        path.write_text(json.dumps(document, ensure_ascii=False))
        return self.json("submit", str(path), "--keys", str(self.keys))

    def cosign_all(self) -> None:
        for code in REGIONS:
            key = self.keys / f"region-{code}.witness.pem"
            self.json("witness", "--region", code, "--key", str(key))


def assert_clean_error(result: Result, *fragments: str) -> None:
    """Exit 1, one line on stderr naming the problem, nothing on stdout, no traceback."""
    assert result.exit_code == 1, (result.output, result.exception)
    assert isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error ")
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    assert result.stdout == ""


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    db = f"sqlite:///{tmp_path / 'cli.db'}"
    keys = tmp_path / "keys"
    runner = CliRunner()
    result = runner.invoke(app, ["init", "--db", db, "--keys", str(keys)])
    assert result.exit_code == 0, (result.output, result.exception)
    initialized = json.loads(result.stdout)
    assert initialized["seq"] == 0
    assert initialized["regions"] == list(REGIONS)
    return Cli(runner, db, keys, tmp_path)


def test_init_writes_every_principals_key_file(cli: Cli) -> None:
    names = sorted(path.name for path in cli.keys.glob("*.pem"))
    expected = ["operator.pem"] + [f"region-{c}.pem" for c in REGIONS]
    expected += [f"region-{c}.witness.pem" for c in REGIONS]
    assert names == sorted(expected)
    snap = snapshot(make_engine(cli.db))
    assert snap.head == 1 and len(snap.cosignatures) == 4


def test_init_twice_is_refused(cli: Cli) -> None:
    result = cli("init", "--db", cli.db, "--keys", str(cli.tmp / "other-keys"))
    assert_clean_error(result, "already-initialised", "already holds")


def test_submit_a_file_and_stdin(cli: Cli) -> None:
    first = cli.submit(cli.document(1))
    assert set(first) == {"seq", "leaf_hash"} and first["seq"] == 1
    document = cli.document(2)
    second = cli.json("submit", "-", "--keys", str(cli.keys), input=json.dumps(document).encode())
    assert second["seq"] == 2
    snap = snapshot(make_engine(cli.db))
    assert b64decode(first["leaf_hash"]) == snap.entries[1].leaf_hash
    assert b64decode(second["leaf_hash"]) == snap.entries[2].leaf_hash
    # The same document again: the same seq and leaf, nothing appended.
    assert cli.submit(document) == second
    assert snapshot(make_engine(cli.db)).head == 3


def _tampered_signature(cli: Cli) -> bytes:
    document = cli.document(3)
    document["entry"]["body"]["member"]["name"] = "changed after signing"
    return json.dumps(document).encode()


def _float(cli: Cli) -> bytes:
    document = cli.document(4)
    text = json.dumps(document)
    return text.replace('"return_days": 7', '"return_days": 7.0').encode()


BAD_INPUTS = {
    "garbage": (lambda cli: b"\x00\xffnot json at all", "malformed"),
    "empty": (lambda cli: b"", "malformed"),
    "array": (lambda cli: b"[1, 2]", "malformed"),
    "duplicate key": (lambda cli: b'{"entry": {}, "entry": {}}', "malformed"),
    "float": (_float, "malformed"),
    "bad signature": (_tampered_signature, "bad-signature"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_submit_refuses_bad_input_in_one_line(cli: Cli, case: str) -> None:
    build, slug = BAD_INPUTS[case]
    data = build(cli)
    path = cli.tmp / "bad.json"
    path.write_bytes(data)
    before = snapshot(make_engine(cli.db))
    for args, stdin in ((["submit", str(path)], None), (["submit", "-"], data)):
        result = cli(*args, "--db", cli.db, "--keys", str(cli.keys), input=stdin)
        assert_clean_error(result, slug)
    assert snapshot(make_engine(cli.db)) == before


def test_submit_a_missing_file(cli: Cli) -> None:
    result = cli("submit", str(cli.tmp / "nope.json"), "--db", cli.db, "--keys", str(cli.keys))
    assert_clean_error(result, "not-found", "nope.json")


def test_a_long_error_message_stays_on_one_line(cli: Cli) -> None:
    document = cli.document(5)
    document["entry"]["time"] = "2020-01-01T00:00:00+08:00"  # far outside the skew
    document["signatures"] = cli.document(5)["signatures"]
    result = cli("submit", "-", "--db", cli.db, "--keys", str(cli.keys), input=json.dumps(document))
    assert_clean_error(result)


def test_proofs_have_the_contract_shape_and_verify(cli: Cli) -> None:
    for serial in range(1, 6):
        cli.submit(cli.document(serial))
    inclusion = cli.json("proof", "inclusion", "3")
    assert set(inclusion) == {"seq", "tree_size", "leaf_hash", "hashes", "root"}
    assert (inclusion["seq"], inclusion["tree_size"]) == (3, 6)
    merkle.verify_inclusion(
        b64decode(inclusion["leaf_hash"]),
        3,
        6,
        [b64decode(h) for h in inclusion["hashes"]],
        b64decode(inclusion["root"]),
    )
    older = cli.json("proof", "inclusion", "3", "--tree-size", "4")
    assert older["tree_size"] == 4 and older["leaf_hash"] == inclusion["leaf_hash"]
    merkle.verify_inclusion(
        b64decode(older["leaf_hash"]),
        3,
        4,
        [b64decode(h) for h in older["hashes"]],
        b64decode(older["root"]),
    )
    consistency = cli.json("proof", "consistency", "4", "6")
    assert set(consistency) == {"old", "new", "hashes", "old_root", "new_root"}
    assert (consistency["old"], consistency["new"]) == (4, 6)
    assert consistency["old_root"] == older["root"]
    assert consistency["new_root"] == inclusion["root"]
    merkle.verify_consistency(
        4,
        6,
        b64decode(consistency["old_root"]),
        b64decode(consistency["new_root"]),
        [b64decode(h) for h in consistency["hashes"]],
    )
    snap = snapshot(make_engine(cli.db))
    assert b64decode(inclusion["root"]) == snap.latest.root
    # Beyond the log: a clean error.
    assert_clean_error(cli("proof", "inclusion", "6", "--db", cli.db), "not-found")
    assert_clean_error(
        cli("proof", "inclusion", "1", "--tree-size", "99", "--db", cli.db), "not-found"
    )
    assert_clean_error(cli("proof", "consistency", "6", "4", "--db", cli.db))


def test_checkpoint_prints_the_signed_note_with_cosignatures(cli: Cli) -> None:
    cli.submit(cli.document(1))
    cli.cosign_all()
    note = cli.ok("checkpoint", "--db", cli.db).stdout
    text, _, signatures = note.rpartition("\n\n")
    checkpoint = Checkpoint.parse(text + "\n")
    snap = snapshot(make_engine(cli.db))
    assert (checkpoint.size, checkpoint.root) == (2, snap.latest.root)
    lines = signatures.splitlines()
    assert len(lines) == 5 and all(line.startswith("— ") for line in lines)
    assert note.endswith("\n")


def test_export_then_audit(cli: Cli) -> None:
    for serial in range(1, 4):
        cli.submit(cli.document(serial))
    cli.cosign_all()
    directory = cli.tmp / "export"
    exported = cli.json("export", str(directory))
    assert exported["size"] == 4 and exported["cosignatures"] == 4
    report = cli.ok("audit", str(directory), "--json")
    summary = json.loads(report.stdout)
    assert summary["ok"] is True and summary["findings"] == []
    assert summary["size"] == 4 and sorted(summary["cosigned_by"]) == list(REGIONS)
    human = cli.ok("audit", str(directory))
    assert "audit passed" in human.stdout

    # Tamper with seq 2: the audit fails and names it.
    lines = (directory / ENTRIES_FILE).read_bytes().split(b"\n")
    record = json.loads(lines[2])
    record["entry"]["body"]["member"]["name"] = "edited"
    lines[2] = json.dumps(record, sort_keys=True, separators=(",", ":")).encode()
    (directory / ENTRIES_FILE).write_bytes(b"\n".join(lines))
    failed = cli("audit", str(directory))
    assert failed.exit_code != 0
    assert "seq 2" in failed.stdout
    assert "Traceback" not in failed.output
    as_json = cli("audit", str(directory), "--json")
    assert as_json.exit_code != 0
    assert 2 in {finding["seq"] for finding in json.loads(as_json.stdout)["findings"]}


def test_import_restores_an_export_and_refuses_a_second_time(cli: Cli) -> None:
    for serial in range(1, 4):
        cli.submit(cli.document(serial))
    cli.cosign_all()
    directory = cli.tmp / "export"
    exported = cli.json("export", str(directory))
    restored = f"sqlite:///{cli.tmp / 'restored.db'}"
    args = ("import", str(directory), "--db", restored, "--keys", str(cli.keys))
    result = json.loads(cli.ok(*args).stdout)
    assert {key: result[key] for key in ("size", "root", "cosignatures", "nights")} == {
        "size": 4,
        "root": exported["root"],
        "cosignatures": 4,
        "nights": 0,
    }
    assert result["seconds"] > 0 and result["entries_per_s"] > 0
    rebuilt = json.loads(cli.ok("rebuild", "--db", restored, "--keys", str(cli.keys)).stdout)
    assert rebuilt["identical"] is True
    assert_clean_error(cli(*args), "already-initialised")


def test_import_of_a_tampered_export_is_a_clean_error(cli: Cli) -> None:
    cli.submit(cli.document(1))
    cli.cosign_all()
    directory = cli.tmp / "export"
    cli.json("export", str(directory))
    (directory / ENTRIES_FILE).write_bytes((directory / ENTRIES_FILE).read_bytes()[:-20])
    restored = cli.tmp / "restored.db"
    result = cli("import", str(directory), "--db", f"sqlite:///{restored}", "--keys", str(cli.keys))
    assert_clean_error(result, "verification-failed", "nothing was written")
    assert not restored.exists()


def test_audit_of_a_missing_folder_is_a_clean_error(cli: Cli) -> None:
    assert_clean_error(cli("audit", str(cli.tmp / "absent")))
    assert_clean_error(cli("audit", "postgresql://somewhere/db"), "config")


def test_rebuild_reports_identical(cli: Cli) -> None:
    for serial in range(1, 4):
        cli.submit(cli.document(serial))
    report = cli.json("rebuild", "--keys", str(cli.keys))
    assert report["identical"] is True
    assert report["entries"] == 4 and report["differing_tables"] == []


@pytest.mark.parametrize(
    "args",
    [
        ["submit", "-"],
        ["proof", "inclusion", "0"],
        ["proof", "consistency", "1", "1"],
        ["checkpoint"],
        ["export", "EXPORT"],
        ["rebuild"],
    ],
    ids=lambda args: "-".join(args[:2]),
)
def test_commands_on_an_uninitialized_database_fail_cleanly(
    tmp_path: Path, args: list[str]
) -> None:
    db = f"sqlite:///{tmp_path / 'typo' / 'empty.db'}"
    args = [str(tmp_path / "export") if arg == "EXPORT" else arg for arg in args]
    runner = CliRunner()
    result = runner.invoke(app, [*args, "--db", db], input=b"{}")
    assert_clean_error(result)
    assert "alliance init" in result.stderr or "not-found" in result.stderr
    assert not (tmp_path / "typo").exists()  # a mistyped path makes no file or folder


def test_a_bad_database_url_is_a_clean_error(tmp_path: Path) -> None:
    runner = CliRunner()
    assert_clean_error(runner.invoke(app, ["checkpoint", "--db", "mysql://x/y"]), "config")
    assert_clean_error(runner.invoke(app, ["checkpoint", "--db", "not a url"]), "config")


def test_database_failures_are_one_line_each(tmp_path: Path) -> None:
    """SQLAlchemy's errors, caught by name once SQLAlchemy is loaded (ops/cli.py loads it
    only with the first command that opens a database): a file that is not a database,
    and a server that does not answer, each one clean line."""
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is not a SQLite file" * 200)
    runner = CliRunner()
    result = runner.invoke(app, ["checkpoint", "--db", f"sqlite:///{garbage}"])
    assert_clean_error(result, "database: file is not a database")
    closed = "postgresql+psycopg://postgres@127.0.0.1:1/test?connect_timeout=2"
    assert_clean_error(runner.invoke(app, ["checkpoint", "--db", closed]), "unreachable")


def test_help_loads_neither_the_ledger_nor_sqlalchemy() -> None:
    """`alliance --help` and a mistyped option answer at once: the ledger, its models and
    SQLAlchemy load with the first command that opens a database."""
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from ops.cli import app\n"
        "result = CliRunner().invoke(app, ['--help'])\n"
        "assert result.exit_code == 0, result.output\n"
        "loaded = [m for m in ('sqlalchemy', 'ledger.app', 'pydantic') if m in sys.modules]\n"
        "print(loaded)\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert run.stdout.strip() == "[]", run.stdout + run.stderr


def test_an_error_naming_user_data_is_not_read_as_markup(cli: Cli) -> None:
    """Error details echo paths and JSON keys; `[/x]` or `[bold]` there must be printed
    as is (Rich markup would swallow them, or crash on an unmatched closing tag)."""
    document = cli.document(6)
    document["[/x]"] = 1
    result = cli("submit", "-", "--db", cli.db, "--keys", str(cli.keys), input=json.dumps(document))
    assert_clean_error(result, "malformed", "[/x]")
    missing = cli.tmp / "[bold]missing.json"
    result = cli("submit", str(missing), "--db", cli.db, "--keys", str(cli.keys))
    assert_clean_error(result, "not-found", "[bold]missing.json")


def test_audit_findings_naming_user_data_are_not_read_as_markup(cli: Cli) -> None:
    directory = cli.tmp / "export"
    cli.json("export", str(directory))
    lines = (directory / ENTRIES_FILE).read_bytes().split(b"\n")
    record = json.loads(lines[0])
    record["[/x]"] = 1
    lines[0] = json.dumps(record, sort_keys=True, separators=(",", ":")).encode()
    (directory / ENTRIES_FILE).write_bytes(b"\n".join(lines))
    result = cli("audit", str(directory))
    assert result.exit_code == 1, result.exception
    assert isinstance(result.exception, SystemExit)
    assert "seq 0" in result.stdout and "[/x]" in result.stdout


# --- init, nodes and doctor ------------------------------------------------------------


def test_init_on_a_database_with_a_ledger_leaves_no_key_behind(cli: Cli) -> None:
    other = cli.tmp / "fresh-keys"
    before = snapshot(make_engine(cli.db))
    result = cli("init", "--db", cli.db, "--keys", str(other))
    assert_clean_error(result, "already-initialised")
    left = sorted(path.name for path in other.iterdir()) if other.exists() else []
    assert not [name for name in left if name.endswith(".pem") or name == "trust.json"], left
    assert snapshot(make_engine(cli.db)) == before
    assert (cli.keys / "operator.pem").exists()  # the first init's keys are untouched


def _cross_region_return(cli: Cli, refund_fen: int) -> int:
    """Enrol a seller in 31 and a buyer in 32, and log the buyer's refund of goods the
    seller sold; returns the return's seq."""
    ring = Keyring.load(cli.keys)
    factory = EntryFactory()
    now = datetime.now(UTC)
    seller, buyer = uscc("31", 1), uscc("32", 1)
    cli.submit(enroll_doc(ring, factory, seller, now, "31"))
    cli.submit(enroll_doc(ring, factory, buyer, now, "32", network=[seller]))
    receipt = receipt_wire(seller, "S1", "R-1", entry_time(now), 10_000)
    body = return_body(receipt, "S1", [ReturnItem("SKU1", "apparel", 1, refund_fen)], now)
    return int(cli.submit(factory.signed(ring, "return.recorded", buyer, body, now))["seq"])


def test_endorse_queues_by_its_rules_and_a_person_approves(cli: Cli) -> None:
    seq = _cross_region_return(cli, 500)
    rules = cli.tmp / "rules.json"
    rules.write_text(json.dumps({"auto_approve_max_fen": 0}))
    node = ["endorse", "--region", "31", "--key", str(cli.keys / "region-31.pem")]
    node += ["--keys", str(cli.keys)]
    before = snapshot(make_engine(cli.db)).head
    ran = cli.json(*node, "--rules", str(rules))
    assert ran == {"region": "31", "approved": 0, "rejected": 0, "queued": [seq]}
    assert snapshot(make_engine(cli.db)).head == before
    listed = cli.json(*node, "--review")
    assert [item["target"] for item in listed["review"]] == [seq]
    assert listed["review"][0]["reasons"] == ["amount 500 fen above 0"]
    refused = cli(*node, "--review", "--reject", str(seq), "--db", cli.db)
    assert_clean_error(refused, "policy-violation", "reason")

    decided = cli.json(*node, "--review", "--approve", str(seq))
    assert (decided["approved"], decided["rejected"]) == (1, 0)
    snap = snapshot(make_engine(cli.db))
    assert snap.head == before + 1
    endorsement = parse_record(snap.entries[before].leaf)[0]["entry"]
    assert (endorsement["kind"], endorsement["signer"]) == ("endorsement", "region:31")
    assert endorsement["body"]["targets"] == [seq]
    proof = cli.json("proof", "inclusion", str(before))
    assert b64decode(proof["leaf_hash"]) == snap.entries[before].leaf_hash
    assert cli.json(*node, "--review")["review"] == []
    # Region 32's node on its default rules approves at once; region 31 has nothing left.
    other = ["endorse", "--region", "32", "--key", str(cli.keys / "region-32.pem")]
    assert cli.json(*other, "--keys", str(cli.keys))["approved"] == 1
    assert cli.json(*node, "--rules", str(rules))["queued"] == []


def test_doctor_on_a_clean_ledger(cli: Cli) -> None:
    _cross_region_return(cli, 500)
    for extra in ([], ["--keys", str(cli.keys)]):
        report = cli.json("doctor", *extra)
        assert report["ok"] is True and report["findings"] == []
        assert report["size"] == snapshot(make_engine(cli.db)).head


def test_witness_reads_the_trust_root_beside_its_key(cli: Cli) -> None:
    trust = json.loads((cli.keys / "trust.json").read_text())
    exported = cli.tmp / "export"
    cli.json("export", str(exported))
    assert trust == json.loads((exported / "trust.json").read_text())
    cli.submit(cli.document(1))
    key = cli.keys / "region-31.witness.pem"
    done = cli.json("witness", "--region", "31", "--key", str(key))
    assert (done["region"], done["size"], done["previous"]) == ("31", 2, 1)
    # Without trust.json beside it the key alone is not enough; --trust names one.
    alone = cli.tmp / "alone"
    alone.mkdir()
    (alone / key.name).write_bytes(key.read_bytes())
    (alone / key.name).chmod(0o600)
    moved = ["witness", "--region", "31", "--key", str(alone / key.name)]
    assert_clean_error(cli(*moved, "--db", cli.db), "not-found", "trust")
    again = cli.json(*moved, "--trust", str(cli.keys / "trust.json"))
    assert (again["size"], again["previous"]) == (2, 2)
    # A trust root naming another witness key for region 31 refuses this key.
    trust["witness_keys"]["31"] = trust["witness_keys"]["32"]
    (alone / "trust.json").write_text(json.dumps(trust))
    assert_clean_error(cli(*moved, "--db", cli.db), "verification-failed")


def test_sigterm_ends_a_command_through_its_finally_blocks() -> None:
    """The CLI turns SIGTERM into SystemExit(143), so a command's cleanup (an import's
    private database file, an audit's spill directory and workers) runs, as on Ctrl-C."""
    code = (
        "import os, signal\n"
        "from ops.cli import _terminated\n"
        "signal.signal(signal.SIGTERM, _terminated)\n"
        "try:\n"
        "    os.kill(os.getpid(), signal.SIGTERM)\n"
        "    signal.pause()\n"  # not reached: the handler raises first
        "finally:\n"
        "    print('cleaned up', flush=True)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 143 and done.stdout == "cleaned up\n"
    assert "Traceback" not in done.stderr
