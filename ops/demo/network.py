"""The demo's regions on the network: the log's HTTP API on 127.0.0.1, each region's
endorsement node talking to it with only that region's key, and each region's witness
as a C2SP tlog-witness server in its own process, which the log sends its checkpoints.

The API runs on uvicorn in a thread of the demo's process, over the demo's own Ledger:
the simulation's log clock is the server's clock (a separate `alliance serve` would log
at the wall clock, weeks after the simulated days). The witnesses are separate
processes (`alliance witness --listen`) with their keys in a private folder; their
cosignatures carry their own (wall) clock's time.
"""

from __future__ import annotations

import contextlib
import json
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import uvicorn

from api.app import create_app
from ledger.app import Ledger
from ledger.state import region_principal
from nodes.endorse import Judge, Outcome
from nodes.http import HttpClient
from nodes.remote import RemoteEndorseNode
from ops.process import alliance_servers, free_port
from ops.service import trust_from_ledger, trust_of
from ops.witnessing import WitnessPusher
from ops.world import Clock, Keyring
from schemas.errors import ConfigError, invariant
from signing.keys import witness_file_name

READY_DEADLINE_S = 30.0
READY_POLL_S = 0.05


@dataclass
class Network:
    url: str
    witness_urls: dict[str, str]
    endorsers: dict[str, tuple[RemoteEndorseNode, HttpClient]]
    pusher: WitnessPusher
    new_id: Callable[[], str]

    def endorse(self, region: str, clock: Clock, judge: Judge) -> Outcome:
        node, client = self.endorsers[region]
        return node.run(client, clock.now, judge)

    def cosign(self) -> None:
        """Send the newest checkpoint to every witness now; each must cosign it."""
        cosigned = self.pusher.push()
        missing = sorted(set(self.witness_urls) - set(cosigned))
        invariant(not missing, f"demo: witnesses {missing} did not cosign over HTTP")

    def story(self) -> str:
        regions = ", ".join(sorted(self.endorsers))
        witnesses = ", ".join(f"{code}={url}" for code, url in sorted(self.witness_urls.items()))
        return (
            f"over HTTP: regions {regions} endorsed through their own nodes at {self.url} "
            f"(each holding only its key); witnesses cosigned via tlog-witness at {witnesses}"
        )


@contextlib.contextmanager
def network(
    ledger: Ledger, ring: Keyring, regions: list[str], clock: Clock, new_id: Callable[[], str]
) -> Iterator[Network]:
    """The API, the witness processes and the regions' nodes, until the block ends."""
    trust = trust_from_ledger(ledger)
    with tempfile.TemporaryDirectory(prefix="alliance-demo-keys-") as folder:
        keys = Path(folder)
        text = json.dumps(trust_of(ledger.log_keys(), trust.log.vkey))
        (keys / "trust.json").write_text(text, encoding="utf-8")
        commands = []
        for code in regions:
            ring.witnesses[code].save(keys / witness_file_name(code))
            commands.append(
                ["witness", "--region", code, "--key", str(keys / witness_file_name(code))]
            )
        with (
            alliance_servers(commands, ready_path="/add-checkpoint") as urls,
            _api(ledger, clock) as url,
        ):
            witness_urls = dict(zip(regions, urls, strict=True))
            pusher = WitnessPusher(ledger, witness_urls)
            endorsers = {}
            for code in regions:
                key = ring.keys[region_principal(code)]
                node = RemoteEndorseNode(code, key, trust, new_id=new_id)
                endorsers[code] = (node, HttpClient(url, key, clock))
            try:
                yield Network(url, witness_urls, endorsers, pusher, new_id)
            finally:
                for _, client in endorsers.values():
                    client.close()
                pusher.stop()


@contextlib.contextmanager
def _api(ledger: Ledger, clock: Clock) -> Iterator[str]:
    port = free_port()
    config = uvicorn.Config(
        create_app(ledger, clock),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="demo-api", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + READY_DEADLINE_S
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise ConfigError("the demo's API did not start")
            time.sleep(READY_POLL_S)  # polling a flag with a deadline
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join()


__all__ = ["Network", "network"]
