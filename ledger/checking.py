"""The auditor's per-line checks on every core: parse, canonical form, record shape and
Ed25519 signatures, over chunks of AUDIT_CHUNK_LINES lines in worker processes, while
the main process replays the rules in order (ledger.audit.Replay).

A worker answers, per line, a Verdict or None:

* a Verdict (entry_end, verified) says: the line parses to a record (schemas.entry
  .parse_record would accept it) whose RFC 8785 bytes are exactly the line, so the
  entry's canonical bytes are ``line[ENTRY_START:entry_end]`` (see entry_slice); and the
  signatures at the indexes ``verified`` verify under the public key their key id names.
* None says: take the serial path (the line is judged exactly as before).

A worker never decides a finding: a line it cannot vouch for, or a signature it cannot
verify (its key unknown to the worker, or a bad signature), is left to the serial path
and to admit(), which raise the same findings as a run without workers. A key id is
SHA-256(public key)[:16] (signing.keys.key_id), so the key a worker verifies with is the
one the log's state holds for that id; whether the principal held it at that seq is
still judged by admit().

The workers get the public keys they need with each chunk: the main process harvests
every key object a line declares ({"key": id, "pub": base64}, checked against its id)
before it sends the chunk, and sends the keys its signatures name.
"""

from __future__ import annotations

import itertools
import multiprocessing
import os
import re
from collections import deque
from collections.abc import Generator, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

import orjson
from pydantic import ValidationError

from ledger import merkle
from ledger.verifying import exit_with_parent
from schemas.canonical import canonical
from schemas.entry import RecordModel
from schemas.errors import AllianceError, VerificationError, invariant
from schemas.limits import AUDIT_CHUNK_BYTES_MAX, AUDIT_CHUNKS_AHEAD, AUDIT_FIRST_CHUNK_LINES
from signing.entry import verify_entry_signature
from signing.keys import PUBLIC_KEY_SIZE, PublicKey, b64decode, key_id

# A record's canonical bytes: {"entry":<entry>,"logged":…,"seq":…,"signatures":[…]}
# (RFC 8785 sorts the members), so the entry's bytes start right after its member name.
RECORD_KEYS = frozenset({"entry", "logged", "seq", "signatures"})
ENTRY_START = len(b'{"entry":')
LOGGED_MEMBER = b',"logged":"'
# A declared key and a signature as RFC 8785 writes them (members sorted, no spaces).
_DECLARED = re.compile(rb'\{"key":"([0-9a-f]{32})","pub":"([A-Za-z0-9+/]{43}=)"\}')
_SIGNED = re.compile(rb'\{"key":"([0-9a-f]{32})","sig":"')

Verdict = tuple[int, tuple[int, ...]]  # (entry_end, indexes of verified signatures)
# A chunk's answer: each line's verdict, and the lines' leaf hashes end to end.
Checked = tuple[list[Verdict | None], bytes]
LEAF_HASH_SIZE = 32  # SHA-256


# A line the reader did not hold (ledger.audit.Overlong): never sent to a worker.
Skipped = TypeVar("Skipped")


def audited_entry_bytes(line: bytes) -> bytes:
    """The entry's canonical bytes in an audited leaf: the record is canonical, so the
    entry is its first member, and the member after it is "logged" (the signatures after
    that hold only key ids and base64, never that text). Only for leaves the audit
    passed (ledger.restore re-reads them, and the tree's root binds them)."""
    return line[ENTRY_START : line.rindex(LOGGED_MEMBER)]


def entry_slice(record: dict[str, Any], line: bytes) -> int | None:
    """Where the entry's canonical bytes end in ``line``, when ``line`` is exactly
    canonical(record) and ``record`` has exactly the record's four members; else None.
    The line is then b'{"entry":' + canonical(entry) + b',' + the rest of the members,
    and the rest is canonical(record without "entry") without its opening brace."""
    if record.keys() != RECORD_KEYS or canonical(record) != line:
        return None
    rest = canonical({name: record[name] for name in ("logged", "seq", "signatures")})
    return len(line) - len(rest)


def check_line(
    line: bytes, keys: dict[str, bytes], publics: dict[str, PublicKey | None] | None = None
) -> Verdict | None:
    """One line's verdict (see the module docstring); None on anything unusual.
    ``publics`` caches the checked PublicKey of each key id (None: the key is unusable)."""
    try:
        record = orjson.loads(line)
        if type(record) is not dict:
            return None
        if record.keys() != RECORD_KEYS or canonical(record) != line:
            return None
        RecordModel.model_validate(record)  # the shape parse_record() requires
        # Canonical, so the entry comes first and "logged" right after it; nothing
        # after that (a time, a seq, key ids and base64) can hold the member's text.
        entry_end = line.rindex(LOGGED_MEMBER)
    except (orjson.JSONDecodeError, AllianceError, ValidationError, RecursionError):
        return None
    entry_bytes = line[ENTRY_START:entry_end]
    cache = {} if publics is None else publics
    verified = []
    for index, signature in enumerate(record["signatures"]):
        public = _public(signature["key"], keys, cache)
        if public is None:
            continue
        try:
            verify_entry_signature(entry_bytes, signature, public)
        except AllianceError:
            continue  # admit() verifies it again and raises the finding
        verified.append(index)
    return entry_end, tuple(verified)


def _public(
    identifier: str, keys: dict[str, bytes], cache: dict[str, PublicKey | None]
) -> PublicKey | None:
    """The checked public key of ``identifier`` (a small-order or off-curve key is
    refused by PublicKey, and left to the serial path's finding), built once a chunk."""
    if identifier in cache:
        return cache[identifier]
    raw = keys.get(identifier)
    public = None
    if raw is not None:
        try:
            public = PublicKey(raw)
        except AllianceError:
            public = None
    cache[identifier] = public
    return public


def check_chunk(lines: list[bytes], keys: dict[str, bytes]) -> Checked:
    """The worker's task: the verdict of each line (an empty line stands for a line the
    reader skipped, and gets None) and the leaf hashes of the lines, LEAF_HASH_SIZE
    bytes each, in one bytes object (cheap to send back)."""
    publics: dict[str, PublicKey | None] = {}
    verdicts = [check_line(line, keys, publics) if line else None for line in lines]
    return verdicts, b"".join([merkle.leaf_hash(line) for line in lines])


def leaf_hashes(checked: Checked) -> list[bytes]:
    """The leaf hash of each line of a checked chunk."""
    blob = checked[1]
    return [blob[at : at + LEAF_HASH_SIZE] for at in range(0, len(blob), LEAF_HASH_SIZE)]


class KeyHarvest:
    """Every public key the lines seen so far declare, by key id (whether or not the
    declaring entry is admitted: a key id names one key forever)."""

    def __init__(self) -> None:
        self.known: dict[str, bytes] = {}

    def see(self, line: bytes) -> None:
        if b'"pub":"' not in line:
            return
        for found_id, pub in _DECLARED.findall(line):
            try:
                raw = b64decode(pub.decode("ascii"), size=PUBLIC_KEY_SIZE, what="public key")
            except AllianceError:
                continue
            identifier = found_id.decode("ascii")
            if key_id(raw) == identifier:
                self.known[identifier] = raw

    def for_lines(self, lines: list[bytes]) -> dict[str, bytes]:
        """The known keys that the signatures of ``lines`` name."""
        for line in lines:
            self.see(line)
        named = {match.decode("ascii") for line in lines for match in _SIGNED.findall(line)}
        return {name: self.known[name] for name in named if name in self.known}


def _ramp(chunk_lines: int) -> Iterator[int]:
    """Chunk sizes: AUDIT_FIRST_CHUNK_LINES, doubling, then ``chunk_lines`` for good."""
    size = min(AUDIT_FIRST_CHUNK_LINES, chunk_lines)
    while True:
        yield size
        size = min(size * 2, chunk_lines)


def _chunks(
    lines: Iterator[bytes | Skipped], sizes: Iterator[int]
) -> Iterator[list[bytes | Skipped]]:
    for size in sizes:
        chunk, _ = _take(lines, size)
        if not chunk:
            return
        yield chunk


def _take(lines: Iterator[bytes | Skipped], size: int) -> tuple[list[bytes | Skipped], bool]:
    """The next ``size`` lines, or fewer once they hold AUDIT_CHUNK_BYTES_MAX bytes (the
    chunks in flight bound the audit's memory, whatever a hostile file's lines are);
    and whether ``lines`` ran out within them."""
    chunk: list[bytes | Skipped] = []
    held_bytes = 0
    for line in lines:
        chunk.append(line)
        if isinstance(line, bytes):
            held_bytes += len(line)
        if len(chunk) >= size or held_bytes >= AUDIT_CHUNK_BYTES_MAX:
            return chunk, False
    return chunk, True


def _payload(chunk: list[bytes | Skipped]) -> list[bytes]:
    return [line if isinstance(line, bytes) else b"" for line in chunk]


Pending = tuple[list[bytes | Skipped], Future[Checked]]


def checked_chunks(
    lines: Iterable[bytes | Skipped], chunk_lines: int, workers: int | None = None
) -> Generator[tuple[list[bytes | Skipped], Checked], None, None]:
    """``lines`` in chunks, in order, each with its verdicts and leaf hashes. A log of at
    most one chunk is checked in this process; a longer one by ``workers`` worker
    processes (default os.cpu_count()), AUDIT_CHUNKS_AHEAD chunks per worker in flight
    while the caller replays. A worker that dies raises VerificationError: the lines it
    held were not checked, so the audit cannot pass."""
    invariant(chunk_lines >= 1, "an audit chunk holds at least one line")
    harvest = KeyHarvest()
    stream = iter(lines)
    head, ended = _take(stream, chunk_lines)
    if ended:  # the whole log: no worker is worth starting
        payload = _payload(head)
        yield head, check_chunk(payload, harvest.for_lines(payload))
        return
    count = workers if workers is not None else os.cpu_count() or 1
    invariant(count >= 1, "the audit needs at least one worker")
    context = multiprocessing.get_context("spawn")  # no inherited state or handles
    with ProcessPoolExecutor(
        max_workers=count,
        mp_context=context,
        initializer=exit_with_parent,
        initargs=(os.getpid(),),
    ) as executor:
        pending: deque[Pending[Skipped]] = deque()
        try:
            for chunk in _chunks(itertools.chain(head, stream), _ramp(chunk_lines)):
                payload = _payload(chunk)
                pending.append((chunk, _submit(executor, payload, harvest)))
                while len(pending) > count * AUDIT_CHUNKS_AHEAD:
                    yield _result(pending.popleft())
            while pending:
                yield _result(pending.popleft())
        except GeneratorExit:  # closed early (the replay failed): check nothing more
            executor.shutdown(wait=True, cancel_futures=True)
            raise


def _submit(
    executor: ProcessPoolExecutor, payload: list[bytes], harvest: KeyHarvest
) -> Future[Checked]:
    try:
        return executor.submit(check_chunk, payload, harvest.for_lines(payload))
    except BrokenProcessPool as exc:
        raise _worker_died(exc) from exc


def _result(item: Pending[Skipped]) -> tuple[list[bytes | Skipped], Checked]:
    chunk, future = item
    try:
        checked = future.result()
    except BrokenProcessPool as exc:
        raise _worker_died(exc) from exc
    invariant(
        len(checked[0]) == len(chunk) and len(checked[1]) == LEAF_HASH_SIZE * len(chunk),
        "a worker answered for another number of lines than it was sent",
    )
    return chunk, checked


def _worker_died(exc: BaseException) -> VerificationError:
    return VerificationError(
        f"a worker checking the log's lines died ({exc}); the audit is incomplete, not passed"
    )
