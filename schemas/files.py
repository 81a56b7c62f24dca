"""Opening files someone else may have planted: a path may name a FIFO (opening it to
read waits for a writer), a device such as /dev/zero (endless), a directory, or a file far
larger than any document. Every reader of a user's or an export's file goes through
these: regular files only, opened without blocking, never read past a limit.

Errors are raised as FileRefused, which each caller words as its own typed error (a key
file's, an input's, an export's)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

# O_NONBLOCK so a FIFO without a writer does not block the open (fstat then refuses it);
# O_NOCTTY so a terminal device never becomes our controlling terminal.
READ_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC

_FILE_TYPES = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


class FileRefused(Exception):  # noqa: N818 (a refusal, worded by each caller)
    """``reason`` says why, in words fit for an error line; ``missing`` when the path
    does not exist, ``exists`` when a new file was to be created where one already is."""

    def __init__(self, reason: str, *, missing: bool = False, exists: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.missing = missing
        self.exists = exists


def file_type(mode: int) -> str:
    for test, name in _FILE_TYPES:
        if test(mode):
            return name
    return "of another type"


def open_regular(path: str | Path) -> tuple[int, os.stat_result]:
    """A descriptor of ``path`` and its fstat, if it is a regular file (links are
    followed: what they lead to must be a regular file). Checked before the open, so no
    device is ever opened, and again on what was opened."""
    try:
        mode = os.stat(path).st_mode
        if not stat.S_ISREG(mode):
            raise FileRefused(f"{path} is {file_type(mode)}, not a regular file")
        fd = os.open(path, READ_FLAGS)
    except FileNotFoundError as exc:
        raise FileRefused(f"no file {path}", missing=True) from exc
    except (OSError, ValueError) as exc:  # ValueError: a NUL in the path
        raise FileRefused(f"cannot open {path}: {_reason(exc)}") from exc
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise FileRefused(f"{path} is {file_type(info.st_mode)}, not a regular file")
    except BaseException:
        os.close(fd)
        raise
    return fd, info


def read_at_most(fd: int, count_bytes: int) -> bytes:
    """Up to ``count_bytes`` from ``fd`` (fewer at its end)."""
    chunks: list[bytes] = []
    remaining = count_bytes
    try:
        while remaining > 0:
            chunk = os.read(fd, remaining)
            if not chunk:
                break
            chunks.append(chunk)
            remaining -= len(chunk)
    except OSError as exc:
        raise FileRefused(f"cannot read: {_reason(exc)}") from exc
    return b"".join(chunks)


def read_regular(path: str | Path, limit_bytes: int) -> bytes:
    """At most ``limit_bytes + 1`` bytes of the regular file ``path``: the caller tells a
    file at the limit from a longer one by the length. The size may change after fstat,
    and some files (/proc) report 0, so the read is bounded whatever fstat said."""
    fd, _ = open_regular(path)
    try:
        return read_at_most(fd, limit_bytes + 1)
    finally:
        os.close(fd)


def write_new(path: Path, data: bytes, mode: int) -> None:
    """Create ``path`` with ``mode`` from the start, never through a planted link and
    never over an existing file, and write ``data`` durably (fsync); on any failure the
    half-written file is removed."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(path, flags, mode)
    except FileExistsError as exc:
        what = "a link" if path.is_symlink() else "a file"
        raise FileRefused(f"{path} is already {what}", exists=True) from exc
    except OSError as exc:
        raise FileRefused(f"cannot create {path}: {_reason(exc)}") from exc
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
    except BaseException as exc:
        path.unlink(missing_ok=True)  # O_EXCL made it ours
        if isinstance(exc, OSError):
            raise FileRefused(f"cannot write {path}: {_reason(exc)}") from exc
        raise


def _reason(exc: Exception) -> str:
    return exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
