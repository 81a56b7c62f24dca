"""`alliance export DIR`: the files an auditor needs, and nothing re-signed.

* ``checkpoint``: the latest stored signed checkpoint with its stored cosignatures;
* ``entries.jsonl``: one leaf per line, exact bytes, seqs 0 .. size-1;
* ``trust.json``: {"origin", "log_key": vkey, "witness_keys": {"31": vkey, …}}.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Connection, Engine, select

from ledger import store
from ledger.projections import PROJECTION_TABLES
from schemas.errors import NotFoundError, VerificationError
from signing.checkpoint import CosignatureVerifier, add_cosignatures, open_checkpoint
from signing.keys import PUBLIC_KEY_SIZE, PublicKey, b64decode
from signing.note import NoteVerifier

CHECKPOINT_FILE = "checkpoint"
ENTRIES_FILE = "entries.jsonl"
TRUST_FILE = "trust.json"


@dataclass(frozen=True, slots=True)
class Exported:
    directory: Path
    size: int
    root: bytes
    cosignatures: int


def log_verifier(connection: Connection, origin: str, note: str) -> NoteVerifier:
    """The operator key (named after the origin) that signed ``note``."""
    keys = PROJECTION_TABLES["principal_keys"]
    rows = connection.execute(select(keys).where(keys.c.principal == "operator")).all()
    for row in rows:
        verifier = NoteVerifier.from_public(origin, PublicKey(b64decode(str(row.pub))))
        try:
            open_checkpoint(note, verifier)
        except VerificationError:
            continue
        return verifier
    raise VerificationError("no operator key of the log verifies its checkpoint")


def witness_verifiers(connection: Connection) -> dict[str, CosignatureVerifier]:
    regions = PROJECTION_TABLES["regions"]
    result: dict[str, CosignatureVerifier] = {}
    for row in connection.execute(select(regions).order_by(regions.c.code)):
        public = PublicKey(b64decode(str(row.witness_pub), size=PUBLIC_KEY_SIZE))
        result[str(row.code)] = CosignatureVerifier.from_public(str(row.witness_name), public)
    return result


def origin_of(connection: Connection) -> str:
    meta = PROJECTION_TABLES["meta"]
    value = connection.execute(select(meta.c.value).where(meta.c.name == "origin")).scalar()
    if value is None:
        raise NotFoundError("the log has no genesis yet")
    return str(json.loads(value))


def signed_checkpoint(connection: Connection) -> tuple[store.StoredCheckpoint, str, int]:
    """The latest checkpoint, its note with every stored cosignature, and their count."""
    latest = store.latest_checkpoint(connection)
    if latest is None:
        raise NotFoundError("the log has no checkpoint yet")
    lines = store.cosignature_lines(connection, latest.size)
    note = add_cosignatures(latest.note, lines) if lines else latest.note
    return latest, note, len(lines)


def _write_atomically(path: Path, data: bytes) -> None:
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_bytes(data)
    os.replace(temporary, path)


def export(engine: Engine, directory: Path) -> Exported:
    directory.mkdir(parents=True, exist_ok=True)
    with engine.connect() as connection:
        latest, note, cosignatures = signed_checkpoint(connection)
        origin = origin_of(connection)
        trust = {
            "origin": origin,
            "log_key": log_verifier(connection, origin, latest.note).vkey,
            "witness_keys": {code: v.vkey for code, v in witness_verifiers(connection).items()},
        }
        temporary = directory / (ENTRIES_FILE + ".tmp")
        with temporary.open("wb") as out:
            for entry in store.read_entries(connection, 0, latest.size):
                out.write(entry.leaf + b"\n")
        os.replace(temporary, directory / ENTRIES_FILE)
    _write_atomically(directory / CHECKPOINT_FILE, note.encode("utf-8"))
    trust_text = json.dumps(trust, indent=2, ensure_ascii=False, sort_keys=True) + "\n"
    _write_atomically(directory / TRUST_FILE, trust_text.encode("utf-8"))
    return Exported(directory, latest.size, latest.root, cosignatures)
