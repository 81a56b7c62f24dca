"""The witness cosigns only a checkpoint of the trusted log key, proven consistent with
the last one it cosigned, which it learns from the server but takes only from a line
that verifies under its own key."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from ledger.audit import Trust
from nodes.client import LocalClient
from nodes.witness import WitnessNode
from ops.service import trust_from_ledger
from schemas.errors import NotFoundError, VerificationError
from signing.checkpoint import (
    Checkpoint,
    CosignatureVerifier,
    add_cosignatures,
    cosign,
    sign_checkpoint,
    verify_cosigned_checkpoint,
)
from signing.keys import PrivateKey
from signing.note import NoteSignature, NoteSigner
from tests.conftest import Alliance
from tests.dbtools import plant_cosignature, snapshot
from tests.nodes.support import Hostile


def _witness(alliance: Alliance, region: str = "31", key: PrivateKey | None = None) -> WitnessNode:
    return WitnessNode(
        region, key or alliance.ring.witnesses[region], trust_from_ledger(alliance.ledger)
    )


def _name(alliance: Alliance, region: str = "31") -> str:
    return alliance.ledger.log_keys().witnesses[region].name


def _rows(alliance: Alliance, region: str = "31") -> list[int]:
    """The sizes of the stored cosignature rows of ``region``'s witness."""
    name = _name(alliance, region)
    return [
        size for size, witness, _, _ in snapshot(alliance.engine).cosignatures if witness == name
    ]


def _append(alliance: Alliance, count: int = 1) -> int:
    for _ in range(count):
        alliance.ledger.submit(alliance.enroll_doc())
    return alliance.ledger.size()


def _operator_note(alliance: Alliance, size: int, root: bytes) -> str:
    """A checkpoint signed by the log's own key (the operator signing a fork)."""
    origin = alliance.ledger.log_keys().origin
    signer = NoteSigner(origin, alliance.ring.keys["operator"])
    return sign_checkpoint(Checkpoint(origin, size, root), signer)


def _cosigned_by(alliance: Alliance, note: str, region: str) -> bool:
    trust = trust_from_ledger(alliance.ledger)
    verifier = trust.witnesses[region]
    _, names = verify_cosigned_checkpoint(note, trust.log, [verifier])
    return verifier.name in names


def test_only_the_trust_roots_witness_key_is_taken(alliance: Alliance) -> None:
    for key in (
        PrivateKey.generate(),
        alliance.ring.witnesses["32"],
        alliance.ring.keys["region:31"],
        alliance.ring.keys["operator"],
    ):
        with pytest.raises(VerificationError, match="not region 31's witness key"):
            _witness(alliance, "31", key)
    with pytest.raises(NotFoundError, match="no witness for region 99"):
        _witness(alliance, "99", alliance.ring.witnesses["31"])
    # A trust root naming another key for region 31 refuses the key the log declared.
    trust = trust_from_ledger(alliance.ledger)
    other = CosignatureVerifier.from_public(_name(alliance), PrivateKey.generate().public)
    changed = Trust(trust.origin, trust.log, {**trust.witnesses, "31": other})
    with pytest.raises(VerificationError):
        WitnessNode("31", alliance.ring.witnesses["31"], changed)
    assert _witness(alliance).signer.name == _name(alliance)


def test_cosigns_once_per_size_with_a_consistency_check(alliance: Alliance) -> None:
    assert _rows(alliance) == [1]  # the fixture's first cosignature
    size = _append(alliance)
    client = Hostile(LocalClient(alliance.ledger))
    witness = _witness(alliance)
    done = witness.cosign(client, alliance.clock())
    assert (done.old_size, done.size) == (1, size)
    assert client.consistency_asked == [(1, size)]
    assert [(region, at) for region, at, _ in client.cosignatures] == [("31", size)]
    latest = alliance.ledger.signed_checkpoint()
    assert latest.size == size and latest.cosigned_by == ("31",)
    assert _cosigned_by(alliance, latest.note, "31")
    # Idempotent per size: nothing new is stored or asked.
    again = witness.cosign(client, alliance.clock())
    assert (again.old_size, again.size) == (size, size)
    assert len(client.cosignatures) == 1 and _rows(alliance) == [1, size]
    # The operator appends: the new size, proven consistent with the last cosigned.
    newer = _append(alliance, 3)
    done = _witness(alliance).cosign(client, alliance.clock())
    assert (done.old_size, done.size) == (size, newer)
    assert client.consistency_asked == [(1, size), (size, newer)]
    assert _rows(alliance) == [1, size, newer]


def _plant_line(alliance: Alliance, size: int, line: str) -> None:
    plant_cosignature(alliance.engine, size, _name(alliance), line)


def test_a_garbage_row_at_the_next_size_does_not_stop_it(alliance: Alliance) -> None:
    cosigned = _append(alliance)
    _witness(alliance).cosign(LocalClient(alliance.ledger), alliance.clock())
    size = _append(alliance)
    _plant_line(alliance, size, f"\u2014 {_name(alliance)} AAAA\n")
    client = Hostile(LocalClient(alliance.ledger))
    done = _witness(alliance).cosign(client, alliance.clock())
    assert (done.old_size, done.size) == (cosigned, size)
    assert client.consistency_asked == [(cosigned, size)]
    assert _rows(alliance) == [1, cosigned, size, size]
    last = alliance.ledger.last_cosigned("31")
    assert last is not None and last.size == size


def _garbage(alliance: Alliance, size: int) -> str:
    return "garbage\n"


def _by_another_witness(alliance: Alliance, size: int) -> str:
    """The genuine checkpoint, cosigned by region 32's witness only."""
    stored = alliance.ledger.signed_checkpoint()
    origin = alliance.ledger.log_keys().origin
    checkpoint = Checkpoint(origin, stored.size, stored.root)
    note = _operator_note(alliance, stored.size, stored.root)
    other = NoteSigner(_name(alliance, "32"), alliance.ring.witnesses["32"])
    return add_cosignatures(note, [cosign(checkpoint, other, 1)])


def _ours_under_a_foreign_log_key(alliance: Alliance, size: int) -> str:
    """Our own valid cosignature, on a checkpoint the log key did not sign."""
    stored = alliance.ledger.signed_checkpoint()
    origin = alliance.ledger.log_keys().origin
    checkpoint = Checkpoint(origin, stored.size, stored.root)
    note = sign_checkpoint(checkpoint, NoteSigner(origin, PrivateKey.generate()))
    own = NoteSigner(_name(alliance), alliance.ring.witnesses["31"])
    return add_cosignatures(note, [cosign(checkpoint, own, 1)])


FRESH: dict[str, Callable[[Alliance, int], str | None]] = {
    "none": lambda _alliance, _size: None,
    "garbage": _garbage,
    "another witness's line": _by_another_witness,
    "foreign log key": _ours_under_a_foreign_log_key,
}


@pytest.mark.parametrize("case", sorted(FRESH))
def test_without_a_valid_line_of_its_own_it_is_fresh(alliance: Alliance, case: str) -> None:
    size = _append(alliance)
    client = Hostile(LocalClient(alliance.ledger), use_cosigned=True)
    client.cosigned_note = FRESH[case](alliance, size)
    done = _witness(alliance).cosign(client, alliance.clock())
    assert (done.old_size, done.size) == (None, size)
    assert client.consistency_asked == []
    assert [at for _, at, _ in client.cosignatures] == [size]


def test_a_valid_line_of_its_own_counts_beside_garbage(alliance: Alliance) -> None:
    cosigned = _append(alliance)
    _witness(alliance).cosign(LocalClient(alliance.ledger), alliance.clock())
    honest = alliance.ledger.last_cosigned("31")
    assert honest is not None and honest.size == cosigned
    own = trust_from_ledger(alliance.ledger).witnesses["31"]
    bogus = NoteSignature(own.name, own.key_hash, bytes(72)).line
    size = _append(alliance)
    client = Hostile(LocalClient(alliance.ledger), use_cosigned=True)
    client.cosigned_note = honest.note + bogus  # our line, then a forged one by our key
    done = _witness(alliance).cosign(client, alliance.clock())
    assert (done.old_size, done.size) == (cosigned, size)
    assert client.consistency_asked == [(cosigned, size)]


def _forked_newer(alliance: Alliance, client: Hostile, cosigned: int, first: str) -> str:
    client.note = _operator_note(alliance, alliance.ledger.size(), bytes(32))
    return "does not match the roots"


def _other_root_same_size(alliance: Alliance, client: Hostile, cosigned: int, first: str) -> str:
    client.note = _operator_note(alliance, cosigned, bytes(32))
    return "two roots"


def _older(alliance: Alliance, client: Hostile, cosigned: int, first: str) -> str:
    client.note = first  # genuine, and older than what the witness cosigned
    return "smaller"


def _bad_proof(alliance: Alliance, client: Hostile, cosigned: int, first: str) -> str:
    client.proof = [bytes(32)]
    return "consistency proof"


FORKS: dict[str, Callable[[Alliance, Hostile, int, str], str]] = {
    "a newer root not consistent": _forked_newer,
    "another root at the cosigned size": _other_root_same_size,
    "an older checkpoint": _older,
    "a bad consistency proof": _bad_proof,
}


@pytest.mark.parametrize("case", sorted(FORKS))
def test_an_inconsistent_checkpoint_is_never_cosigned(alliance: Alliance, case: str) -> None:
    first = alliance.ledger.signed_checkpoint().note
    cosigned = _append(alliance)
    _witness(alliance).cosign(LocalClient(alliance.ledger), alliance.clock())
    _append(alliance, 2)
    before = snapshot(alliance.engine).cosignatures
    client = Hostile(LocalClient(alliance.ledger))
    message = FORKS[case](alliance, client, cosigned, first)
    with pytest.raises(VerificationError, match=message):
        _witness(alliance).cosign(client, alliance.clock())
    assert client.cosignatures == []
    assert snapshot(alliance.engine).cosignatures == before
    # The honest log is still cosigned, from the size cosigned before.
    done = _witness(alliance).cosign(LocalClient(alliance.ledger), alliance.clock())
    assert (done.old_size, done.size) == (cosigned, alliance.ledger.size())


def test_a_server_hiding_the_last_cosignature_cannot_skip_the_consistency_check(
    alliance: Alliance, tmp_path: Path
) -> None:
    """The witness keeps what it cosigned on its own machine: a server that later answers
    "you cosigned nothing" and serves a fork is refused, by the same node and by a new
    node reading the state file."""
    state = tmp_path / "region-31.witness.state.json"
    trust = trust_from_ledger(alliance.ledger)
    key = alliance.ring.witnesses["31"]
    WitnessNode("31", key, trust, state).cosign(LocalClient(alliance.ledger), alliance.clock())
    kept = json.loads(state.read_text())
    alliance.sequencer.submit(alliance.enroll_doc())
    fork = _ForkingClient(alliance)
    for node in (WitnessNode("31", key, trust, state),):
        with pytest.raises(VerificationError):
            node.cosign(fork, alliance.clock())
    assert json.loads(state.read_text()) == kept


class _ForkingClient(LocalClient):
    """Hides every cosignature and serves a checkpoint of a forked tree, signed by the
    operator (a compromised server)."""

    def __init__(self, alliance: Alliance) -> None:
        super().__init__(alliance.ledger)
        latest = alliance.ledger.signed_checkpoint()
        signer = NoteSigner(alliance.config.origin, alliance.ring.keys["operator"])
        forged = Checkpoint(alliance.config.origin, latest.size, bytes(32))
        self._note = sign_checkpoint(forged, signer)

    def checkpoint(self) -> str:
        return self._note

    def cosigned(self, region: str) -> str | None:
        return None

    def consistency(self, old: int, new: int) -> list[bytes]:
        return super().consistency(old, new)
