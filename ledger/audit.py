"""`alliance audit DIR`: verify an export from the log alone, as an outside auditor would.

It trusts nothing but ``trust.json`` (the out-of-band trust root) and checks that
* the checkpoint is signed by the log key, and cosigned by every region's witness;
* every line of ``entries.jsonl`` is a canonical (RFC 8785) record whose seq is its
  line number, and the tree over them has the checkpoint's size and root;
* the genesis declares the trusted log key and witness keys;
* replaying every entry through the alliance's rules (ledger.state.admit) accepts it:
  each signature by a key its principal held at that point, each required signer
  present, every business rule (windows, refunds per receipt, endorsement rights, …).

It streams the file (memory holds the frontier tiles and the projections, not the log)
and reports every finding with its seq rather than stopping at the first.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ledger.kinds  # noqa: F401  (registers every kind with ledger.state)
from ledger import merkle
from ledger.export import CHECKPOINT_FILE, ENTRIES_FILE, TRUST_FILE
from ledger.state import State, admit, make_context
from schemas.canonical import canonical
from schemas.entry import parse_record, parse_time
from schemas.errors import AllianceError, MalformedError, RejectedError, VerificationError
from signing.checkpoint import Checkpoint, CosignatureVerifier, verify_cosigned_checkpoint
from signing.note import NoteVerifier

FINDINGS_MAX = 1000  # beyond this an export is plainly broken; stop listing
INTEGRATE_CHUNK = 4096  # leaves hashed into the tree at a time


@dataclass(frozen=True, slots=True)
class Finding:
    seq: int | None
    code: str
    message: str

    def wire(self) -> dict[str, object]:
        return {"seq": self.seq, "code": self.code, "message": self.message}

    def __str__(self) -> str:
        where = f"seq {self.seq}" if self.seq is not None else "log"
        return f"{where}: [{self.code}] {self.message}"


@dataclass
class AuditReport:
    size: int = 0
    root: bytes = b""
    checkpoint_size: int | None = None
    cosigned_by: list[str] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    state: State = field(default_factory=State)

    @property
    def ok(self) -> bool:
        return not self.findings

    def add(self, seq: int | None, code: str, message: str) -> None:
        if len(self.findings) < FINDINGS_MAX:
            self.findings.append(Finding(seq, code, message))


@dataclass(frozen=True, slots=True)
class Trust:
    origin: str
    log: NoteVerifier
    witnesses: dict[str, CosignatureVerifier]


def load_trust(path: Path) -> Trust:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        log = NoteVerifier.from_vkey(str(raw["log_key"]))
        witnesses = {
            str(code): CosignatureVerifier.from_vkey(str(vkey))
            for code, vkey in dict(raw["witness_keys"]).items()
        }
        return Trust(str(raw["origin"]), log, witnesses)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise MalformedError(f"trust root {path} unreadable: {exc}") from exc


def _check_checkpoint(note: str, trust: Trust, report: AuditReport) -> Checkpoint | None:
    try:
        checkpoint, cosigned = verify_cosigned_checkpoint(
            note, trust.log, list(trust.witnesses.values())
        )
    except AllianceError as exc:
        report.add(None, "checkpoint", f"checkpoint does not verify: {exc.detail}")
        return None
    if checkpoint.origin != trust.origin:
        report.add(
            None, "checkpoint", f"checkpoint origin {checkpoint.origin} is not {trust.origin}"
        )
    report.checkpoint_size = checkpoint.size
    for code, verifier in sorted(trust.witnesses.items()):
        if verifier.name in cosigned:
            report.cosigned_by.append(code)
        else:
            report.add(
                None, "witness", f"checkpoint lacks the cosignature of region {code}'s witness"
            )
    return checkpoint


def _lines(path: Path) -> Iterator[bytes]:
    with path.open("rb") as handle:
        for line in handle:
            yield line[:-1] if line.endswith(b"\n") else line


def _check_genesis(record: dict[str, Any], trust: Trust, report: AuditReport) -> None:
    body = record["entry"].get("body", {})
    operator_pubs = {key.get("pub") for key in body.get("operator_keys", [])}
    if trust.log.public.b64 not in operator_pubs:
        report.add(0, "trust", "the genesis does not declare the trusted log key")
    witnesses = {str(r.get("code")): r.get("witness", {}) for r in body.get("regions", [])}
    for code, verifier in trust.witnesses.items():
        declared = witnesses.get(code, {})
        if declared.get("name") != verifier.name or declared.get("pub") != verifier.public.b64:
            report.add(0, "trust", f"the genesis does not declare region {code}'s trusted witness")


def _replay_line(index: int, line: bytes, report: AuditReport, trust: Trust) -> bytes | None:
    """Check one leaf and replay it; returns its leaf hash (None when unparseable)."""
    state = report.state
    try:
        record, model = parse_record(line)
    except MalformedError as exc:
        report.add(index, "malformed", f"line {index + 1} is not a record: {exc.detail}")
        state.size += 1
        return merkle.leaf_hash(line)
    if canonical(record) != line:
        report.add(index, "canonical", "leaf is not in RFC 8785 canonical form")
    if model.seq != index:
        report.add(index, "gap", f"line {index + 1} holds seq {model.seq}, expected {index}")
    if index == 0:
        _check_genesis(record, trust, report)
    try:
        logged = parse_time(model.logged, field="logged")
        ctx = make_context(index, logged, model.logged, record["entry"], record["signatures"])
        admit(state, ctx)
    except RejectedError as exc:
        report.add(index, exc.type_slug, f"{record['entry'].get('kind')}: {exc.detail}")
        state.size += 1  # keep going: later entries are judged at their own seqs
        state.last_logged = model.logged
    return merkle.leaf_hash(line)


def audit_directory(directory: Path) -> AuditReport:
    report = AuditReport()
    trust = load_trust(directory / TRUST_FILE)
    try:
        note = (directory / CHECKPOINT_FILE).read_text(encoding="utf-8")
    except OSError as exc:
        raise MalformedError(f"cannot read the checkpoint: {exc.strerror}") from exc
    checkpoint = _check_checkpoint(note, trust, report)
    frontier: dict[tuple[int, int], bytes] = {}
    pending: list[bytes] = []
    size = 0
    root = merkle.EMPTY_ROOT
    for index, line in enumerate(_lines(directory / ENTRIES_FILE)):
        leaf_hash = _replay_line(index, line, report, trust)
        pending.append(leaf_hash if leaf_hash is not None else merkle.leaf_hash(line))
        if len(pending) >= INTEGRATE_CHUNK:
            size, root, frontier = _integrate(size, frontier, pending)
            pending = []
    if pending:
        size, root, frontier = _integrate(size, frontier, pending)
    report.size, report.root = size, root
    if checkpoint is not None:
        _compare(checkpoint, size, root, report)
    return report


def _integrate(
    size: int, frontier: dict[tuple[int, int], bytes], leaves: list[bytes]
) -> tuple[int, bytes, dict[tuple[int, int], bytes]]:
    result = merkle.integrate(size, frontier, leaves)
    merged = {**frontier, **result.tiles}
    keep = merkle.frontier_tile_keys(result.size)
    return result.size, result.root, {key: merged[key] for key in keep}


def _compare(checkpoint: Checkpoint, size: int, root: bytes, report: AuditReport) -> None:
    if size != checkpoint.size:
        report.add(
            min(size, checkpoint.size),
            "size",
            f"entries.jsonl holds {size} leaves, the checkpoint commits to {checkpoint.size}",
        )
    elif root != checkpoint.root:
        report.add(None, "root", "the root of entries.jsonl is not the checkpoint's root")


__all__ = ["AuditReport", "Finding", "VerificationError", "audit_directory"]
