"""The desk's pure parts: anomaly flags at their thresholds, age buckets, instruction
status, and the session store's bounds."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ledger.access import KeyLookup
from ledger.desk import (
    BUNCHED_PERCENT_MIN,
    BUNCHED_RETURNS_MIN,
    LATE_DAYS,
    OUTSIZED_PERCENT_MIN,
    OUTSIZED_RETURNS_MIN,
    AcceptedReturn,
    age_buckets,
    anomaly_flags,
    instruction_status,
)
from ledger.rows import KeyRow
from ledger.sessions import Sessions, challenge_message
from schemas.errors import QueueFullError, SignatureError
from signing.keys import PrivateKey, b64encode

NOW = datetime(2026, 11, 23, 2, tzinfo=UTC)


def _returns(acceptor: str, count: int, late: int) -> list[AcceptedReturn]:
    return [
        AcceptedReturn(acceptor, LATE_DAYS if i < late else LATE_DAYS + 3) for i in range(count)
    ]


def test_bunched_at_window_end_fires_at_its_threshold_only() -> None:
    count = BUNCHED_RETURNS_MIN
    late = -(-count * BUNCHED_PERCENT_MIN // 100)  # the least count at the threshold
    flags = anomaly_flags(_returns("A", count, late))
    assert [(f.rule, f.member, f.returns) for f in flags] == [("bunched_at_window_end", "A", count)]
    assert flags[0].percent >= BUNCHED_PERCENT_MIN
    assert anomaly_flags(_returns("A", count, late - 1)) == []
    assert anomaly_flags(_returns("A", count - 1, count - 1)) == []  # too few to judge


def test_outsized_share_fires_for_the_acceptor_holding_the_share() -> None:
    others = [AcceptedReturn(f"M{i}", 10) for i in range(OUTSIZED_RETURNS_MIN * 4)]
    big = -(-len(others) * OUTSIZED_PERCENT_MIN // (100 - OUTSIZED_PERCENT_MIN))
    flags = anomaly_flags(others + [AcceptedReturn("BIG", 10)] * big)
    assert [(f.rule, f.member) for f in flags] == [("outsized_share", "BIG")]
    assert flags[0].percent >= OUTSIZED_PERCENT_MIN
    assert anomaly_flags(others + [AcceptedReturn("BIG", 10)] * (big // 2)) == []
    few = [AcceptedReturn("ONE", 10)] * (OUTSIZED_RETURNS_MIN - 1)
    assert anomaly_flags(few) == []


def test_age_buckets_and_instruction_status() -> None:
    assert age_buckets([0, 3, 4, 30, 31, 400]) == [
        ("0-3", 2),
        ("4-7", 1),
        ("8-14", 0),
        ("15-30", 1),
        (">30", 2),
    ]
    today = NOW.date()
    assert instruction_status(100, 100, 100, "2026-11-01", today) == "confirmed"
    assert instruction_status(100, 100, 50, "2026-11-01", today) == "paid"
    assert instruction_status(100, 60, 0, "2026-11-22", today) == "overdue"
    assert instruction_status(100, 60, 0, "2026-11-23", today) == "due"


def _signed_in(sessions: Sessions, key: PrivateKey, now: datetime) -> str:
    """Sign region 32 in with ``key`` over a fresh challenge; returns the nonce used."""
    nonce = sessions.challenge(now).nonce
    sig = b64encode(key.sign(challenge_message(nonce, "32", key.key_id)))
    sessions.sign_in("32", key.key_id, nonce, sig, _lookup(key), now)
    return nonce


def _lookup(key: PrivateKey) -> KeyLookup:
    row = KeyRow(key.key_id, "region:32", b64encode(key.public.raw), 0, None)
    return lambda key_id: row if key_id == key.key_id else None


def test_anyone_asking_for_challenges_cannot_lock_a_region_out() -> None:
    """Challenges are free to ask for: the public asking for more than the server
    remembers must not stop a region from signing in (they hold nothing until used)."""
    key = PrivateKey.generate()
    sessions = Sessions(challenges_max=2, challenge_ttl_s=10)
    for _ in range(5):
        sessions.challenge(NOW)
    _signed_in(sessions, key, NOW)
    assert sessions.counts() == (1, 1)


def test_used_nonces_are_bounded_and_swept() -> None:
    key = PrivateKey.generate()
    sessions = Sessions(challenges_max=2, challenge_ttl_s=10)
    used = _signed_in(sessions, key, NOW)
    _signed_in(sessions, key, NOW)
    with pytest.raises(QueueFullError):
        _signed_in(sessions, key, NOW)
    later = datetime.fromtimestamp(NOW.timestamp() + 11, UTC)
    _signed_in(sessions, key, later)  # the expired two are swept first
    assert sessions.counts() == (1, 3)  # the refused one opened no session
    sig = b64encode(key.sign(challenge_message(used, "32", key.key_id)))
    with pytest.raises(SignatureError):  # swept only once expired: still refused
        sessions.sign_in("32", key.key_id, used, sig, _lookup(key), later)


def test_a_challenge_is_this_servers_own_and_used_once() -> None:
    key = PrivateKey.generate()
    sessions = Sessions()
    nonce = sessions.challenge(NOW).nonce
    sig = b64encode(key.sign(challenge_message(nonce, "32", key.key_id)))
    sessions.sign_in("32", key.key_id, nonce, sig, _lookup(key), NOW)
    with pytest.raises(SignatureError):  # replayed
        sessions.sign_in("32", key.key_id, nonce, sig, _lookup(key), NOW)
    other = Sessions().challenge(NOW).nonce  # another server's (or a restarted one's)
    sig = b64encode(key.sign(challenge_message(other, "32", key.key_id)))
    with pytest.raises(SignatureError):
        sessions.sign_in("32", key.key_id, other, sig, _lookup(key), NOW)
    mine = sessions.challenge(NOW).nonce
    forged = mine[:-1] + ("A" if mine[-1] != "A" else "B")  # its MAC no longer matches
    sig = b64encode(key.sign(challenge_message(forged, "32", key.key_id)))
    with pytest.raises(SignatureError):
        sessions.sign_in("32", key.key_id, forged, sig, _lookup(key), NOW)


def test_a_session_ends_when_the_log_replaces_its_key() -> None:
    """A thief who signed in with a stolen region key keeps no access once the region
    replaces that key: a request signed by it is refused, and so is its session."""
    key = PrivateKey.generate()
    sessions = Sessions()
    rows = {key.key_id: KeyRow(key.key_id, "region:32", b64encode(key.public.raw), 0, None)}
    nonce = sessions.challenge(NOW).nonce
    sig = b64encode(key.sign(challenge_message(nonce, "32", key.key_id)))
    token, _ = sessions.sign_in("32", key.key_id, nonce, sig, rows.get, NOW)
    assert sessions.reader(token, NOW, rows.get) is not None
    rows[key.key_id] = KeyRow(key.key_id, "region:32", b64encode(key.public.raw), 0, 7)
    assert sessions.reader(token, NOW, rows.get) is None
    assert sessions.counts()[1] == 0  # dropped, not only hidden
    rows[key.key_id] = KeyRow(key.key_id, "region:32", b64encode(key.public.raw), 0, None)
    assert sessions.reader(token, NOW, rows.get) is None  # ended for good
