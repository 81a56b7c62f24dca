"""CPython's cyclic collector held off while the ledger makes many short-lived objects."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

# Automatic garbage collection waits while any collection_deferred() block runs; the
# number running, under the lock.
_deferring_lock = threading.Lock()
_deferring = 0
_deferred_by_us = False  # the collector was enabled, and the first of them disabled it


@contextmanager
def collection_deferred() -> Iterator[None]:
    """Hold CPython's automatic collection while the block runs, and run the collection
    that became due at the end, as the interpreter would have (the oldest generation
    past its threshold), in this call.

    Why: the writer's batch (Sequencer.submit_many) makes tens of container objects per
    entry (the schema models above all) that live until the batch is answered, and a
    restore or rebuild (projections.write_all, ledger.restore) makes millions of rows
    and tuples while a replay's whole state is alive. Collecting in the middle walks
    every one of them, and the state besides, again and again (a quarter of an
    import's load time at 100 k entries); collected at the end, each is looked at
    once. These objects hold no reference cycles: cyclic garbage merely waits until
    the block ends; with many callers overlapping, each block's end still collects
    whatever is due."""
    global _deferring, _deferred_by_us  # noqa: PLW0603 (one collector per process)
    with _deferring_lock:
        if _deferring == 0 and gc.isenabled():
            gc.disable()
            _deferred_by_us = True
        _deferring += 1
    try:
        yield
    finally:
        with _deferring_lock:
            _deferring -= 1
            # Not when someone else turned the collector off.
            automatic = _deferred_by_us or gc.isenabled()
            if _deferring == 0 and _deferred_by_us:
                gc.enable()
                _deferred_by_us = False
        count, threshold = gc.get_count(), gc.get_threshold()
        if automatic and threshold[0] and count[0] > threshold[0]:
            generation = next(g for g in (2, 1, 0) if count[g] > threshold[g])
            gc.collect(generation)
