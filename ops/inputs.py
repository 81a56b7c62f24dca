"""Bounded reads of the files and the standard input a command is given.

A path may name anything: a FIFO (opening it to read waits for a writer), a device such
as /dev/zero (endless), a directory, or a file far larger than any document. read_input()
opens without blocking, reads regular files only, and never reads more than its limit
plus one byte, the byte that tells a file at the limit from a longer one. Standard input
("-") may be a pipe or a terminal: it is read the same bounded way.
"""

from __future__ import annotations

import os
import stat
import sys

from schemas.errors import LimitError, NotFoundError

STDIN = "-"
# Flags for opening a path we will only read: O_NONBLOCK so a FIFO without a writer does
# not block the open (fstat then refuses it), O_NOCTTY so a terminal device never becomes
# our controlling terminal.
OPEN_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC

_FILE_TYPES = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def read_input(source: str, limit_bytes: int) -> bytes:
    """The bytes of the regular file at ``source``, or of standard input when ``source``
    is "-". Raises NotFoundError when the path is missing, unreadable or not a regular
    file, and LimitError when there are more than ``limit_bytes`` bytes."""
    if source == STDIN:
        data = _read_stdin(limit_bytes)
        where = "standard input"
    else:
        data = _read_file(source, limit_bytes)
        where = source
    if len(data) > limit_bytes:
        raise LimitError(f"{where} holds more than {limit_bytes} bytes")
    return data


def _read_file(path: str, limit_bytes: int) -> bytes:
    try:
        fd = os.open(path, OPEN_FLAGS)
    except FileNotFoundError as exc:
        raise NotFoundError(f"no file {path}") from exc
    except (OSError, ValueError) as exc:  # ValueError: a NUL in the path
        raise NotFoundError(f"cannot open {path}: {_reason(exc)}") from exc
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise NotFoundError(f"{path} is {_file_type(info.st_mode)}, not a regular file")
        if info.st_size > limit_bytes:
            raise LimitError(f"{path} holds {info.st_size} bytes, more than {limit_bytes}")
        # The size may change after fstat, and some files (/proc) report 0: read at most
        # one byte past the limit whatever fstat said.
        return _read_at_most(fd, limit_bytes + 1)
    except OSError as exc:
        raise NotFoundError(f"cannot read {path}: {_reason(exc)}") from exc
    finally:
        os.close(fd)


def _read_stdin(limit_bytes: int) -> bytes:
    stream = sys.stdin
    if stream is None:
        raise NotFoundError("there is no standard input")
    try:
        return stream.buffer.read(limit_bytes + 1)
    except OSError as exc:  # e.g. a directory redirected to stdin
        raise NotFoundError(f"cannot read standard input: {_reason(exc)}") from exc


def _read_at_most(fd: int, count_bytes: int) -> bytes:
    chunks: list[bytes] = []
    remaining = count_bytes
    while remaining > 0:
        chunk = os.read(fd, remaining)
        if not chunk:
            break
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def _file_type(mode: int) -> str:
    for test, name in _FILE_TYPES:
        if test(mode):
            return name
    return "of another type"


def _reason(exc: Exception) -> str:
    return exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
