"""`alliance export DIR`: the files an auditor needs, and nothing re-signed.

* ``checkpoint``: the newest stored checkpoint that verifies, with the stored cosignatures
  that verify (chosen by ledger.app.Ledger.export, which hands in only verified values);
* ``entries.jsonl``: one leaf per line, exact bytes, seqs 0 .. size-1;
* ``trust.json``: {"origin", "log_key": vkey, "witness_keys": {"31": vkey, …}};
* ``reconciliations/<day>.json``: each closed night's report (JCS bytes) within the
  checkpoint, checked against its `reconciliation.closed` entry's counts and roots; the
  auditor recomputes each byte for byte.
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

from schemas.errors import ConfigError
from schemas.limits import TEMPORARY_NAME_ATTEMPTS
from signing.note import parse_note

CHECKPOINT_FILE = "checkpoint"
ENTRIES_FILE = "entries.jsonl"
TRUST_FILE = "trust.json"
REPORTS_DIR = "reconciliations"
EXPORT_FILE_MODE = 0o644  # public data: the auditor is usually another user


@dataclass(frozen=True, slots=True)
class Exported:
    directory: Path
    size: int
    root: bytes
    cosignatures: int


class ExportFolder:
    """The export directory, opened once: every file is created relative to that handle,
    so a path swapped after the open cannot redirect the writes.

    The directory the user names is followed even through a symlink (``out`` may lead
    to a larger disk; whoever controls the path above it decides where it leads anyway).
    Names *inside* it are never followed: each file is written to a new temporary of an
    unpredictable name created with O_EXCL | O_NOFOLLOW, then renamed over its final
    name, which replaces a symlink planted there instead of writing through it.
    """

    def __init__(self, directory: Path, fd: int | None = None) -> None:
        self.directory = directory
        if fd is not None:
            self.fd = fd
            return
        try:
            directory.mkdir(parents=True, exist_ok=True)
            self.fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as exc:
            raise ConfigError(f"cannot export into {directory}: {exc.strerror}") from exc

    def subfolder(self, name: str) -> ExportFolder:
        """The folder ``name`` inside this one, made if missing, never through a symlink."""
        try:
            with contextlib.suppress(FileExistsError):
                os.mkdir(name, 0o755, dir_fd=self.fd)
            flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
            fd = os.open(name, flags, dir_fd=self.fd)
        except OSError as exc:
            raise ConfigError(
                f"cannot export into {self.directory / name}: {exc.strerror}"
            ) from exc
        return ExportFolder(self.directory / name, fd)

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
    reports: Iterable[tuple[str, bytes]] = (),
) -> Exported:
    """Write the files of an export of ``size`` leaves into ``directory``; ``reports``
    are (day, JCS bytes) of the nights it holds."""
    with ExportFolder(directory) as folder:
        write_reports(folder, reports)
        folder.write(ENTRIES_FILE, (leaf + b"\n" for leaf in leaves))
        return finish_export(folder, note, trust, size, root)


def write_reports(folder: ExportFolder, reports: Iterable[tuple[str, bytes]]) -> None:
    """``reconciliations/<day>.json`` of each (day, JCS bytes), the folder made even when
    there are none."""
    with folder.subfolder(REPORTS_DIR) as nights:
        for day, report in reports:
            nights.write(f"{day}.json", [report])
        nights.sync()


def finish_export(
    folder: ExportFolder, note: str, trust: Mapping[str, object], size: int, root: bytes
) -> Exported:
    """The checkpoint and trust.json beside the entries already written (by write_export,
    or streamed by a generator that learns the root only at the end), made durable."""
    folder.write(CHECKPOINT_FILE, [note.encode("utf-8")])
    trust_text = json.dumps(trust, indent=2, ensure_ascii=False, sort_keys=True) + "\n"
    folder.write(TRUST_FILE, [trust_text.encode("utf-8")])
    folder.sync()
    _, signatures = parse_note(note)
    cosignatures = sum(1 for signature in signatures if signature.name != trust["origin"])
    return Exported(folder.directory, size, root, cosignatures)
