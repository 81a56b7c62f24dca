"""`alliance audit URL`: the audit of a live log over HTTP, exactly the audit of an
export directory (ledger.audit.audit_directory), run on the files streamed from the log.

With an auditor's signed requests (entry bundles are served to auditors and the
operator only) it fetches the checkpoint, then the entry bundles (C2SP tlog-tiles) of
every leaf it commits to, written line by line to ``entries.jsonl`` in a private
temporary folder (memory holds one bundle), and each closed night's report. The trust
root is the auditor's own ``trust.json``, never the server's. Then the one audit reads
that folder: nothing is verified differently for a URL.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from ledger.audit import AuditReport, audit_directory
from ledger.export import CHECKPOINT_FILE, ENTRIES_FILE, REPORTS_DIR, TRUST_FILE
from nodes.http import HttpClient
from schemas.canonical import canonical, parse_json
from schemas.errors import MalformedError
from schemas.limits import FETCH_LEAVES_MAX
from signing.checkpoint import Checkpoint
from signing.note import parse_note

NIGHT_KIND = "reconciliation.closed"


def audit_url(client: HttpClient, trust: Path) -> AuditReport:
    """Fetch the log at ``client.url`` into a temporary export folder; audit it."""
    folder = Path(tempfile.mkdtemp(prefix="alliance-audit-"))
    try:
        fetch_export(client, trust, folder)
        return audit_directory(folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def fetch_export(client: HttpClient, trust: Path, folder: Path) -> None:
    """Write the export files of the log's current checkpoint into ``folder``."""
    shutil.copyfile(trust, folder / TRUST_FILE)
    note = client.checkpoint()
    text, _ = parse_note(note)
    size = Checkpoint.parse(text).size  # only how many leaves to fetch: the audit verifies
    (folder / CHECKPOINT_FILE).write_text(note, encoding="utf-8")
    nights = folder / REPORTS_DIR
    nights.mkdir()
    with (folder / ENTRIES_FILE).open("wb") as out:
        for start in range(0, size, FETCH_LEAVES_MAX):
            for leaf in client.leaves(start, min(size, start + FETCH_LEAVES_MAX)):
                out.write(leaf + b"\n")
                day = _night_day(leaf)
                if day is not None:
                    report = client.night(day)["report"]
                    (nights / f"{day}.json").write_bytes(canonical(report))


def _night_day(leaf: bytes) -> str | None:
    """The day of a night's closing entry (a cheap look before parsing the leaf)."""
    if NIGHT_KIND.encode() not in leaf:
        return None
    try:
        record = parse_json(leaf)
    except MalformedError:
        return None  # the audit reports it
    entry = record.get("entry") if isinstance(record, dict) else None
    if not isinstance(entry, dict) or entry.get("kind") != NIGHT_KIND:
        return None
    body = entry.get("body")
    day = body.get("day") if isinstance(body, dict) else None
    return day if isinstance(day, str) else None


__all__ = ["audit_url", "fetch_export"]
