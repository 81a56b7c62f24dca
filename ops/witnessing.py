"""`alliance serve --witness 31=URL …`: the log sends each new checkpoint to every
region's witness (C2SP tlog-witness add-checkpoint), at most once every
WITNESS_PUSH_INTERVAL_S, and stores the cosignatures they answer (Ledger.add_cosignature
verifies each under the witness key the log declared before it stores it).

A witness that answers 409 with its size (it cosigned another size last: a restart of
either side) is sent the checkpoint again with a proof from that size. A witness that
cannot be reached or refuses is logged and tried again at the next round: cosigning is
never in the way of appends.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

import httpx

from ledger.app import Ledger
from nodes.tlog import SIZE_MEDIA_TYPE, AddCheckpoint
from schemas.errors import AllianceError, ConfigError, MalformedError
from schemas.limits import NODE_HTTP_TIMEOUT_S, WITNESS_PUSH_INTERVAL_S
from signing.checkpoint import cosignature_timestamp
from signing.note import parse_signature_line

log = logging.getLogger("alliance.witnessing")


def parse_witnesses(options: list[str]) -> dict[str, str]:
    """``31=http://host:port`` options as {region: base URL}."""
    found: dict[str, str] = {}
    for option in options:
        region, equals, url = option.partition("=")
        if not equals or not region or not url.startswith(("http://", "https://")):
            raise MalformedError(f"--witness is REGION=URL, not {option!r}", field="--witness")
        found[region] = url.rstrip("/")
    return found


@dataclass
class WitnessPusher:
    ledger: Ledger
    witnesses: Mapping[str, str]  # region -> the witness's submission prefix
    interval_s: float = WITNESS_PUSH_INTERVAL_S
    # The size each witness is known to have cosigned last (0: ask it).
    sizes: dict[str, int] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __post_init__(self) -> None:
        declared = self.ledger.log_keys().witnesses
        for region in self.witnesses:
            if region not in declared:
                raise ConfigError(f"--witness {region}: the log declares no witness for it")
        self.http = httpx.Client(timeout=NODE_HTTP_TIMEOUT_S)

    def push(self) -> dict[str, int]:
        """Send the newest checkpoint to every witness that has not cosigned it; store
        the cosignatures. Returns {region: size} of the witnesses that cosigned it."""
        checkpoint = self.ledger.signed_checkpoint()
        cosigned = {}
        for region, url in sorted(self.witnesses.items()):
            if self.sizes.get(region) == checkpoint.size:
                cosigned[region] = checkpoint.size
                continue
            try:
                if self._send(region, url, checkpoint.note, checkpoint.size):
                    cosigned[region] = checkpoint.size
            except (AllianceError, httpx.HTTPError) as exc:
                log.warning("witness %s at %s: %s", region, url, exc)
        return cosigned

    def _send(self, region: str, url: str, note: str, size: int) -> bool:
        for _ in range(2):  # a 409 tells the size to prove from: one more try
            old = self.sizes.get(region, 0)
            if old > size:
                return False  # the witness is ahead of this log: nothing to prove
            proof = self.ledger.consistency(old, size).hashes if 0 < old < size else []
            body = AddCheckpoint(old, tuple(proof), note).body()
            response = self.http.post(f"{url}/add-checkpoint", content=body)
            if response.status_code == 409 and response.headers.get("content-type", "").startswith(
                SIZE_MEDIA_TYPE
            ):
                self.sizes[region] = int(response.text.strip())
                continue
            response.raise_for_status()
            lines = [line for line in response.text.split("\n") if line]
            for line in lines:
                timestamp_s = cosignature_timestamp(parse_signature_line(line))
                self.ledger.add_cosignature(region, size, line + "\n", timestamp_s)
            self.sizes[region] = size
            return True
        return False

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="witness-pusher", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.http.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                self.push()
            except Exception:  # the job must outlive a broken round; it is logged
                log.exception("witness push round failed")
            elapsed = time.monotonic() - started
            self._stop.wait(max(0.0, self.interval_s - elapsed))


__all__ = ["WitnessPusher", "parse_witnesses"]
