"""ledger.access: the nonce cache's window and bound, and the readers of principals."""

from __future__ import annotations

import pytest

from ledger.access import NonceCache, Reader, reader_of
from schemas.errors import QueueFullError, SignatureError


def test_a_nonce_is_refused_while_live_and_forgotten_after() -> None:
    cache = NonceCache(limit=2)
    cache.remember("k", "a", expires_s=100, now_s=0)
    with pytest.raises(SignatureError):
        cache.remember("k", "a", expires_s=100, now_s=50)
    cache.remember("other-key", "a", expires_s=100, now_s=50)  # nonces are per key
    with pytest.raises(QueueFullError):  # full of live nonces: none is forgotten
        cache.remember("k", "b", expires_s=150, now_s=60)
    cache.remember("k", "b", expires_s=200, now_s=101)  # both expired and dropped
    assert len(cache) == 1
    cache.remember("k", "a", expires_s=250, now_s=150)


def test_principals_become_readers() -> None:
    assert reader_of("operator") == Reader("operator", "operator")
    assert reader_of("region:31") == Reader("region", "31")
    assert reader_of("91310000MA1K000001") == Reader("member", "91310000MA1K000001")
