"""Ed25519 checks on another core: a batch's signatures split between the writer's own
thread and a worker process, so a two-core machine verifies a large batch in about half
the time (Python's GIL keeps a thread from helping).

The worker receives plain bytes (the entry's canonical bytes, each signature, the public
key the state holds for it) and answers per entry "all verified" or the error the serial
path would have raised, so results are the same whichever side checked them. The pool is
started on the first batch large enough to need it (never for a one-entry `alliance
submit`) and lives for the rest of the process.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from schemas import errors
from schemas.errors import RejectedError
from schemas.limits import VERIFY_PARENT_POLL_S, VERIFY_WORKERS_MAX
from signing.entry import verify_entry_signature
from signing.keys import PublicKey, usable_keys

# One entry to check: its canonical bytes and (signature object, raw public key) pairs.
Job = tuple[bytes, list[tuple[dict[str, str], bytes]]]
# None when every signature verified, else (error class name, detail, field).
Verdict = tuple[str, str, str | None] | None
# The verdicts of a chunk's jobs, and the raw keys among the public keys its entries
# declare (base64, as in the wire) that are usable: admission checks them again, and
# finds them in the cache of checked keys.
Verdicts = tuple[list[Verdict], list[bytes]]

_lock = threading.Lock()
_pool: ProcessPoolExecutor | None = None


def _verify_jobs(jobs: Sequence[Job], declared: Sequence[str] = ()) -> Verdicts:
    """In the worker: the serial path's checks, in the same order, per entry; and the
    curve checks of the ``declared`` keys (signing.keys.usable_keys)."""
    verdicts: list[Verdict] = []
    for entry_bytes, pairs in jobs:
        verdict: Verdict = None
        for signature, public in pairs:
            try:
                verify_entry_signature(entry_bytes, signature, PublicKey(public))
            except RejectedError as exc:
                verdict = (type(exc).__name__, exc.detail, exc.field)
                break
        verdicts.append(verdict)
    return verdicts, usable_keys(declared)


def error_of(verdict: tuple[str, str, str | None]) -> RejectedError:
    """The exception a verdict names (a class of schemas.errors)."""
    name, detail, field = verdict
    kind = getattr(errors, name, RejectedError)
    if not (isinstance(kind, type) and issubclass(kind, RejectedError)):
        kind = RejectedError
    return kind(detail, field=field)


def exit_with_parent(parent_pid: int) -> None:
    """In the worker, its initializer: end the worker once the process that started it
    is gone. A ProcessPoolExecutor worker holds both ends of its own call queue, so it
    never sees end-of-file when its parent dies (kill -9, or an exit that skipped the
    executor's shutdown): it would live on as an orphan and keep every file its parent
    gave it open (the server's stderr pipe: whoever waits for that pipe to close, as
    `alliance bench http` did, waits forever)."""

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(VERIFY_PARENT_POLL_S)
        os._exit(0)  # the parent is gone: nobody will read our verdicts

    threading.Thread(target=watch, name="alliance-parent-watch", daemon=True).start()
    # Ctrl-C reaches the whole process group: the parent turns it into its own error
    # and shuts its pools down; a worker's own KeyboardInterrupt would only print a
    # traceback per worker.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def pool() -> ProcessPoolExecutor | None:
    """The worker pool, started on first use; None on a one-core machine."""
    global _pool  # noqa: PLW0603 (one pool per process, started lazily)
    cores = os.cpu_count() or 1
    if cores < 2:
        return None
    with _lock:
        if _pool is None:
            # spawn: a forked child would inherit the writer's database connections.
            context = multiprocessing.get_context("spawn")
            workers = min(cores - 1, VERIFY_WORKERS_MAX)
            _pool = ProcessPoolExecutor(
                max_workers=workers,
                mp_context=context,
                initializer=exit_with_parent,
                initargs=(os.getpid(),),
            )
        return _pool


def reset() -> None:
    """Drop a pool whose worker died or hung; the next large batch starts a new one."""
    global _pool
    with _lock:
        broken, _pool = _pool, None
    if broken is not None:
        broken.shutdown(wait=False, cancel_futures=True)


def shutdown() -> None:
    """Stop the worker and wait for it (a server's shutdown): nothing outlives the
    process that started it."""
    global _pool
    with _lock:
        running, _pool = _pool, None
    if running is not None:
        running.shutdown(wait=True, cancel_futures=True)


def submit(jobs: Sequence[Job], declared: Sequence[str] = ()) -> Future[Verdicts] | None:
    """Start checking ``jobs`` (and the ``declared`` keys) in the worker; None when
    there is no worker."""
    executor = pool()
    if executor is None:
        return None
    try:
        return executor.submit(_verify_jobs, list(jobs), list(declared))
    except (BrokenProcessPool, RuntimeError):  # its worker died: the caller checks itself
        reset()
        return None


def warm_up() -> None:
    """Start the worker now (its interpreter takes about a second to come up)."""
    future = submit([])
    if future is not None:
        future.result()
