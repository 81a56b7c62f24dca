"""Bounded reads of the files and the standard input a command is given.

A path may name anything: a FIFO (opening it to read waits for a writer), a device such
as /dev/zero (endless), a directory, or a file far larger than any document. read_input()
opens without blocking, reads regular files only, and never reads more than its limit
plus one byte, the byte that tells a file at the limit from a longer one. Standard input
("-") may be a pipe or a terminal: it is read the same bounded way.
"""

from __future__ import annotations

import sys

from schemas.errors import LimitError, NotFoundError
from schemas.files import FileRefused, read_regular

STDIN = "-"


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
        return read_regular(path, limit_bytes)
    except FileRefused as exc:
        raise NotFoundError(exc.reason) from exc


def _read_stdin(limit_bytes: int) -> bytes:
    stream = sys.stdin
    if stream is None:
        raise NotFoundError("there is no standard input")
    try:
        return stream.buffer.read(limit_bytes + 1)
    except OSError as exc:  # e.g. a directory redirected to stdin
        raise NotFoundError(f"cannot read standard input: {_reason(exc)}") from exc


def _reason(exc: Exception) -> str:
    return exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
