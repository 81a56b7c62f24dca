"""The endorsement node trusts only what it verified: it approves by its stated rules
from the state it replayed itself, queues the rest for a person, and refuses a log that
does not verify (a lying server gets no decision out of it)."""

from __future__ import annotations

import ast
import inspect
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

import nodes
from ledger.projections import FIELD_NAMES
from nodes.client import LocalClient
from nodes.endorse import Awaiting, Decision, EndorseNode, NodeRules, ReviewQueue
from ops.service import trust_from_ledger
from schemas.errors import PolicyError, VerificationError
from signing.checkpoint import Checkpoint, sign_checkpoint
from signing.keys import PrivateKey
from signing.note import NoteSigner
from tests.conftest import Alliance
from tests.nodes.support import Hostile, decisions, merchants, record_return

NODES_DIR = Path(inspect.getfile(nodes)).parent


def _node(
    alliance: Alliance,
    region: str,
    tmp_path: Path,
    rules: NodeRules | None = None,
    key: PrivateKey | None = None,
) -> EndorseNode:
    """A region's node as it runs on the region's machine: its key, the trust root and
    its review queue file; nothing else."""
    return EndorseNode(
        region,
        key or alliance.ring.keys[f"region:{region}"],
        trust_from_ledger(alliance.ledger),
        rules or NodeRules(),
        _queue_path(tmp_path, region),
    )


def _queue_path(tmp_path: Path, region: str) -> Path:
    return tmp_path / f"region-{region}.review.json"


def _queued_on_disk(tmp_path: Path, region: str) -> list[int]:
    raw = json.loads(_queue_path(tmp_path, region).read_text(encoding="utf-8"))
    return [int(item["target"]) for item in raw["items"]]


def _status(alliance: Alliance, seq: int) -> str:
    """The endorsable's status as a replay of the log (every signature checked) says."""
    row = alliance.ledger.replayed_state().endorsables.get(seq)
    assert row is not None
    return row.status


def _approve(targets: list[int]) -> dict[str, Any]:
    return {"targets": targets, "decision": "approve", "reason": ""}


# --- the stated rules ------------------------------------------------------------------


def test_a_small_cross_region_return_is_approved_by_both_regions(
    alliance: Alliance, tmp_path: Path
) -> None:
    seller, buyer = merchants(alliance)
    seq = record_return(alliance, seller, buyer, 500, "R-1")
    start = alliance.ledger.size()
    client = LocalClient(alliance.ledger)
    for region in ("31", "32"):
        assert _status(alliance, seq) == "pending"
        outcome = _node(alliance, region, tmp_path).run(client, alliance.clock())
        assert (outcome.approved, outcome.rejected, outcome.queued) == (1, 0, [])
    assert decisions(alliance.ledger, start) == [
        ("region:31", _approve([seq])),
        ("region:32", _approve([seq])),
    ]
    assert _status(alliance, seq) == "approved"
    # A region the return does not touch has nothing to decide; a second run neither.
    assert _node(alliance, "33", tmp_path).run(client, alliance.clock()).approved == 0
    assert _node(alliance, "31", tmp_path).run(client, alliance.clock()).approved == 0
    assert alliance.ledger.size() == start + 2


def test_a_return_above_the_limit_waits_for_a_person(alliance: Alliance, tmp_path: Path) -> None:
    seller, buyer = merchants(alliance)
    seq = record_return(alliance, seller, buyer, 5_000, "R-1")
    client = LocalClient(alliance.ledger)
    node = _node(alliance, "31", tmp_path, NodeRules(auto_approve_max_fen=1_000))
    start = alliance.ledger.size()
    outcome = node.run(client, alliance.clock())
    assert (outcome.approved, outcome.rejected, outcome.queued) == (0, 0, [seq])
    assert alliance.ledger.size() == start  # nothing decided
    [item] = node.queue.listing()
    assert item["target"] == seq and item["reasons"] == ["amount 5000 fen above 1000"]
    assert _queued_on_disk(tmp_path, "31") == [seq]

    # A rejection must say why; only what awaits this region can be decided.
    for reason in ("", "   "):
        with pytest.raises(PolicyError, match="reason"):
            node.review(client, alliance.clock(), [], [seq], reason)
    with pytest.raises(PolicyError, match="does not await"):
        node.review(client, alliance.clock(), [seq - 1], [], "")  # the buyer's enrolment
    with pytest.raises(PolicyError, match="does not await"):
        node.review(client, alliance.clock(), [seq + 50], [], "")
    with pytest.raises(PolicyError, match="does not await region 33"):
        _node(alliance, "33", tmp_path).review(client, alliance.clock(), [seq], [], "")
    assert alliance.ledger.size() == start
    assert _queued_on_disk(tmp_path, "31") == [seq]

    decided = node.review(client, alliance.clock(), [seq], [], "")
    assert (decided.approved, decided.rejected) == (1, 0)
    assert decisions(alliance.ledger, start) == [("region:31", _approve([seq]))]
    assert _queued_on_disk(tmp_path, "31") == []
    assert ReviewQueue(_queue_path(tmp_path, "31")).listing() == []
    # Region 32's own node, on its default rules, approves: the return is approved.
    assert _node(alliance, "32", tmp_path).run(client, alliance.clock()).approved == 1
    assert _status(alliance, seq) == "approved"


def test_a_person_rejects_with_a_reason(alliance: Alliance, tmp_path: Path) -> None:
    seller, buyer = merchants(alliance)
    seq = record_return(alliance, seller, buyer, 5_000, "R-1")
    client = LocalClient(alliance.ledger)
    node = _node(alliance, "31", tmp_path, NodeRules(auto_approve_max_fen=0))
    assert node.run(client, alliance.clock()).queued == [seq]
    decided = node.review(client, alliance.clock(), [], [seq], "receipt_not_genuine")
    assert (decided.approved, decided.rejected) == (0, 1)
    start = alliance.ledger.size() - 1
    assert decisions(alliance.ledger, start) == [
        ("region:31", {"targets": [seq], "decision": "reject", "reason": "receipt_not_genuine"})
    ]
    assert _status(alliance, seq) == "rejected"
    assert _queued_on_disk(tmp_path, "31") == []


def test_a_seller_suspended_after_recording_is_queued(alliance: Alliance, tmp_path: Path) -> None:
    seller, buyer = merchants(alliance)
    seq = record_return(alliance, seller, buyer, 500, "R-1")
    body = {"member": seller, "reason": "complaints_under_review"}
    alliance.ledger.submit(
        alliance.factory.signed(
            alliance.ring, "member.suspended", "region:31", body, alliance.clock()
        )
    )
    start = alliance.ledger.size()
    client = LocalClient(alliance.ledger)
    for region in ("31", "32"):
        outcome = _node(alliance, region, tmp_path).run(client, alliance.clock())
        assert (outcome.approved, outcome.queued) == (0, [seq])
        [item] = ReviewQueue(_queue_path(tmp_path, region)).listing()
        assert item["reasons"] == [f"{seller} is not an active member"]
    assert alliance.ledger.size() == start


def test_the_queue_holds_only_what_still_awaits_a_person(
    alliance: Alliance, tmp_path: Path
) -> None:
    seller, buyer = merchants(alliance)
    first = record_return(alliance, seller, buyer, 5_000, "R-1")
    second = record_return(alliance, seller, buyer, 5_000, "R-2")
    client = LocalClient(alliance.ledger)
    strict = _node(alliance, "31", tmp_path, NodeRules(auto_approve_max_fen=0))
    assert strict.run(client, alliance.clock()).queued == [first, second]
    # Region 32 rejects the first: it awaits nobody any more.
    region_32 = _node(alliance, "32", tmp_path)

    def reject_first(item: Awaiting) -> Decision | None:
        return Decision(False, "duplicate_claim") if item.target == first else None

    assert region_32.run(client, alliance.clock(), reject_first).rejected == 1
    assert _status(alliance, first) == "rejected"
    assert strict.run(client, alliance.clock()).queued == [second]
    assert _queued_on_disk(tmp_path, "31") == [second]
    # The same queue under rules that approve the second: it leaves the queue.
    relaxed = _node(alliance, "31", tmp_path)
    assert relaxed.queue.listing()[0]["target"] == second
    outcome = relaxed.run(client, alliance.clock())
    assert (outcome.approved, outcome.queued) == (1, [])
    assert _queued_on_disk(tmp_path, "31") == []


# --- what the node holds ---------------------------------------------------------------


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_the_node_holds_no_operator_key(alliance: Alliance, tmp_path: Path) -> None:
    sources = sorted(NODES_DIR.glob("*.py"))
    assert {path.name for path in sources} >= {"endorse.py", "follower.py", "witness.py"}
    for path in sources:
        source = path.read_text(encoding="utf-8")
        for needle in ("operator.pem", ".derive_secret", "Sequencer", ".writer"):
            assert needle not in source, (path.name, needle)
        imported = _imported_modules(path)
        assert not {"ledger.sequencer", "ledger.seal", "ops.world"} & imported, path.name
    parameters = inspect.signature(EndorseNode).parameters
    assert list(parameters) == ["region", "key", "trust", "rules", "queue_path", "new_id"]
    assert [name for name, p in parameters.items() if "PrivateKey" in str(p.annotation)] == ["key"]

    seller, buyer = merchants(alliance)
    seq = record_return(alliance, seller, buyer, 500, "R-1")
    region_key = alliance.ring.keys["region:31"]
    node = _node(alliance, "31", tmp_path, key=region_key)
    held = [value for value in vars(node).values() if isinstance(value, PrivateKey)]
    assert held == [region_key]
    # Any other key, the operator's included, is refused before anything is signed.
    client = Hostile(LocalClient(alliance.ledger))
    for other in (alliance.ring.keys["operator"], alliance.ring.keys["region:32"]):
        with pytest.raises(PolicyError, match="not a current key of region:31"):
            _node(alliance, "31", tmp_path, key=other).run(client, alliance.clock())
    assert client.submitted == []
    assert node.run(client, alliance.clock()).approved == 1
    assert [doc["entry"]["body"]["targets"] for doc in client.submitted] == [[seq]]
    assert [s["key"] for s in client.submitted[0]["signatures"]] == [region_key.key_id]


# --- a lying log -------------------------------------------------------------------------


def _foreign_checkpoint(alliance: Alliance) -> str:
    """The honest size and root, signed by a key that is not the log's."""
    latest = alliance.ledger.signed_checkpoint()
    origin = alliance.ledger.log_keys().origin
    signer = NoteSigner(origin, PrivateKey.generate())
    return sign_checkpoint(Checkpoint(origin, latest.size, latest.root), signer)


def _forked_checkpoint(alliance: Alliance) -> str:
    """Signed by the log's own key, over a root the leaves do not have."""
    latest = alliance.ledger.signed_checkpoint()
    origin = alliance.ledger.log_keys().origin
    signer = NoteSigner(origin, alliance.ring.keys["operator"])
    return sign_checkpoint(Checkpoint(origin, latest.size, bytes(32)), signer)


def _edit_body(client: Hostile, _alliance: Alliance, seq: int) -> str:
    client.flip = (seq, b"SKU1", b"SKU2")  # the signature no longer verifies
    return "breaks the rules"


def _edit_logged_time(client: Hostile, _alliance: Alliance, seq: int) -> str:
    client.flip = (seq, b".000000Z", b".000001Z")  # admissible, but not the logged leaf
    return "do not hash to the root"


def _serve_foreign(client: Hostile, alliance: Alliance, _seq: int) -> str:
    client.note = _foreign_checkpoint(alliance)
    return "no signature by a trusted key"


def _serve_fork(client: Hostile, alliance: Alliance, _seq: int) -> str:
    client.note = _forked_checkpoint(alliance)
    return "do not hash to the root"


def _serve_garbage(client: Hostile, _alliance: Alliance, _seq: int) -> str:
    client.note = "not a note\n"
    return "checkpoint"


def _hide_a_leaf(client: Hostile, _alliance: Alliance, _seq: int) -> str:
    client.hide = 1
    return "got"


LIES: dict[str, Callable[[Hostile, Alliance, int], str]] = {
    "edited body": _edit_body,
    "edited logged time": _edit_logged_time,
    "foreign log key": _serve_foreign,
    "forked root": _serve_fork,
    "garbage checkpoint": _serve_garbage,
    "hidden leaf": _hide_a_leaf,
}


@pytest.mark.parametrize("lie", sorted(LIES))
def test_a_log_that_does_not_verify_gets_no_decision(
    alliance: Alliance, tmp_path: Path, lie: str
) -> None:
    seller, buyer = merchants(alliance)
    seq = record_return(alliance, seller, buyer, 500, "R-1")
    before = alliance.ledger.size()
    client = Hostile(LocalClient(alliance.ledger))
    message = LIES[lie](client, alliance, seq)
    node = _node(alliance, "31", tmp_path)
    with pytest.raises(VerificationError, match=message):
        node.run(client, alliance.clock())
    assert client.submitted == [] and alliance.ledger.size() == before
    assert node.follower.broken
    # The node saw a bad log: it refuses to go on, even from an honest server.
    honest = Hostile(LocalClient(alliance.ledger))
    with pytest.raises(VerificationError, match="did not verify"):
        node.run(honest, alliance.clock())
    with pytest.raises(VerificationError, match="did not verify"):
        node.review(honest, alliance.clock(), [seq], [], "")
    assert honest.submitted == [] and alliance.ledger.size() == before
    # A new node on the honest log decides as usual.
    assert _node(alliance, "31", tmp_path).run(honest, alliance.clock()).approved == 1


def test_a_log_that_shrinks_is_refused(alliance: Alliance, tmp_path: Path) -> None:
    seller, buyer = merchants(alliance)
    old_note = alliance.ledger.signed_checkpoint().note
    record_return(alliance, seller, buyer, 500, "R-1")
    client = Hostile(LocalClient(alliance.ledger))
    node = _node(alliance, "31", tmp_path)
    node.follower.sync(client)  # the node has seen the return
    client.note = old_note  # a genuine, older checkpoint: the return hidden
    with pytest.raises(VerificationError, match="shrank"):
        node.run(client, alliance.clock())
    assert client.submitted == []


def test_a_hint_of_what_does_not_await_the_region_is_ignored(
    alliance: Alliance, tmp_path: Path
) -> None:
    seller, buyer = merchants(alliance)
    seq = record_return(alliance, seller, buyer, 500, "R-1")
    client = Hostile(LocalClient(alliance.ledger), hint=[0, 1, 2, seq + 1, 10_000])
    assert client.awaiting("31") == [0, 1, 2, seq, seq + 1, 10_000]
    outcome = _node(alliance, "31", tmp_path).run(client, alliance.clock())
    assert (outcome.approved, outcome.rejected, outcome.queued) == (1, 0, [])
    assert [doc["entry"]["body"]["targets"] for doc in client.submitted] == [[seq]]
    # A region with nothing due ignores the hint entirely.
    assert _node(alliance, "33", tmp_path).run(client, alliance.clock()).approved == 0
    assert len(client.submitted) == 1


def _plant(alliance: Alliance, table: str, values: dict[str, object]) -> None:
    """INSERT a projection row version as an attacker would: no key, so a zero seal."""
    columns = [*FIELD_NAMES[table], "version", "seal"]
    row = {**values, "version": alliance.ledger.size(), "seal": bytes(32)}
    names = ", ".join(columns)
    params = ", ".join(f":{c}" for c in columns)
    with alliance.engine.begin() as connection:
        connection.execute(text(f"INSERT INTO {table} ({names}) VALUES ({params})"), row)


def test_planted_projection_rows_change_nothing_the_node_does(
    alliance: Alliance, tmp_path: Path
) -> None:
    seller, buyer = merchants(alliance)
    seq = record_return(alliance, seller, buyer, 500, "R-1")
    seller_seq = 1  # the seller's enrolment: nothing to endorse
    _plant(alliance, "endorsables", {"target": seller_seq, "kind": "return", "status": "pending"})
    _plant(alliance, "endorsement_dues", {"target": seller_seq, "region": "31"})
    attacker = PrivateKey.generate()
    key = {
        "key_id": attacker.key_id,
        "principal": "region:31",
        "pub": attacker.public.b64,
        "from_seq": 0,
        "until_seq": None,
    }
    _plant(alliance, "principal_keys", key)
    assert alliance.ledger.reads().awaiting("31") == [seller_seq, seq]  # the server believes it
    client = Hostile(LocalClient(alliance.ledger))
    with pytest.raises(PolicyError, match="not a current key"):
        _node(alliance, "31", tmp_path, key=attacker).run(client, alliance.clock())
    assert client.submitted == []
    outcome = _node(alliance, "31", tmp_path).run(client, alliance.clock())
    assert (outcome.approved, outcome.queued) == (1, [])
    assert [doc["entry"]["body"]["targets"] for doc in client.submitted] == [[seq]]
    with pytest.raises(PolicyError, match="does not await"):
        _node(alliance, "31", tmp_path).review(client, alliance.clock(), [seller_seq], [], "")
