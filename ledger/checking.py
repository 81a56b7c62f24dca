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

import multiprocessing
import os
import re
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

import orjson
from pydantic import ValidationError

from schemas.canonical import canonical
from schemas.entry import RecordModel
from schemas.errors import AllianceError
from schemas.limits import AUDIT_CHUNKS_AHEAD
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


def check_line(line: bytes, keys: dict[str, bytes]) -> Verdict | None:
    """One line's verdict (see the module docstring); None on anything unusual."""
    try:
        record = orjson.loads(line)
        if type(record) is not dict:
            return None
        entry_end = entry_slice(record, line)
        if entry_end is None:
            return None
        RecordModel.model_validate(record)  # the shape parse_record() requires
    except (orjson.JSONDecodeError, AllianceError, ValidationError, RecursionError):
        return None
    entry_bytes = line[ENTRY_START:entry_end]
    verified = []
    for index, signature in enumerate(record["signatures"]):
        raw = keys.get(signature["key"])
        if raw is None:
            continue
        try:
            verify_entry_signature(entry_bytes, signature, PublicKey(raw))
        except AllianceError:
            continue  # admit() verifies it again and raises the finding
        verified.append(index)
    return entry_end, tuple(verified)


def check_chunk(lines: list[bytes], keys: dict[str, bytes]) -> list[Verdict | None]:
    """The worker's task: the verdict of each line (an empty line stands for a line the
    reader skipped, and gets None)."""
    return [check_line(line, keys) if line else None for line in lines]


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


def _chunks(lines: Iterable[bytes | Skipped], chunk_lines: int) -> Iterator[list[bytes | Skipped]]:
    chunk: list[bytes | Skipped] = []
    for line in lines:
        chunk.append(line)
        if len(chunk) >= chunk_lines:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _payload(chunk: list[bytes | Skipped]) -> list[bytes]:
    return [line if isinstance(line, bytes) else b"" for line in chunk]


def checked_chunks(
    lines: Iterable[bytes | Skipped], chunk_lines: int
) -> Iterator[tuple[list[bytes | Skipped], list[Verdict | None]]]:
    """``lines`` in chunks, in order, each with its verdicts. A log of one chunk is
    checked in this process; a longer one by os.cpu_count() workers, with
    AUDIT_CHUNKS_AHEAD chunks per worker in flight while the caller replays."""
    harvest = KeyHarvest()
    chunks = _chunks(lines, chunk_lines)
    first = next(chunks, None)
    if first is None:
        return
    if len(first) < chunk_lines:  # the whole log: no worker is worth starting
        payload = _payload(first)
        yield first, check_chunk(payload, harvest.for_lines(payload))
        return
    workers = os.cpu_count() or 1
    context = multiprocessing.get_context("spawn")  # no inherited state or handles
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as executor:
        pending: deque[tuple[list[bytes | Skipped], list[bytes], Future[Any] | None]] = deque()
        for chunk in _prepend(first, chunks):
            payload = _payload(chunk)
            pending.append((chunk, payload, _submit(executor, payload, harvest)))
            while len(pending) > workers * AUDIT_CHUNKS_AHEAD:
                yield _result(pending.popleft(), harvest)
        while pending:
            yield _result(pending.popleft(), harvest)


def _prepend(
    first: list[bytes | Skipped], rest: Iterator[list[bytes | Skipped]]
) -> Iterator[list[bytes | Skipped]]:
    yield first
    yield from rest


def _submit(
    executor: ProcessPoolExecutor, payload: list[bytes], harvest: KeyHarvest
) -> Future[Any] | None:
    try:
        return executor.submit(check_chunk, payload, harvest.for_lines(payload))
    except (BrokenProcessPool, RuntimeError):  # a dead worker: this process checks it
        return None


def _result(
    item: tuple[list[bytes | Skipped], list[bytes], Future[Any] | None], harvest: KeyHarvest
) -> tuple[list[bytes | Skipped], list[Verdict | None]]:
    chunk, payload, future = item
    if future is not None:
        try:
            verdicts: list[Verdict | None] = future.result()
            return chunk, verdicts
        except BrokenProcessPool:
            pass
    return chunk, check_chunk(payload, harvest.for_lines(payload))
