"""`alliance export DIR`: the files an auditor needs, and nothing re-signed.

* ``checkpoint``: the latest stored signed checkpoint with its stored cosignatures;
* ``entries.jsonl``: one leaf per line, exact bytes, seqs 0 .. size-1;
* ``trust.json``: {"origin", "log_key": vkey, "witness_keys": {"31": vkey, …}}.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from sqlalchemy import Connection, Engine, select

from ledger import store
from ledger.projections import PROJECTION_TABLES
from schemas.errors import ConfigError, NotFoundError, VerificationError
from schemas.limits import TEMPORARY_NAME_ATTEMPTS
from signing.checkpoint import CosignatureVerifier, add_cosignatures, open_checkpoint
from signing.keys import PUBLIC_KEY_SIZE, PublicKey, b64decode
from signing.note import NoteVerifier, parse_note

CHECKPOINT_FILE = "checkpoint"
ENTRIES_FILE = "entries.jsonl"
TRUST_FILE = "trust.json"
EXPORT_FILE_MODE = 0o644  # public data: the auditor is usually another user


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


class ExportFolder:
    """The export directory, opened once: every file is created relative to that handle,
    so a path swapped after the open cannot redirect the writes.

    The directory the user names is followed even through a symlink (``out`` may lead
    to a larger disk; whoever controls the path above it decides where it leads anyway).
    Names *inside* it are never followed: each file is written to a new temporary of an
    unpredictable name created with O_EXCL | O_NOFOLLOW, then renamed over its final
    name, which replaces a symlink planted there instead of writing through it.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        try:
            directory.mkdir(parents=True, exist_ok=True)
            self.fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as exc:
            raise ConfigError(f"cannot export into {directory}: {exc.strerror}") from exc

    def __enter__(self) -> ExportFolder:
        return self

    def __exit__(self, *exc_info: object) -> None:
        os.close(self.fd)

    def _create_temporary(self, name: str) -> tuple[BinaryIO, str]:
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        for _ in range(TEMPORARY_NAME_ATTEMPTS):
            temporary = f".{name}.{secrets.token_hex(8)}.tmp"
            try:
                fd = os.open(temporary, flags, EXPORT_FILE_MODE, dir_fd=self.fd)
            except FileExistsError:
                continue  # planted or left behind: never reuse a name we did not create
            except OSError as exc:
                raise ConfigError(f"cannot write into {self.directory}: {exc.strerror}") from exc
            return os.fdopen(fd, "wb"), temporary
        raise ConfigError(f"cannot create a temporary file in {self.directory}")

    def write(self, name: str, chunks: Iterable[bytes]) -> None:
        """Write ``name`` whole or not at all (a reader sees the old file or the new)."""
        out, temporary = self._create_temporary(name)
        try:
            with out:
                for chunk in chunks:
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, name, src_dir_fd=self.fd, dst_dir_fd=self.fd)
        except BaseException as exc:
            with contextlib.suppress(OSError):
                os.unlink(temporary, dir_fd=self.fd)  # O_EXCL made it ours
            if isinstance(exc, OSError):
                detail = f"cannot write {self.directory / name}: {exc.strerror}"
                raise ConfigError(detail) from exc
            raise

    def sync(self) -> None:
        """Make the renames durable."""
        try:
            os.fsync(self.fd)
        except OSError as exc:
            raise ConfigError(f"cannot sync {self.directory}: {exc.strerror}") from exc


def write_export(
    directory: Path,
    note: str,
    leaves: Iterable[bytes],
    trust: Mapping[str, object],
    size: int,
    root: bytes,
) -> Exported:
    """Write the three files of an export of ``size`` leaves into ``directory``."""
    with ExportFolder(directory) as folder:
        folder.write(ENTRIES_FILE, (leaf + b"\n" for leaf in leaves))
        folder.write(CHECKPOINT_FILE, [note.encode("utf-8")])
        trust_text = json.dumps(trust, indent=2, ensure_ascii=False, sort_keys=True) + "\n"
        folder.write(TRUST_FILE, [trust_text.encode("utf-8")])
        folder.sync()
    _, signatures = parse_note(note)
    cosignatures = sum(1 for signature in signatures if signature.name != trust["origin"])
    return Exported(directory, size, root, cosignatures)


def export(engine: Engine, directory: Path) -> Exported:
    with engine.connect() as connection:
        latest, note, _ = signed_checkpoint(connection)
        origin = origin_of(connection)
        trust = {
            "origin": origin,
            "log_key": log_verifier(connection, origin, latest.note).vkey,
            "witness_keys": {code: v.vkey for code, v in witness_verifiers(connection).items()},
        }
        leaves = (entry.leaf for entry in store.read_entries(connection, 0, latest.size))
        return write_export(directory, note, leaves, trust, latest.size, latest.root)
