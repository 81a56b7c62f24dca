"""The regions' nodes over HTTP, each in its own process against a real `alliance serve`
on 127.0.0.1 (both backends): every region's tlog-witness cosigns what serve sends it,
a region's endorse node holding only its key approves what awaits it, a node that is
given a forged leaf refuses it, and `alliance audit URL` verifies the live log."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from ledger.audit import load_trust
from nodes.http import HttpClient
from nodes.remote import RemoteEndorseNode
from ops.process import ROOT, alliance_server, alliance_servers, serve_args
from ops.service import trust_from_ledger, trust_of
from schemas.errors import VerificationError
from signing.checkpoint import verify_cosigned_checkpoint
from tests.conftest import Alliance
from tests.nodes.support import decisions, merchants, record_return

COSIGN_DEADLINE_S = 30.0
POLL_S = 0.2


def _keys(alliance: Alliance, folder: Path) -> Path:
    alliance.ring.save(folder)
    trust = trust_from_ledger(alliance.ledger)
    text = json.dumps(trust_of(alliance.ledger.log_keys(), trust.log.vkey))
    (folder / "trust.json").write_text(text, encoding="utf-8")
    return folder


@pytest.fixture
def served(alliance: Alliance, tmp_path: Path) -> Iterator[tuple[str, Path, list[int]]]:
    """The log with a return awaiting regions 31 and 32, served with every region's
    witness: (URL, keys folder, the awaiting seqs)."""
    alliance.clock.set(max(alliance.clock(), datetime.now(UTC)))
    seller, buyer = merchants(alliance)
    pending = [
        record_return(alliance, seller, buyer, 1_000, "H-1"),
        record_return(alliance, seller, buyer, 90_000, "H-2"),  # above the rules' 500 元
    ]
    keys = _keys(alliance, tmp_path / "keys")
    regions = [region.code for region in alliance.config.regions]
    witnesses = [
        ["witness", "--region", code, "--key", str(keys / f"region-{code}.witness.pem")]
        for code in regions
    ]
    with alliance_servers(witnesses, ready_path="/add-checkpoint") as urls:
        pushes = [f"--witness={code}={url}" for code, url in zip(regions, urls, strict=True)]
        with alliance_server(serve_args(alliance.url, keys, *pushes)) as url:
            yield url, keys, pending


def _cosigned_by_all(url: str, keys: Path, size: int) -> list[str]:
    """Poll the checkpoint (with a deadline) until every region's witness cosigned a
    checkpoint of at least ``size``; the names of those who cosigned."""
    trust = load_trust(keys / "trust.json")
    deadline = time.monotonic() + COSIGN_DEADLINE_S
    while True:
        note = httpx.get(f"{url}/checkpoint").text
        checkpoint, cosigned = verify_cosigned_checkpoint(
            note, trust.log, list(trust.witnesses.values())
        )
        if checkpoint.size >= size and len(cosigned) == len(trust.witnesses):
            return sorted(cosigned)
        assert time.monotonic() < deadline, f"cosigned by {sorted(cosigned)} only"
        time.sleep(POLL_S)  # polling the server with a deadline, not timing a result


def _alliance(*arguments: str) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "ops.cli", *arguments],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_regions_endorse_and_cosign_through_their_own_nodes(
    alliance: Alliance, served: tuple[str, Path, list[int]]
) -> None:
    """One server and its witnesses per backend (each start-up takes seconds): a forged
    leaf refused, the regions' decisions, the cosignatures, then the audit."""
    url, keys, pending = served
    _refuses_a_forged_leaf(alliance, url, keys, pending)
    size = alliance.ledger.size()
    names = _cosigned_by_all(url, keys, size)
    assert len(names) == len(alliance.config.regions)
    small, large = pending
    for region in ("31", "32"):
        key = str(keys / f"region-{region}.pem")
        done = _alliance("endorse", "--url", url, "--region", region, "--key", key)
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout) == {
            "region": region,
            "approved": 1,
            "rejected": 0,
            "queued": [large],
        }
        # A person decides what the rules left, over HTTP too.
        decided = _alliance(
            "endorse", "--url", url, "--region", region, "--key", key, "--review",
            "--approve", str(large),
        )  # fmt: skip
        assert decided.returncode == 0, decided.stderr
        assert json.loads(decided.stdout)["approved"] == 1
    logged = decisions(alliance.ledger, size)
    assert sorted(signer for signer, _ in logged) == ["region:31"] * 2 + ["region:32"] * 2
    assert sorted(body["targets"][0] for _, body in logged) == [small, small, large, large]
    # The endorsements' checkpoint is cosigned too: serve sent it to every witness.
    _cosigned_by_all(url, keys, alliance.ledger.size())
    again = _alliance(
        "endorse", "--url", url, "--region", "31", "--key", str(keys / "region-31.pem")
    )
    assert json.loads(again.stdout)["approved"] == 0
    _audits_the_live_log(alliance, url, keys)


def _refuses_a_forged_leaf(alliance: Alliance, url: str, keys: Path, pending: list[int]) -> None:
    node = RemoteEndorseNode("31", alliance.ring.keys["region:31"], load_trust(keys / "trust.json"))

    class Forging(HttpClient):
        def pending(self, region: str, after: int = -1) -> dict[str, object]:
            answer = super().pending(region, after)
            for entry in answer["entries"]:
                entry["leaf"] = entry["leaf"][:-8] + "AAAAAAA="
            return answer

    with Forging(url, alliance.ring.keys["region:31"]) as client, pytest.raises(VerificationError):
        node.run(client, datetime.now(UTC))
    assert decisions(alliance.ledger, pending[0]) == []


def _audits_the_live_log(alliance: Alliance, url: str, keys: Path) -> None:
    _cosigned_by_all(url, keys, alliance.ledger.size())
    done = _alliance("audit", url, "--keys", str(keys), "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert report["ok"] is True
    assert report["size"] == alliance.ledger.size()
    public = _alliance(
        "audit", url, "--key", str(keys / "region-31.pem"), "--trust", str(keys / "trust.json")
    )
    assert public.returncode == 1
    assert "forbidden" in public.stderr  # entry bundles are for auditors and the operator
