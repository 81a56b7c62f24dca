"""Region sign-in for the web console (issue 10, "Signing in"): a login challenge, its
signature by a region key the log declares, and the short-lived session that follows.

The private key never reaches the server: the browser reads the region's key file and
signs ``challenge_message`` with WebCrypto Ed25519. A challenge holds nothing on the
server until it is used: its nonce carries its expiry and this server's HMAC over both
(anyone may ask for challenges, so a map of them would let the public fill it and lock
every region out). The server keeps, in memory and bounded, the nonces already used
(each signs in once, within SESSION_CHALLENGE_TTL_S: only a region's valid signature
adds one) and the sessions it opened (random tokens, each SESSION_TTL_S). A session makes its holder
the region's ``ledger.access.Reader``: the same scope as a request the region signs.

The message signed (docs/PROTOCOL.md §6, "Sessions"):

    alliance-ledger/v1/session\\n<nonce>\\nregion:<R>\\n<key id>\\n

A key the log does not hold, a key of another principal, and a replaced key are refused
(401 ``bad-signature``), exactly as for RFC 9421 requests (ledger.access.authenticate).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
from dataclasses import dataclass, field
from datetime import datetime

from ledger.access import KeyLookup, Reader
from schemas.errors import QueueFullError, SignatureError, invariant
from schemas.limits import (
    SESSION_CHALLENGE_TTL_S,
    SESSION_CHALLENGES_MAX,
    SESSION_TTL_S,
    SESSIONS_MAX,
)
from signing.keys import SIGNATURE_SIZE, PublicKey, b64decode

SESSION_PREFIX = "alliance-ledger/v1/session"
NONCE_RANDOM_BYTES = 16
NONCE_EXPIRY_BYTES = 8
NONCE_MAC_BYTES = 16
NONCE_BYTES = NONCE_RANDOM_BYTES + NONCE_EXPIRY_BYTES + NONCE_MAC_BYTES  # 54 base64url
SECRET_BYTES = 32
TOKEN_BYTES = 32
REGION_CODE_DIGITS = 2


def challenge_message(nonce: str, region: str, key_id: str) -> bytes:
    """The bytes a region signs to sign in (UTF-8; every field is ASCII)."""
    return f"{SESSION_PREFIX}\n{nonce}\nregion:{region}\n{key_id}\n".encode()


@dataclass(frozen=True, slots=True)
class Challenge:
    nonce: str
    expires_s: int


@dataclass(frozen=True, slots=True)
class Session:
    """An open session: its reader (a region), when it ends (Unix seconds), and the key
    it was opened with (a session ends when the log replaces that key)."""

    reader: Reader
    expires_s: int
    key_id: str


def _digest(token: str) -> str:
    """Sessions are kept under their token's SHA-256: a dump of the map opens none."""
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass
class Sessions:
    """The nonces used and the sessions opened, each map bounded and swept of expired
    items before it is judged full; challenges themselves are stateless (HMAC)."""

    challenges_max: int = SESSION_CHALLENGES_MAX  # used nonces remembered
    sessions_max: int = SESSIONS_MAX
    challenge_ttl_s: int = SESSION_CHALLENGE_TTL_S
    session_ttl_s: int = SESSION_TTL_S
    _secret: bytes = field(default_factory=lambda: secrets.token_bytes(SECRET_BYTES))
    _spent: dict[str, int] = field(default_factory=dict)
    _sessions: dict[str, Session] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _mac(self, head: bytes) -> bytes:
        return hmac.new(self._secret, head, hashlib.sha256).digest()[:NONCE_MAC_BYTES]

    def challenge(self, now: datetime) -> Challenge:
        """A fresh nonce to sign, valid for ``challenge_ttl_s``: random bytes, the expiry
        and this server's MAC over both, base64url. Nothing is stored."""
        expires_s = int(now.timestamp()) + self.challenge_ttl_s
        head = secrets.token_bytes(NONCE_RANDOM_BYTES) + expires_s.to_bytes(NONCE_EXPIRY_BYTES)
        raw = head + self._mac(head)
        return Challenge(base64.urlsafe_b64encode(raw).decode().rstrip("="), expires_s)

    def _issued_expiry(self, nonce: str, now_s: int) -> int:
        """The expiry of a nonce this server issued and that has not expired; else
        SignatureError. The MAC is compared in constant time."""
        try:
            raw = base64.urlsafe_b64decode(nonce + "=" * (-len(nonce) % 4))
        except ValueError:
            raw = b""
        head, mac = raw[:-NONCE_MAC_BYTES], raw[-NONCE_MAC_BYTES:]
        canonical = base64.urlsafe_b64encode(raw).decode().rstrip("=") == nonce
        if len(raw) != NONCE_BYTES or not canonical:
            raise SignatureError("the sign-in challenge is unknown, used or expired")
        if not hmac.compare_digest(mac, self._mac(head)):
            raise SignatureError("the sign-in challenge is unknown, used or expired")
        expires_s = int.from_bytes(head[NONCE_RANDOM_BYTES:])
        if expires_s < now_s:
            raise SignatureError("the sign-in challenge is unknown, used or expired")
        return expires_s

    def _spend(self, nonce: str, expires_s: int, now_s: int) -> None:
        """Mark ``nonce`` used (SignatureError if it already was): at most
        ``challenges_max`` unexpired ones are remembered, then 503."""
        with self._lock:
            if nonce in self._spent:
                raise SignatureError("the sign-in challenge is unknown, used or expired")
            if len(self._spent) >= self.challenges_max:
                self._spent = {n: e for n, e in self._spent.items() if e >= now_s}
            if len(self._spent) >= self.challenges_max:
                raise QueueFullError(f"{self.challenges_max} sign-ins are still remembered")
            self._spent[nonce] = expires_s

    def sign_in(
        self,
        region: str,
        key_id: str,
        nonce: str,
        signature_b64: str,
        lookup: KeyLookup,
        now: datetime,
    ) -> tuple[str, Session]:
        """Open a session for ``region`` if ``signature_b64`` is its current key's
        signature over challenge_message(nonce, region, key_id) and the nonce is one
        this server issued, unused and unexpired (a valid signature spends it). Returns
        the token (for the cookie) and the session; SignatureError (401) otherwise."""
        now_s = int(now.timestamp())
        expires_s = self._issued_expiry(nonce, now_s)
        if not (len(region) == REGION_CODE_DIGITS and region.isascii() and region.isdigit()):
            raise SignatureError(f"{region!r} is not a region code")
        row = lookup(key_id)
        if row is None or row.principal != f"region:{region}":
            raise SignatureError(f"key {key_id} is not a key of region {region}")
        if row.until_seq is not None:
            raise SignatureError(f"key {key_id} was replaced at seq {row.until_seq}")
        raw = b64decode(signature_b64, size=SIGNATURE_SIZE, what="signature")
        key = PublicKey.from_wire({"key": row.key_id, "pub": row.pub})
        key.verify(raw, challenge_message(nonce, region, key_id))
        self._spend(nonce, expires_s, now_s)
        return self._open(Reader("region", region), key_id, now_s)

    def _open(self, reader: Reader, key_id: str, now_s: int) -> tuple[str, Session]:
        token = secrets.token_urlsafe(TOKEN_BYTES)
        session = Session(reader, now_s + self.session_ttl_s, key_id)
        with self._lock:
            if len(self._sessions) >= self.sessions_max:
                self._sessions = {d: s for d, s in self._sessions.items() if s.expires_s >= now_s}
            if len(self._sessions) >= self.sessions_max:
                raise QueueFullError(f"{self.sessions_max} sessions are open")
            self._sessions[_digest(token)] = session
        return token, session

    def reader(self, token: str, now: datetime, lookup: KeyLookup) -> Session | None:
        """The open session of ``token``, or None (unknown or ended: ended ones are
        dropped). A session whose key the log no longer holds as current ends too,
        as a request signed by that key would be refused."""
        digest = _digest(token)
        with self._lock:
            session = self._sessions.get(digest)
            if session is None:
                return None
            if session.expires_s < int(now.timestamp()):
                del self._sessions[digest]
                return None
        invariant(session.reader.role == "region", "sessions are opened for regions only")
        row = lookup(session.key_id)
        if row is None or row.until_seq is not None:
            self.sign_out(token)
            return None
        return session

    def sign_out(self, token: str) -> None:
        with self._lock:
            self._sessions.pop(_digest(token), None)

    def counts(self) -> tuple[int, int]:
        """(used nonces, sessions) held, live or not yet swept."""
        with self._lock:
            return len(self._spent), len(self._sessions)


__all__ = ["Challenge", "Session", "Sessions", "challenge_message"]
