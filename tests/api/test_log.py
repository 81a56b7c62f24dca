"""The log over HTTP: checkpoint, hash tiles and entry bundles per C2SP tlog-tiles,
proofs that verify, public entries with their proofs, others refused (403)."""

from __future__ import annotations

import base64
import json

from fastapi.testclient import TestClient

from ledger import merkle
from ledger.merkle.tiles import parse_entry_bundle
from schemas.limits import TILE_WIDTH
from tests.api.support import assert_problem, busy, signed_get
from tests.conftest import Alliance
from tests.ledger.test_proofs import _alter_leaf


def _b64(text: str) -> bytes:
    return base64.b64decode(text)


def test_checkpoint_is_the_verified_note(alliance: Alliance, client: TestClient) -> None:
    response = client.get("/checkpoint")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert response.text == alliance.ledger.signed_checkpoint().note
    assert response.text.count("\n— ") == 5  # the operator and four witnesses


def test_full_tiles_are_immutable_partial_ones_revalidate(
    alliance: Alliance, client: TestClient
) -> None:
    documents = [alliance.enroll_doc("31", network=[]) for _ in range(TILE_WIDTH)]
    results = alliance.ledger.submit_many(documents)
    assert all(not isinstance(result, Exception) for result in results)
    size = alliance.ledger.size()
    assert size == TILE_WIDTH + 1
    full = client.get("/tile/0/000")
    assert full.status_code == 200
    assert full.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert len(full.content) == TILE_WIDTH * 32
    leaves = alliance.ledger.leaves(0, size)
    assert full.content[:32] == merkle.leaf_hash(leaves[0])
    partial = client.get("/tile/0/001.p/1")
    assert partial.status_code == 200 and partial.headers["cache-control"] == "no-cache"
    assert partial.content == merkle.leaf_hash(leaves[TILE_WIDTH])
    assert client.get("/tile/1/000.p/1").content == alliance.ledger.root_at(TILE_WIDTH)
    bundle = signed_get(client, alliance, "operator", "/tile/entries/000")
    assert bundle.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert parse_entry_bundle(bundle.content) == leaves[:TILE_WIDTH]
    partial_bundle = signed_get(client, alliance, "operator", "/tile/entries/001.p/1")
    assert parse_entry_bundle(partial_bundle.content) == leaves[TILE_WIDTH:]
    assert_problem(client.get("/tile/0/001.p/2"), 404, "not-found")
    missing = signed_get(client, alliance, "operator", "/tile/entries/001.p/2")
    assert_problem(missing, 404, "not-found")
    assert_problem(client.get("/tile/entries/000"), 403, "forbidden")  # bundles: not public


def test_bad_tile_paths_are_malformed(client: TestClient) -> None:
    for path in ("0/1", "0/000.p/256", "64/000", "x/000", "0/x000/001", "entries/000.p/0"):
        assert_problem(client.get(f"/tile/{path}"), 400, "malformed")
    assert_problem(client.get("/tile/5/x999/999"), 404, "not-found")


def test_proofs_verify(alliance: Alliance, client: TestClient) -> None:
    for _ in range(5):
        alliance.ledger.submit(alliance.enroll_doc("31"))
    root = alliance.ledger.signed_checkpoint().root
    proof = client.get("/v1/proofs/inclusion", params={"seq": 3}).json()
    assert proof["tree_size"] == 6
    merkle.verify_inclusion(
        _b64(proof["leaf_hash"]), 3, 6, [_b64(h) for h in proof["hashes"]], root
    )
    older = client.get("/v1/proofs/inclusion", params={"seq": 1, "tree_size": 4}).json()
    assert older["root"] == base64.b64encode(alliance.ledger.root_at(4)).decode()
    step = client.get("/v1/proofs/consistency", params={"old": 2, "new": 6}).json()
    hashes = [_b64(h) for h in step["hashes"]]
    merkle.verify_consistency(2, 6, _b64(step["old_root"]), _b64(step["new_root"]), hashes)


def test_proof_errors(client: TestClient) -> None:
    assert_problem(client.get("/v1/proofs/inclusion", params={"seq": 9}), 404, "not-found")
    assert_problem(
        client.get("/v1/proofs/inclusion", params={"seq": 0, "tree_size": 5}), 404, "not-found"
    )
    assert_problem(client.get("/v1/proofs/inclusion", params={"seq": -1}), 400, "malformed")
    assert_problem(client.get("/v1/proofs/inclusion"), 400, "malformed")
    assert_problem(client.get("/v1/proofs/inclusion?seq=1e3"), 400, "malformed")
    assert_problem(
        client.get("/v1/proofs/consistency", params={"old": 0, "new": 1}), 400, "malformed"
    )
    assert_problem(
        client.get("/v1/proofs/consistency", params={"old": 2, "new": 1}), 404, "not-found"
    )
    assert_problem(
        client.get("/v1/proofs/consistency", params={"old": 1, "new": 2**41}), 400, "malformed"
    )


def test_public_entries_are_served_with_their_proof(alliance: Alliance, client: TestClient) -> None:
    scenario = busy(alliance)
    root = alliance.ledger.signed_checkpoint().root
    for seq, kind in ((0, "region.genesis"), (scenario.penalty, "credit.penalty")):
        body = client.get(f"/v1/entries/{seq}").json()
        assert (body["seq"], body["kind"], body["record"]["seq"]) == (seq, kind, seq)
        leaf = _b64(body["leaf"])
        proof = body["proof"]
        assert _b64(proof["leaf_hash"]) == merkle.leaf_hash(leaf)
        hashes = [_b64(h) for h in proof["hashes"]]
        merkle.verify_inclusion(merkle.leaf_hash(leaf), seq, proof["tree_size"], hashes, root)


def test_an_altered_leaf_is_not_served_as_proven(alliance: Alliance, client: TestClient) -> None:
    """The proof's leaf hash comes from the tiles: a leaf row altered since (a hostile
    file, the schema's owner) is answered as tampered, never served beside it."""
    busy(alliance)  # more than one leaf: the proof reads the tile, not the leaf row
    genesis = client.get("/v1/entries/0").json()
    record = json.loads(_b64(genesis["leaf"]))
    record["entry"]["body"]["origin"] = "forged"
    _alter_leaf(alliance, 0, json.dumps(record, separators=(",", ":")).encode())
    assert_problem(client.get("/v1/entries/0"), 503, "tampered")


def test_other_kinds_are_refused_to_the_public(alliance: Alliance, client: TestClient) -> None:
    scenario = busy(alliance)
    refused = assert_problem(client.get(f"/v1/entries/{scenario.returns[0]}"), 403, "forbidden")
    assert refused["seq"] == scenario.returns[0]
    assert "4321" not in str(refused)  # nothing of the refused entry leaks
    metrics = client.get("/metrics").text
    assert "alliance_refused_reads_total 1.0" in metrics
    assert_problem(client.get("/v1/entries/999"), 404, "not-found")
    assert_problem(client.get("/v1/entries/-1"), 400, "malformed")
    assert_problem(client.get("/v1/entries/abc"), 400, "malformed")
