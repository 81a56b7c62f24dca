"""`alliance audit DIR`: verify an export from the log alone, as an outside auditor would.

It trusts nothing but ``trust.json`` (the out-of-band trust root) and checks that
* the checkpoint is signed by the operator key the log declared for its size, and the
  trusted log key is one the log declared: the genesis key, or a key an
  ``operator.keys_changed`` (signed by the key before it and every region) handed over to;
* every line of ``entries.jsonl`` is a canonical (RFC 8785) record whose seq is its
  line number, no longer than a leaf may be, and the tree over them has the
  checkpoint's size and root;
* no entry id is logged twice: the same signed entry at two seqs is a finding, and the
  second is not applied (a copied return must not double a receipt or an obligation);
* replaying every entry through the alliance's rules (ledger.state.admit) accepts it:
  each signature by a key its principal held at that point, each required signer
  present, every business rule (windows, refunds per receipt, endorsement rights, …);
* after the replay, the trust root lists exactly the witnesses the log declared (its
  regions, whether from the genesis or joined later), each with the declared key, and
  the checkpoint carries a valid cosignature by every one of them. A trust root that
  lists fewer witnesses cannot lower the quorum: every declared witness is required.

The export may be hostile: every file must be a regular file (a FIFO or a device is
refused without blocking on it), the checkpoint and trust root are read up to their
named limits, and ``entries.jsonl`` is read line by line with a bound, so a line longer
than a leaf is a finding and is skipped without being held in memory.

It streams the file (memory holds the frontier tiles, the projections and the entry
ids, not the log) and reports every finding with its seq rather than stopping at the
first.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from pathlib import Path
from typing import Any, BinaryIO, Protocol

import orjson

import ledger.kinds  # noqa: F401  (registers every kind with ledger.state)
from ledger import merkle
from ledger.calendar import local_date
from ledger.checking import ENTRY_START, Checked, Verdict, checked_chunks, leaf_hashes
from ledger.collector import collection_deferred
from ledger.export import CHECKPOINT_FILE, ENTRIES_FILE, REPORTS_DIR, TRUST_FILE
from ledger.rows import KeyRow, RegionRow, Row
from ledger.spill import Spill
from ledger.state import (
    OPERATOR,
    Context,
    State,
    admit,
    leaf_context,
    make_context,
    operator_keys_at,
)
from schemas.canonical import canonical, parse_json
from schemas.entry import parse_record, parse_time
from schemas.errors import (
    AllianceError,
    MalformedError,
    NotFoundError,
    PolicyError,
    RejectedError,
    VerificationError,
)
from schemas.files import FileRefused, open_regular
from schemas.limits import (
    AUDIT_CHUNK_LINES,
    AUDIT_SPILL_BYTES_MIN,
    CHECKPOINT_FILE_BYTES_MAX,
    FINDINGS_MAX,
    IMPORT_CHUNK_BYTES_MAX,
    INTEGRATE_CHUNK,
    LINE_BYTES_MAX,
    SKIP_CHUNK_BYTES,
    TRUST_FILE_BYTES_MAX,
)
from signing.checkpoint import (
    Checkpoint,
    CosignatureVerifier,
    open_checkpoint,
    verify_cosigned_checkpoint,
)
from signing.note import NoteVerifier


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
    # The checkpoint text as it was read and audited (None: not UTF-8): an import stores
    # these very bytes rather than reading the file again.
    checkpoint_note: str | None = None
    cosigned_by: list[str] = field(default_factory=list)
    witnesses_declared: list[str] = field(default_factory=list)  # region codes, all required
    findings: list[Finding] = field(default_factory=list)
    state: State = field(default_factory=State)
    # Where the replay paged its growing rows (ledger.spill); removed by close() (or when
    # the report is collected).
    spill: Spill | None = field(default=None, repr=False, compare=False)

    def close(self) -> None:
        if self.spill is not None:
            self.spill.close()

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


# --- reading hostile files ---------------------------------------------------------------


def open_export_file(path: Path, what: str) -> BinaryIO:
    """``path`` opened for reading if it is a regular file (schemas.files: links are
    followed, since an auditor may link an export's files, but what they lead to must be
    a regular file; no device is ever opened, and a FIFO is refused at once)."""
    try:
        fd, _ = open_regular(path)
    except FileRefused as exc:
        if exc.missing:
            raise NotFoundError(f"the export has no {what} ({path})") from exc
        raise MalformedError(f"the {what}: {exc.reason}") from exc
    return os.fdopen(fd, "rb")


def read_export_file(path: Path, what: str, limit_bytes: int) -> bytes:
    """The whole of a regular file of at most ``limit_bytes``; never reads more."""
    with open_export_file(path, what) as handle:
        try:
            data = handle.read(limit_bytes + 1)
        except OSError as exc:
            raise MalformedError(f"cannot read the {what} {path}: {exc.strerror}") from exc
    if len(data) > limit_bytes:
        raise MalformedError(f"the {what} {path} is over {limit_bytes} bytes")
    return data


@dataclass(frozen=True, slots=True)
class Overlong:
    """A line of ``entries.jsonl`` over LINE_BYTES_MAX: never held, only measured and
    hashed as it streamed past (so the tree still counts it as one leaf)."""

    length_bytes: int
    leaf_hash: bytes


# A chunk of the entries file's lines (an overlong one stands in for its line) and the
# workers' verdicts on them (ledger.checking).
CheckedChunk = tuple[list[bytes | Overlong], Checked]


def read_lines(handle: BinaryIO) -> Iterator[bytes | Overlong]:
    """Each line of ``handle`` without its newline (the last may lack one), holding at
    most LINE_BYTES_MAX + 1 bytes of a line at a time."""
    while line := handle.readline(LINE_BYTES_MAX + 1):
        if line.endswith(b"\n"):
            yield line[:-1]
        elif len(line) <= LINE_BYTES_MAX:
            yield line  # the last line, at the end of the file
        else:
            yield _skip_overlong(handle, line)


def _skip_overlong(handle: BinaryIO, start: bytes) -> Overlong:
    digest = hashlib.sha256(merkle.LEAF_PREFIX + start)
    length_bytes = len(start)
    while piece := handle.readline(SKIP_CHUNK_BYTES):
        ended = piece.endswith(b"\n")
        piece = piece[:-1] if ended else piece
        digest.update(piece)
        length_bytes += len(piece)
        if ended:
            break
    return Overlong(length_bytes, digest.digest())


# --- the trust root and the checkpoint --------------------------------------------------


def load_trust(path: Path) -> Trust:
    data = read_export_file(path, "trust root", TRUST_FILE_BYTES_MAX)
    try:
        raw = parse_json(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise MalformedError(f"trust root {path} is not UTF-8 text") from exc
    except MalformedError as exc:
        raise MalformedError(f"trust root {path} is not JSON: {exc.detail}") from exc
    shape = '{"origin": str, "log_key": vkey, "witness_keys": {code: vkey, …}}'
    if not isinstance(raw, dict):
        raise MalformedError(f"trust root {path} must be an object {shape}")
    origin, log_key, witness_keys = raw.get("origin"), raw.get("log_key"), raw.get("witness_keys")
    if not (
        isinstance(origin, str)
        and isinstance(log_key, str)
        and isinstance(witness_keys, dict)
        and all(isinstance(vkey, str) for vkey in witness_keys.values())
    ):
        raise MalformedError(f"trust root {path} must be an object {shape}")
    try:
        log = NoteVerifier.from_vkey(log_key)
        witnesses = {
            code: CosignatureVerifier.from_vkey(vkey) for code, vkey in witness_keys.items()
        }
    except AllianceError as exc:
        raise MalformedError(f"trust root {path}: {exc.detail}") from exc
    return Trust(origin, log, witnesses)


def _read_checkpoint(path: Path, report: AuditReport) -> str | None:
    data = read_export_file(path, "checkpoint", CHECKPOINT_FILE_BYTES_MAX)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        report.add(None, "checkpoint", "the checkpoint is not UTF-8 text")
        return None


@dataclass(frozen=True, slots=True)
class Opened:
    """The checkpoint and the operator key (in force at its size) that signed it."""

    checkpoint: Checkpoint
    verifier: NoteVerifier


def _open_checkpoint(note: str, trust: Trust, report: AuditReport) -> Opened | None:
    """Run after the replay: the checkpoint must be signed by the operator key the log
    declared for its size (ledger.state.operator_keys_at: the genesis key, then each key
    an operator.keys_changed handed over to), and the trusted log key must be one the log
    declared, so the chain of rotations (each signed by the old key and every region)
    leads from the trust root to the key that signed."""
    state = report.state
    declared = _declared_operators(state, trust.origin)
    if trust.log.public.b64 not in {row.pub for row, _ in declared}:
        report.add(0, "trust", "the log never declares the trusted log key")
        report.add(None, "checkpoint", "the checkpoint's key is not vouched for by trust.json")
        return None
    for row, verifier in declared:
        try:
            checkpoint = open_checkpoint(note, verifier)
        except AllianceError:
            continue
        if row not in operator_keys_at(state, checkpoint.size):
            report.add(
                None,
                "checkpoint",
                f"the checkpoint of size {checkpoint.size} is signed by operator key "
                f"{row.key_id}, which the log did not declare for that size",
            )
            return None
        if checkpoint.origin != trust.origin:
            message = f"checkpoint origin {checkpoint.origin} is not {trust.origin}"
            report.add(None, "checkpoint", message)
        report.checkpoint_size = checkpoint.size
        return Opened(checkpoint, verifier)
    report.add(None, "checkpoint", "the checkpoint is signed by no operator key the log declared")
    return None


def _declared_operators(state: State, origin: str) -> list[tuple[KeyRow, NoteVerifier]]:
    """Every operator key the replayed log declared, with its note verifier."""
    rows = sorted(
        (row for row in state.principal_keys.rows() if row.principal == OPERATOR),
        key=lambda row: (row.from_seq, row.key_id),
    )
    return [(row, NoteVerifier.from_public(origin, state.public_key(row))) for row in rows]


def _trusted_declared(trust: Trust, report: AuditReport) -> list[tuple[str, CosignatureVerifier]]:
    """The witnesses the log declared (its regions after the replay) whose key the trust
    root lists identically; a declared witness missing from the trust root, listed with
    another key, or a trusted witness the log never declared, is a finding."""
    declared: dict[str, RegionRow] = {row.code: row for row in report.state.regions.rows()}
    report.witnesses_declared = sorted(declared)
    result = []
    for code, row in sorted(declared.items()):
        trusted = trust.witnesses.get(code)
        where = f"declared at seq {row.joined_seq}"
        if trusted is None:
            report.add(
                row.joined_seq, "trust", f"trust.json omits region {code}'s witness, {where}"
            )
        elif (trusted.name, trusted.public.b64) != (row.witness_name, row.witness_pub):
            report.add(
                row.joined_seq,
                "trust",
                f"trust.json's witness key for region {code} is not the one {where}",
            )
        else:
            result.append((code, trusted))
    for code in sorted(set(trust.witnesses) - set(declared)):
        report.add(None, "trust", f"trust.json lists a witness for region {code}, not in the log")
    return result


def _check_witnesses(note: str | None, trust: Trust, report: AuditReport) -> Opened | None:
    """The checkpoint verifies (_open_checkpoint) and every declared witness cosigned it,
    with its declared key (which the trust root must list). Run after the replay: regions
    may join later and the operator key may change."""
    if not report.state.has_genesis:
        report.add(None, "genesis", "the log has no valid genesis to declare its witnesses")
        return None
    if report.state.origin != trust.origin:
        message = f"the genesis declares origin {report.state.origin}, trust.json {trust.origin}"
        report.add(0, "trust", message)
    required = _trusted_declared(trust, report)
    opened = None if note is None else _open_checkpoint(note, trust, report)
    if note is None or opened is None:
        return None  # already a finding; cosignatures of an unverified checkpoint mean nothing
    try:
        _, cosigned = verify_cosigned_checkpoint(note, opened.verifier, [v for _, v in required])
    except AllianceError as exc:
        report.add(None, "checkpoint", f"a cosignature does not verify: {exc.detail}")
        return opened
    for code, verifier in required:
        if verifier.name in cosigned:
            report.cosigned_by.append(code)
        else:
            report.add(
                None, "witness", f"checkpoint lacks the cosignature of region {code}'s witness"
            )
    return opened


# --- the entries ---------------------------------------------------------------------------


def _check_canonical(index: int, record: dict[str, Any], line: bytes, report: AuditReport) -> None:
    try:
        if canonical(record) == line:
            return
        detail = "leaf is not in RFC 8785 canonical form"
    except MalformedError as exc:  # parsed JSON that has no canonical form (a lone surrogate)
        detail = f"leaf has no RFC 8785 canonical form: {exc.detail}"
    report.add(index, "canonical", detail)


def entry_id_key(entry_id: str) -> bytes | str:
    """A UUID as its 16 bytes (a third of the string's memory), anything else as is."""
    try:
        return bytes.fromhex(entry_id.replace("-", "")) if len(entry_id) == 36 else entry_id
    except ValueError:
        return entry_id


NightReport = tuple[str, int, bytes]  # (day, seq of its closing entry, the report's bytes)


class Sink(Protocol):
    """Where an import stores the log as the replay judges it (ledger.restore), so that
    the export is read once: at each integration of the tree, the lines integrated (in
    seq order), their leaf hashes, the integration's tiles and nodes, and each night
    report the replay recomputed from those lines. Called only while the audit has no
    finding (an import of an export with one is refused and rolled back). ``changed``:
    by table, every projection row the replay changed since the last integration, with
    its version (the state's newest versions are the replay's projections)."""

    def integrated(
        self,
        lines: list[bytes],
        hashes: list[bytes],
        integration: merkle.Integration,
        reports: list[NightReport],
        changed: list[tuple[str, list[tuple[Row, int]]]],
    ) -> None: ...


class Replay:
    """Checks each leaf of ``entries.jsonl`` in order, replays it into ``report.state``
    and grows the tree over the leaf hashes."""

    def __init__(
        self,
        report: AuditReport,
        trust: Trust,
        reports_dir: Path,
        spill: Spill | None = None,
        sink: Sink | None = None,
    ) -> None:
        self.report = report
        # An import's store of the lines and tiles, and what it has not been handed yet.
        self.sink = sink
        self.sink_lines: list[bytes] = []
        self.sink_bytes = 0  # of sink_lines: a chunk is handed over at IMPORT_CHUNK_BYTES_MAX
        self.sink_reports: list[NightReport] = []
        # Paged rows and entry ids on disk (ledger.spill), for a replay of any length.
        self.spill = spill
        if spill is not None:
            report.state.attach(spill)
        self.trust = trust
        # The root at each business day's end (a night's cutoff is one): one per day.
        self.day_roots: dict[int, bytes] = {}
        self.reports_dir = reports_dir
        self.nights: set[str] = set()  # the days whose report the replay recomputed
        report.state.tree_root = self._root_at
        # The seq where each entry id was first logged, in memory (~100 bytes an entry).
        self.first_seq: dict[bytes | str, int] = {}
        self.count = 0
        self.size = 0
        self.root = merkle.EMPTY_ROOT
        self.frontier: dict[tuple[int, int], bytes] = {}
        self.pending: list[bytes] = []
        self._last_day: tuple[str, date] = ("", date.min)  # a logged text and its local day

    def add(
        self, line: bytes | Overlong, verdict: Verdict | None = None, leaf: bytes | None = None
    ) -> None:
        """Judge the next line; ``verdict`` is its workers' check (ledger.checking),
        None for the serial path; ``leaf`` its leaf hash when a worker computed it."""
        index = self.count
        self.count += 1
        if isinstance(line, Overlong):
            limit = f"the {LINE_BYTES_MAX}-byte limit of a leaf"
            message = f"line {index + 1} is {line.length_bytes} bytes, over {limit}"
            self.report.add(index, "too-long", message)
            self._pass_over(None)
            self.pending.append(line.leaf_hash)
            self.sink = None  # a finding: nothing more is stored (the import is refused)
        else:
            if verdict is None:
                self._replay(index, line)
            else:
                self._replay_checked(index, line, verdict)
            self.pending.append(merkle.leaf_hash(line) if leaf is None else leaf)
            if self.sink is not None:
                self.sink_lines.append(line)
                self.sink_bytes += len(line)
        if len(self.pending) >= INTEGRATE_CHUNK or self.sink_bytes >= IMPORT_CHUNK_BYTES_MAX:
            self._integrate()  # early for an import's long lines: its memory stays bounded

    def finish(self) -> None:
        if self.pending:
            self._integrate()
        if self.spill is not None:
            self.spill.flush()  # its last write: an error of it is the audit's

    def _pass_over(self, logged: str | None) -> None:
        """Count a leaf the state does not apply: later entries keep their seqs."""
        self.report.state.size += 1
        if logged is not None:
            self.report.state.last_logged = logged

    def _replay(self, index: int, line: bytes) -> None:
        """The serial path: every check in this process."""
        report = self.report
        try:
            record, model = parse_record(line)
        except MalformedError as exc:
            report.add(index, "malformed", f"line {index + 1} is not a record: {exc.detail}")
            self._pass_over(None)
            return
        self._check_seq(index, model.seq)
        _check_canonical(index, record, line, report)
        if not self._judge_position(index, model.logged, model.entry["id"]):
            return
        try:
            # The one reading of a leaf into a context (the writer's catch-up, rebuild,
            # doctor and the nodes use it too).
            ctx = leaf_context(line)
            if ctx.seq != index:  # a gap, reported above: judged where it stands
                ctx = replace(ctx, seq=index)
        except RejectedError as exc:
            self._refused(index, model.entry["kind"], model.logged, exc)
            return
        self._admit(index, model.entry["kind"], ctx, frozenset())

    def _replay_checked(self, index: int, line: bytes, verdict: Verdict) -> None:
        """A line a worker vouched for (ledger.checking): it is a canonical record, so
        the plain parse gives what parse_record() gives and the entry's canonical bytes
        are a slice of the line; the signatures it verified are not verified again."""
        entry_end, verified = verdict
        record = orjson.loads(line)
        entry, logged = record["entry"], record["logged"]
        try:
            logged_at = parse_time(logged, field="logged")
        except RejectedError:  # the shape allows it, the calendar does not: judged
            self._replay(index, line)  # as the serial path judges it
            return
        self._check_seq(index, record["seq"])
        if not self._judge_position(index, logged, entry["id"], logged_at):
            return
        try:
            ctx = make_context(
                index,
                logged_at,
                logged,
                entry,
                record["signatures"],
                entry_bytes=line[ENTRY_START:entry_end],
            )
        except RejectedError as exc:
            self._refused(index, entry["kind"], logged, exc)
            return
        self._admit(index, entry["kind"], ctx, frozenset(verified))

    def _check_seq(self, index: int, seq: int) -> None:
        if seq != index:
            self.report.add(index, "gap", f"line {index + 1} holds seq {seq}, expected {index}")

    def _judge_position(
        self, index: int, logged: str, entry_id: str, logged_at: datetime | None = None
    ) -> bool:
        """The logged order, the day's end and the entry id's first use; False
        when the entry is a duplicate, counted and passed over. ``logged_at`` is
        ``logged`` parsed, when the caller has it."""
        report = self.report
        previous = report.state.last_logged
        if previous is not None and logged < previous:
            # RFC 3339 UTC texts in the writer's one form compare as their times do.
            report.add(index, "logged-order", f"logged {logged} is before {previous}")
        if previous is not None:
            day = local_date(logged_at if logged_at is not None else parse_time(logged))
            if day > self._day_of(previous):
                self._integrate()  # the tree now holds exactly the entries before this day
                self.day_roots[index] = self.root
            self._last_day = (logged, day)  # the next entry's previous, most of the time
        key = entry_id_key(entry_id)
        if self.spill is None:
            first = self.first_seq.setdefault(key, index)
        else:
            first = self.spill.first_seq(key, index)
        if first != index:
            message = f"entry {entry_id} was already logged at seq {first}; not applied twice"
            report.add(index, "duplicate-id", message)
            self._pass_over(logged)
            return False
        return True

    def _day_of(self, logged: str) -> date:
        """The local day of a logged time: the last entry's, remembered, else parsed."""
        text, day = self._last_day
        return day if text == logged else local_date(parse_time(logged))

    def _refused(self, index: int, kind: str, logged: str, exc: RejectedError) -> None:
        self.report.add(index, exc.type_slug, f"{kind}: {exc.detail}")
        self._pass_over(logged)  # keep going: later entries are judged at their seqs

    def _admit(self, index: int, kind: str, ctx: Context, verified: frozenset[int]) -> None:
        report = self.report
        try:
            admit(report.state, ctx, verified=verified)
        except RejectedError as exc:
            self._refused(index, kind, ctx.logged_text, exc)
        for day, seq, recomputed in report.state.reports:
            self._compare_report(day, seq, recomputed)
            if self.sink is not None:  # the exported bytes, when no finding was made
                self.sink_reports.append((day, seq, recomputed))
        report.state.reports.clear()

    def _root_at(self, size: int) -> bytes:
        """The root at a business day's end (the only sizes a night's cutoff can be)."""
        if size == self.size and not self.pending:
            return self.root
        root = self.day_roots.get(size)
        if root is None:
            raise PolicyError(f"no business day ends at tree size {size}", field="body.cutoff")
        return root

    def _compare_report(self, day: str, seq: int, recomputed: bytes) -> None:
        """The exported report of ``day`` must be, byte for byte, the one the replay
        recomputed from the log."""
        self.nights.add(day)
        path = self.reports_dir / f"{day}.json"
        try:
            with open_export_file(path, f"report of {day}") as handle:
                exported = handle.read(len(recomputed) + 1)
        except AllianceError as exc:
            self.report.add(seq, "report-missing", f"the night of {day}: {exc.detail}")
            return
        if exported != recomputed:
            message = f"reconciliations/{day}.json is not the report the log gives"
            self.report.add(seq, "report-mismatch", message)

    def _integrate(self) -> None:
        if not self.pending:
            # A day that ends right after a full chunk: the tree already holds every
            # entry, and an import's sink is handed no empty chunk.
            return
        result = merkle.integrate(self.size, self.frontier, self.pending)
        merged = {**self.frontier, **result.tiles}
        keep = merkle.frontier_tile_keys(result.size)
        self.size, self.root = result.size, result.root
        self.frontier = {key: merged[key] for key in keep}
        if self.sink is not None and not self.report.ok:
            self.sink = None  # a finding: the import is refused, nothing more is stored
        if self.sink is None:
            self.sink_lines, self.sink_reports = [], []  # never to be handed over
        state = self.report.state
        taken: dict[str, list[tuple[Row, int]]] | None = None
        if self.sink is not None:
            taken = {table.name: table.take_changed() for table in state.all_tables()}
            changed = list(taken.items())
            self.sink.integrated(self.sink_lines, self.pending, result, self.sink_reports, changed)
            self.sink_lines, self.sink_reports = [], []
        self.sink_bytes = 0
        self.pending = []
        # An audit stores nothing as it goes (the sets of changed keys would only grow);
        # an import's sink has just been handed the changes. Spilled, the paged rows go
        # to the file and leave memory.
        if self.spill is None:
            state.forget_changes()
        else:
            self.spill.store(state, taken)
        # Automatic collection is held for the replay (_replay_file): the garbage of
        # the entries since the last chunk is collected here, once, and what survives
        # (the state's rows, which hold no reference cycles) is frozen, so no collection
        # walks them again as they grow (audit_directory unfreezes them at the end).
        # Everything allocated since the last freeze is still in the youngest generation
        # (nothing collected it), so collecting that one is enough; a full collection of
        # the same objects costs five times as much (100 k in memory: 1.95 s, not 0.38).
        gc.collect(0)
        gc.freeze()


def _replay_file(
    path: Path,
    trust: Trust,
    report: AuditReport,
    chunk_lines: int,
    workers: int | None,
    spill: Spill | None,
    sink: Sink | None,
) -> None:
    replay = Replay(report, trust, path.parent / REPORTS_DIR, spill, sink)
    # Automatic collection is held for the replay (ledger.collector): the replay makes
    # tens of container objects per entry, and each automatic full collection walked
    # everything not frozen yet (8 % of a spilled million-entry audit); _integrate
    # collects once a chunk instead.
    with (
        collection_deferred(),
        open_export_file(path, "entries file") as handle,
        # closing: a failure in the replay (an import's store) stops the check workers
        # now, not when the generator is collected.
        contextlib.closing(checked_chunks(read_lines(handle), chunk_lines, workers)) as checked,
    ):
        while (item := _next_chunk(checked, path)) is not None:
            chunk, (verdicts, hashes) = item
            # Outside the read's error handling: an import's store (the sink) may fail
            # with an OSError of its own, which is no fault of the entries file.
            for line, verdict, leaf in zip(
                chunk, verdicts, leaf_hashes((verdicts, hashes)), strict=True
            ):
                replay.add(line, verdict, leaf)
    replay.finish()
    report.size, report.root = replay.size, replay.root
    _check_no_other_reports(replay.reports_dir, replay.nights, report)


def _next_chunk(checked: Iterator[CheckedChunk], path: Path) -> CheckedChunk | None:
    """The next chunk of lines with its verdicts, None at the end; a read error of the
    file is a MalformedError that says so."""
    try:
        return next(checked, None)
    except OSError as exc:
        raise MalformedError(f"cannot read the entries file {path}: {exc.strerror}") from exc


def _check_no_other_reports(folder: Path, nights: set[str], report: AuditReport) -> None:
    """A report file of a night the log does not hold is a finding (a forged night)."""
    try:
        names = sorted(entry.name for entry in os.scandir(folder))
    except FileNotFoundError:
        return
    except OSError as exc:
        raise MalformedError(f"cannot list {folder}: {exc.strerror}") from exc
    for name in names:
        if name.removesuffix(".json") not in nights:
            report.add(None, "report-extra", f"reconciliations/{name} is no night of the log")


def audit_directory(
    directory: Path,
    *,
    chunk_lines: int = AUDIT_CHUNK_LINES,
    workers: int | None = None,
    spill: bool | None = None,
    sink: Sink | None = None,
) -> AuditReport:
    """Audit the export in ``directory``. Lines are checked ``chunk_lines`` at a time,
    by ``workers`` processes (default: one per core) when the log holds more than one
    chunk (ledger.checking); the findings are the same for any chunk size and count.
    ``sink``: an import's store, handed the lines and tiles as the replay integrates
    them while the audit has no finding (Sink)."""
    report = AuditReport()
    trust = load_trust(directory / TRUST_FILE)
    note = _read_checkpoint(directory / CHECKPOINT_FILE, report)
    report.checkpoint_note = note
    try:
        entries = directory / ENTRIES_FILE
        if spill is None:
            spill = _entries_bytes(entries) > AUDIT_SPILL_BYTES_MIN
        report.spill = Spill() if spill else None
        _replay_file(entries, trust, report, chunk_lines, workers, report.spill, sink)
    except BaseException:
        report.close()  # the spill file: the caller gets no report to close
        raise
    finally:
        gc.unfreeze()
    opened = _check_witnesses(note, trust, report)
    if opened is not None:
        _compare(opened.checkpoint, report.size, report.root, report)
    return report


def _entries_bytes(path: Path) -> int:
    """The size of the entries file (0 if it cannot be stat'ed: opening it says why)."""
    try:
        return path.stat().st_size
    except OSError:
        return 0


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
