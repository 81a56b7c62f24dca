"""The browser's verifier (web/src/verify.js, run in Chromium) against the Python one, on
vectors Python produces: inclusion and consistency proofs of the demo's log (good ones
accepted by both, each tampered one refused by both), and signed, cosigned checkpoints
(the log's Ed25519 note signature and the witnesses' cosignature/v1 lines)."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page

from ledger.app import Ledger
from ledger.merkle.tree import node_hash
from ledger.merkle.verify import verify_consistency, verify_inclusion
from schemas.errors import VerificationError
from signing.checkpoint import (
    Checkpoint,
    CosignatureVerifier,
    add_cosignatures,
    cosign,
    sign_checkpoint,
)
from signing.keys import PrivateKey
from signing.note import NoteSigner
from tests.web.conftest import Site
from tests.web.test_public import _uscc

RUN = """async ({cases, kind}) => {
  const v = await import('/static/dist/verify.js');
  const b = v.b64decode;
  const out = [];
  for (const c of cases) {
    try {
      if (kind === 'inclusion') {
        await v.verifyInclusion(b(c.leaf), c.index, c.size, c.proof.map(b), b(c.root));
      } else if (kind === 'consistency') {
        await v.verifyConsistency(c.old, c.size, b(c.old_root), b(c.new_root), c.proof.map(b));
      } else {
        const r = await v.verifyCheckpoint(c.note, c.trust);
        out.push({ok: true, size: r.size, cosigned: r.cosigned});
        continue;
      }
      out.push({ok: true});
    } catch (e) {
      out.push({ok: false, error: e.name + ': ' + e.message});
    }
  }
  return out;
}"""


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def flip(data: bytes, at: int = 0) -> bytes:
    changed = bytearray(data)
    changed[at] ^= 0x01
    return bytes(changed)


@pytest.fixture
def ledger(site: Site) -> Iterator[Ledger]:
    opened = Ledger.open(site.db_url)
    yield opened
    opened.engine.dispose()


def run_js(page: Page, site: Site, kind: str, cases: list[dict[str, Any]]) -> list[Any]:
    if not page.url.startswith(site.url):
        page.goto(f"{site.url}/transparency")
    result: list[Any] = page.evaluate(RUN, {"cases": cases, "kind": kind})
    return result


def python_accepts(check: Any, *args: Any) -> bool:
    try:
        check(*args)
    except VerificationError:
        return False
    return True


def test_inclusion_proofs_agree_with_python(site: Site, page: Page, ledger: Ledger) -> None:
    size = ledger.signed_checkpoint().size
    cases: list[dict[str, Any]] = []
    for tree_size in sorted({1, 2, 3, 7, 8, 9, 255, 256, 257, size}):
        for seq in sorted({0, tree_size // 2, tree_size - 1}):
            if tree_size > size:
                continue
            proof = ledger.inclusion(seq, tree_size)
            good = {
                "leaf": b64(proof.leaf_hash),
                "index": seq,
                "size": tree_size,
                "proof": [b64(h) for h in proof.hashes],
                "root": b64(proof.root),
            }
            cases.append(good)
            cases.append(good | {"root": b64(flip(proof.root))})
            cases.append(good | {"index": seq + 1})
            if proof.hashes:
                cases.append(good | {"proof": [b64(flip(proof.hashes[0])), *good["proof"][1:]]})
                cases.append(good | {"proof": good["proof"][:-1]})
            cases.append(good | {"proof": [*good["proof"], b64(proof.root)]})
    verdicts = run_js(page, site, "inclusion", cases)
    expected = [
        python_accepts(
            verify_inclusion,
            base64.b64decode(c["leaf"]),
            c["index"],
            c["size"],
            [base64.b64decode(h) for h in c["proof"]],
            base64.b64decode(c["root"]),
        )
        for c in cases
    ]
    assert [v["ok"] for v in verdicts] == expected
    assert expected.count(True) >= 10 and expected.count(False) >= 30


def test_consistency_proofs_agree_with_python(site: Site, page: Page, ledger: Ledger) -> None:
    size = ledger.signed_checkpoint().size
    pairs = [(1, 2), (1, size), (2, 3), (3, 7), (4, 8), (7, 256), (256, size), (100, size)]
    pairs += [(size, size), (5, 5)]
    cases: list[dict[str, Any]] = []
    for old, new in pairs:
        proof = ledger.consistency(old, new)
        good = {
            "old": old,
            "size": new,
            "old_root": b64(proof.old_root),
            "new_root": b64(proof.new_root),
            "proof": [b64(h) for h in proof.hashes],
        }
        cases.append(good)
        cases.append(good | {"new_root": b64(flip(proof.new_root))})
        cases.append(good | {"old_root": b64(flip(proof.old_root, 31))})
        if proof.hashes:
            cases.append(good | {"proof": [*good["proof"][:-1], b64(flip(proof.hashes[-1]))]})
            cases.append(good | {"proof": good["proof"][1:]})
    verdicts = run_js(page, site, "consistency", cases)
    expected = [
        python_accepts(
            verify_consistency,
            c["old"],
            c["size"],
            base64.b64decode(c["old_root"]),
            base64.b64decode(c["new_root"]),
            [base64.b64decode(h) for h in c["proof"]],
        )
        for c in cases
    ]
    assert [v["ok"] for v in verdicts] == expected
    assert expected.count(True) == len(pairs)


def test_checkpoints_and_cosignatures(site: Site, page: Page, ledger: Ledger) -> None:
    """The demo's own checkpoint against its trust.json; then notes Python signs with
    fresh keys: good, a forged log signature, a forged cosignature, a stranger's
    cosignature (ignored), another origin, and no log signature at all."""
    trust = site.trust()
    served = ledger.signed_checkpoint().note
    origin = trust["origin"]
    log = NoteSigner(origin, PrivateKey.generate())
    witnesses = {code: NoteSigner(f"{origin}/w/{code}", PrivateKey.generate()) for code in "12"}
    stranger = NoteSigner(f"{origin}/w/x", PrivateKey.generate())
    mine = {
        "origin": origin,
        "log_key": log.vkey,
        "witness_keys": {
            code: CosignatureVerifier.from_public(w.name, w.key.public).vkey
            for code, w in witnesses.items()
        },
    }
    checkpoint = Checkpoint(origin, 42, bytes(range(32)))
    note = sign_checkpoint(checkpoint, log)
    lines = [cosign(checkpoint, w, 1_700_000_000 + i) for i, w in enumerate(witnesses.values())]
    cosigned = add_cosignatures(note, lines)
    with_stranger = add_cosignatures(cosigned, [cosign(checkpoint, stranger, 5)])
    other = NoteSigner(origin + "x", log.key)
    other_origin = sign_checkpoint(Checkpoint(other.name, 42, bytes(32)), other)
    lied_size = cosigned.replace("\n42\n", "\n43\n", 1)
    forged_cosig = cosigned[:-6] + ("A" if cosigned[-6] != "A" else "B") + cosigned[-5:]
    unsigned_by_log = add_cosignatures(
        sign_checkpoint(checkpoint, NoteSigner(origin, PrivateKey.generate())), lines
    )
    cases = [
        {"note": served, "trust": trust},
        {"note": cosigned, "trust": mine},
        {"note": with_stranger, "trust": mine},
        {"note": other_origin, "trust": mine},
        {"note": lied_size, "trust": mine},
        {"note": forged_cosig, "trust": mine},
        {"note": unsigned_by_log, "trust": mine},
        {"note": served, "trust": mine},
    ]
    verdicts = run_js(page, site, "checkpoint", cases)
    assert [v["ok"] for v in verdicts] == [True, True, True, False, False, False, False, False]
    assert set(verdicts[0]["cosigned"]) == set(trust["witness_keys"])
    assert verdicts[1] == {
        "ok": True,
        "size": 42,
        "cosigned": {"1": 1_700_000_000, "2": 1_700_000_001},
    }
    assert verdicts[2]["cosigned"] == verdicts[1]["cosigned"]  # the stranger is ignored
    assert "cosignature of region 2" in verdicts[5]["error"]


MEMBER_PAGE = """async ({page, note, trust}) => {
  const v = await import('/static/dist/verify.js');
  const consistency = async (old, size) =>
    (await fetch(`/v1/proofs/consistency?old=${old}&new=${size}`)).json();
  try {
    const r = await v.verifyMemberPage(page, note, trust, consistency);
    return {ok: true, seqs: r.seqs};
  } catch (e) {
    return {ok: false, error: e.name + ': ' + e.message};
  }
}"""


def _root_from_path(leaf: bytes, index: int, size: int, path: list[bytes]) -> bytes:
    """The root an inclusion path leads to (RFC 9162 §2.1.3.2's loop, without checks):
    what a forger computes to make a self-consistent proof for a leaf of its choosing."""
    fn, sn, r = index, size - 1, leaf
    for element in path:
        if fn % 2 == 1 or fn == sn:
            r = node_hash(element, r)
            while fn != 0 and fn % 2 == 0:
                fn, sn = fn // 2, sn // 2
        else:
            r = node_hash(r, element)
        fn, sn = fn // 2, sn // 2
    return r


def test_a_forged_proof_cannot_hide_behind_a_true_one_of_the_same_tree(
    site: Site, page: Page, ledger: Ledger
) -> None:
    """A hostile server offers, for one tree size, a forged proof (a leaf the log never
    held, leading to a root it computed) and a true proof: both name the same tree, so
    both roots must be that tree's one root; the badge must not keep the last only."""
    uscc = _uscc(site, page)
    served = httpx.get(f"{site.url}/v1/public/members/{uscc}").json()
    note = httpx.get(f"{site.url}/checkpoint").text
    trust = site.trust()
    assert served["proofs"], "the demo member's page proves its entries"
    honest = page.evaluate(MEMBER_PAGE, {"page": served, "note": note, "trust": trust})
    assert honest["ok"], honest
    true = served["proofs"][0]
    proof = true["proof"]
    forged_leaf = flip(base64.b64decode(proof["leaf_hash"]))
    path = [base64.b64decode(h) for h in proof["hashes"]]
    forged_root = _root_from_path(forged_leaf, proof["seq"], proof["tree_size"], path)
    forged = {
        "seq": true["seq"],
        "proof": proof | {"leaf_hash": b64(forged_leaf), "root": b64(forged_root)},
    }
    hostile = served | {"proofs": [forged, *served["proofs"]]}
    verdict = page.evaluate(MEMBER_PAGE, {"page": hostile, "note": note, "trust": trust})
    assert not verdict["ok"], verdict
    assert "root" in verdict["error"]
