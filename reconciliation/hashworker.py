"""The leaf hasher of a large night, in its own process: ``python -I -S hashworker.py``.

A night's included root is a million SHA-256 leaf hashes and as many node hashes, which
Python computes one call at a time; on a machine with a second core this process does
them while the closing process reads and nets the obligations. Standard library only, so
it starts in milliseconds and imports nothing of the project.

Protocol on stdin: frames of an 8-byte little-endian length and that many bytes, each
frame ``CHUNK_LEAVES`` leaf inputs (0x00 ‖ leaf) joined by a newline (the leaves of a
night are JCS with no newline in them). At end of input it writes to stdout, for each
frame in order, the 32-byte RFC 6962 root of its perfect subtree, and exits 0; a frame
that is not exactly ``CHUNK_LEAVES`` leaves exits 2 with nothing written.
"""

from __future__ import annotations

import hashlib
import struct
import sys
from typing import BinaryIO

HEADER = struct.Struct("<Q")
CHUNK_LEAVES = 4096  # reconciliation.streaming checks it equals its chunk
_NODE_STATE = hashlib.sha256(b"\x01")


def perfect_root(leaf_inputs: list[bytes]) -> bytes:
    """RFC 6962 root of a perfect subtree from its leaf inputs (0x00 ‖ leaf each)."""
    sha256, copy = hashlib.sha256, _NODE_STATE.copy
    level = [sha256(data).digest() for data in leaf_inputs]
    while len(level) > 1:
        parents = []
        for left, right in zip(level[0::2], level[1::2], strict=True):
            state = copy()
            state.update(left)
            state.update(right)
            parents.append(state.digest())
        level = parents
    return level[0]


def serve(source: BinaryIO, sink: BinaryIO) -> int:
    """Read frames from ``source`` to its end; write their roots to ``sink``."""
    roots: list[bytes] = []
    while header := source.read(HEADER.size):
        (length,) = HEADER.unpack(header)
        leaves = source.read(length).split(b"\n")
        if len(leaves) != CHUNK_LEAVES:
            return 2
        roots.append(perfect_root(leaves))
    sink.write(b"".join(roots))
    sink.flush()
    return 0


if __name__ == "__main__":
    sys.exit(serve(sys.stdin.buffer, sys.stdout.buffer))
