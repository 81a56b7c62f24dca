"""One pass over a night's obligations: positions and the included root, in flat memory.

A night may hold a million obligations; what closing it must keep is its positions (one
per member) and the list of included seqs the report writes. ``net_rows`` reads the
obligations once, as ``(seq, kind, debtor, creditor, amount_fen)`` rows in seq order
(a store's cursor, or ``Obligation`` values), and for each one:

* checks it as ``Obligation`` does (exact types, positive amount within AMOUNT_FEN_MAX,
  debtor != creditor, seqs strictly ascending), a member id and a kind only the first
  time the night meets them (a hundred thousand members, not two million checks);
* adds it to its debtor's payable and its creditor's receivable (one dict entry per
  member, which also holds the id's ASCII bytes for the leaves);
* hashes its leaf JCS(item) (``Obligation.leaf()``'s bytes, written with the id bytes
  held per member) into ``RootBuilder``, which keeps one perfect-subtree root per set bit
  of the size: O(log n) hashes, not 32 MB of them;
* appends its seq to an ``array('q')``: 8 bytes an obligation, the report's own list.

Nothing else of an obligation is kept. ``RootBuilder`` is the RFC 6962 root (SHA-256(0x00
‖ leaf), SHA-256(0x01 ‖ l ‖ r), SHA-256("") when empty), tested against the log's
``merkle.integrate`` and the RFC's recursive definition.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import subprocess
import sys
from array import array
from collections.abc import Iterable
from typing import Any, NoReturn

from ledger import merkle
from reconciliation import hashworker
from reconciliation.netting import Obligation, Position, is_member_id, is_slug
from schemas.errors import InvariantError, LimitError, MalformedError, invariant
from schemas.limits import (
    AMOUNT_FEN_MAX,
    HASH_SIZE,
    HASH_WORKER_PIPE_BYTES,
    HASH_WORKER_TIMEOUT_S,
    ID_LENGTH_MAX,
    OBLIGATIONS_PER_NIGHT_MAX,
    POSITIONS_PER_NIGHT_MAX,
    READ_CHUNK_ENTRIES,
)

Row = tuple[int, str, str, str, int]  # (seq, kind, debtor, creditor, amount_fen)
ROW_FIELDS = 5

# Leaf hashes are folded a chunk of 2**k at a time into one perfect subtree.
_CHUNK_LEAVES = READ_CHUNK_ENTRIES
_CHUNK_HEIGHT = _CHUNK_LEAVES.bit_length() - 1
invariant(_CHUNK_LEAVES == 1 << _CHUNK_HEIGHT, "READ_CHUNK_ENTRIES must be a power of two")
invariant(_CHUNK_LEAVES == hashworker.CHUNK_LEAVES, "the hash worker's chunk is not ours")

# 0x00 ‖ JCS({"seq", "kind", "debtor", "creditor", "amount_fen"}): keys in RFC 8785 order.
_LEAF_INPUT = b'\x00{"amount_fen":%d,"creditor":"%s","debtor":"%s","kind":"%s","seq":%d}'


class RootBuilder:
    """RFC 6962 root of leaves added in order, in O(log n) memory: a stack of the roots
    of perfect subtrees (heights strictly decreasing, one per set bit of the size). Leaf
    hashes wait in a buffer until a chunk of ``_CHUNK_LEAVES`` is hashed up at once.

    With ``parallel_from``, once that many leaves were added through ``add_inputs`` the
    following whole chunks are hashed by ``hashworker`` in a second process while the
    caller goes on; ``root()`` collects them. ``close()`` ends that process early."""

    def __init__(self, parallel_from: int | None = None) -> None:
        self.size = 0
        self._stack: list[tuple[int, bytes]] = []  # (height, root), oldest first
        self._pending = bytearray()  # concatenated leaf hashes, fewer than a chunk
        self._parallel_from = parallel_from
        self._worker: subprocess.Popen[bytes] | None = None
        self._waiting: list[bytes] = []  # leaf inputs after the worker's chunks
        self._sent = 0  # chunks given to the worker

    def add(self, leaf: bytes) -> None:
        self.add_hashes((merkle.leaf_hash(leaf),))

    def extend(self, leaves: Iterable[bytes]) -> None:
        self.add_hashes(map(merkle.leaf_hash, leaves))

    def add_inputs(self, inputs: list[bytes]) -> None:
        """Add leaves by their hash inputs (0x00 ‖ leaf), none holding a newline."""
        if self._worker is None and not self._start_worker():
            self.add_hashes([hashlib.sha256(data).digest() for data in inputs])
            return
        waiting = self._waiting
        waiting += inputs
        while len(waiting) >= _CHUNK_LEAVES:
            self._send(waiting[:_CHUNK_LEAVES])
            del waiting[:_CHUNK_LEAVES]

    def _start_worker(self) -> bool:
        if self._parallel_from is None or self.size < self._parallel_from or self._pending:
            return False
        self._worker = subprocess.Popen(  # noqa: S603 (our interpreter and module)
            [sys.executable, "-I", "-S", hashworker.__file__],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        if self._worker.stdin is not None and hasattr(fcntl, "F_SETPIPE_SZ"):
            # Room for a few chunks, so the reader seldom waits for the worker (Linux).
            with contextlib.suppress(OSError):
                fcntl.fcntl(self._worker.stdin, fcntl.F_SETPIPE_SZ, HASH_WORKER_PIPE_BYTES)
        return True

    def _send(self, chunk: list[bytes]) -> None:
        assert self._worker is not None and self._worker.stdin is not None
        blob = b"\n".join(chunk)
        self._worker.stdin.write(hashworker.HEADER.pack(len(blob)))
        self._worker.stdin.write(blob)
        self._sent += 1
        self.size += _CHUNK_LEAVES

    def _collect(self) -> None:
        """Wait for the worker's chunk roots and stack them, then the leaves after."""
        worker, self._worker = self._worker, None
        if worker is None:
            return
        try:
            roots, _ = worker.communicate(timeout=HASH_WORKER_TIMEOUT_S)
        finally:
            worker.kill()
        if worker.returncode != 0 or len(roots) != self._sent * HASH_SIZE:
            raise InvariantError(f"the hash worker failed (exit {worker.returncode})")
        for offset in range(0, len(roots), HASH_SIZE):
            _push(self._stack, _CHUNK_HEIGHT, roots[offset : offset + HASH_SIZE])
        waiting, self._waiting, self._parallel_from = self._waiting, [], None
        self.add_hashes([hashlib.sha256(data).digest() for data in waiting])

    def close(self) -> None:
        """End the worker if one runs (the root is then no longer available)."""
        if self._worker is not None:
            self._worker.kill()
            self._worker.wait()
            self._worker = None

    def add_hashes(self, hashes: Iterable[bytes]) -> None:
        """Add leaves by their hashes (SHA-256(0x00 ‖ leaf)), in order."""
        invariant(self._worker is None, "leaf hashes added while the worker hashes chunks")
        pending = self._pending
        before = len(pending)
        pending += b"".join(hashes)
        invariant(len(pending) % HASH_SIZE == 0, "a leaf hash is not 32 bytes")
        self.size += (len(pending) - before) // HASH_SIZE
        chunk_bytes = _CHUNK_LEAVES * HASH_SIZE
        if len(pending) >= chunk_bytes:
            whole = len(pending) - len(pending) % chunk_bytes
            for start in range(0, whole, chunk_bytes):
                top = merkle.perfect_root(bytes(pending[start : start + chunk_bytes]))
                _push(self._stack, _CHUNK_HEIGHT, top)
            del pending[:whole]

    def root(self) -> bytes:
        """The root of every leaf added so far (more may be added after)."""
        self._collect()
        stack = list(self._stack)
        pending = bytes(self._pending)
        offset = 0
        for height in range(_CHUNK_HEIGHT - 1, -1, -1):  # the rest: one subtree per set bit
            width = (1 << height) * HASH_SIZE
            if len(pending) - offset >= width:
                _push(stack, height, merkle.perfect_root(pending[offset : offset + width]))
                offset += width
        if not stack:
            return merkle.EMPTY_ROOT
        root = stack[-1][1]
        for _, left in reversed(stack[:-1]):  # RFC 6962: MTH = H(1 ‖ MTH(left) ‖ MTH(rest))
            root = merkle.node_hash(left, root)
        return root


def _push(stack: list[tuple[int, bytes]], height: int, root: bytes) -> None:
    while stack and stack[-1][0] == height:
        _, left = stack.pop()
        root = merkle.node_hash(left, root)
        height += 1
    stack.append((height, root))


def leaves_root(leaves: Iterable[bytes]) -> bytes:
    """RFC 6962 root over ``leaves``."""
    builder = RootBuilder()
    builder.extend(leaves)
    return builder.root()


def _member(members: dict[str, list[Any]], member: object, seq: int, name: str) -> list[Any]:
    """The accumulator of a member met for the first time, once its id is checked."""
    if type(member) is not str or not is_member_id(member):
        raise MalformedError(
            f"obligation {seq}: {name} must be a member id of 1..{ID_LENGTH_MAX}"
            " ASCII letters and digits",
            seq=seq,
            field=name,
        )
    if len(members) == POSITIONS_PER_NIGHT_MAX:
        raise LimitError(f"more than POSITIONS_PER_NIGHT_MAX {POSITIONS_PER_NIGHT_MAX} members")
    entry: list[Any] = [0, 0, member.encode("ascii")]  # receivable, payable, id bytes
    members[member] = entry
    return entry


def _kind(kinds: dict[str, bytes], kind: object, seq: int) -> bytes:
    if type(kind) is not str or not is_slug(kind):
        raise MalformedError(
            f"obligation {seq}: kind must be a lowercase slug of 1..{ID_LENGTH_MAX} characters",
            seq=seq,
            field="kind",
        )
    kinds[kind] = encoded = kind.encode("ascii")
    return encoded


def _refuse(row: Any, previous: int) -> NoReturn:
    """Raise the error that says what is wrong with ``row`` (not a row, out of order, or
    not an obligation: ``Obligation`` says which field)."""
    if not isinstance(row, tuple) or len(row) != ROW_FIELDS:
        raise MalformedError(f"{row!r} is not an obligation row", field="included")
    seq = row[0]
    if type(seq) is int and 0 <= seq <= previous:
        what = "is included twice" if seq == previous else f"comes after {previous}"
        raise MalformedError(
            f"obligation {seq} {what}: obligations are included once each, by seq", seq=seq
        )
    Obligation(*row)  # raises what is wrong
    raise InvariantError(f"obligation {seq} was refused for no reason")


def net_rows(rows: Iterable[Row], seqs: array[int], root: RootBuilder) -> dict[str, list[Any]]:
    """Read ``rows`` once (module docstring): append each seq to ``seqs`` and each leaf's
    hash to ``root``; returns member -> [receivable_fen, payable_fen, id bytes]."""
    members: dict[str, list[Any]] = {}
    kinds: dict[str, bytes] = {}
    member_of, kind_of = members.get, kinds.get
    inputs: list[bytes] = []  # leaf hash inputs of the chunk being read
    add_input, add_seq = inputs.append, seqs.append
    previous = -1
    for row in rows:
        try:
            seq, kind, debtor, creditor, amount = row
        except (TypeError, ValueError):
            _refuse(row, previous)
        if not (
            type(seq) is int
            and seq > previous
            and type(amount) is int
            and 0 < amount <= AMOUNT_FEN_MAX
            and debtor != creditor
        ):
            _refuse(row, previous)
        owes = member_of(debtor) or _member(members, debtor, seq, "debtor")
        owed = member_of(creditor) or _member(members, creditor, seq, "creditor")
        owes[1] += amount
        owed[0] += amount
        name = kind_of(kind) or _kind(kinds, kind, seq)
        add_input(_LEAF_INPUT % (amount, owed[2], owes[2], name, seq))
        add_seq(seq)
        previous = seq
        if len(inputs) == _CHUNK_LEAVES:
            root.add_inputs(inputs)
            inputs.clear()
            if len(seqs) > OBLIGATIONS_PER_NIGHT_MAX:
                break
    if len(seqs) > OBLIGATIONS_PER_NIGHT_MAX:
        raise LimitError(
            f"more than OBLIGATIONS_PER_NIGHT_MAX {OBLIGATIONS_PER_NIGHT_MAX} obligations"
        )
    root.add_inputs(inputs)
    return members


def positions_of(members: dict[str, list[Any]]) -> list[Position]:
    """The positions ``net_rows`` accumulated, member ascending (``netting.positions``'s
    result for the same obligations), checked to balance."""
    gross_fen = 0
    result = []
    for member in sorted(members):
        receivable, payable, _ = members[member]
        gross_fen += receivable
        result.append(Position(member, receivable - payable, receivable, payable))
    if gross_fen > AMOUNT_FEN_MAX:
        raise LimitError(f"the night's gross {gross_fen} fen exceeds AMOUNT_FEN_MAX")
    invariant(sum(p.net_fen for p in result) == 0, "net positions do not sum to zero")
    return result
