"""The web routes without a browser: every page answers in both languages with the trust
root it is served with, errors are said on the page, and a missing checkpoint is a
problem document."""

from __future__ import annotations

import hashlib
import json

from api.web.render import STATIC
from tests.api.support import assert_problem, busy, client_for
from tests.conftest import Alliance


def test_pages_and_the_trust_root(alliance: Alliance) -> None:
    seller = busy(alliance).seller
    client = client_for(alliance)
    home = client.get("/")
    assert home.status_code == 200 and home.headers["content-language"] == "zh-CN"
    card = client.get("/", params={"q": seller})
    assert seller in card.text and "联盟警示" in card.text  # the busy log's warning
    english = client.get("/", params={"q": seller, "lang": "en"})
    assert "Alliance warning" in english.text and english.cookies.get("lang") == "en"
    assert client.get("/").headers["content-language"] == "en"  # remembered
    trust = client.get("/trust.json")
    digest = hashlib.sha256(trust.content).hexdigest()
    assert trust.headers["x-trust-fingerprint"] == digest
    assert json.loads(trust.text)["origin"] == alliance.config.origin
    assert trust.text in card.text  # embedded verbatim: the browser hashes these bytes
    assert client.get("/transparency").status_code == 200


def test_mistakes_are_said_on_the_page(alliance: Alliance) -> None:
    seller = busy(alliance).seller
    client = client_for(alliance)
    assert "过长" in client.get("/", params={"q": "x" * 65}).text
    assert "没有找到" in client.get("/", params={"q": "no such member"}).text
    future = client.get("/", params={"q": seller, "store": "S1", "purchased": "2999-01-01"})
    assert future.status_code == 200 and "购买日期不能晚于今天" in future.text
    unknown = client.get("/", params={"q": seller, "store": "S9", "purchased": "2026-01-01"})
    assert unknown.status_code == 200 and "该成员没有这家门店" in unknown.text
    bad = client.get("/", params={"q": seller, "store": "S1", "purchased": "2026-02-30"})
    assert bad.status_code == 200 and "有效的购买日期" in bad.text
    nul = client.get("/", params={"q": "member\x00"})  # a 500 on PostgreSQL before
    assert nul.status_code == 200 and "没有找到" in nul.text


def test_checkpoint_notes_and_compression(alliance: Alliance) -> None:
    client = client_for(alliance)
    size = alliance.ledger.signed_checkpoint().size
    note = client.get(f"/transparency/checkpoints/{size}")
    assert note.status_code == 200 and f"\n{size}\n" in note.text
    assert_problem(client.get(f"/transparency/checkpoints/{size + 50}"), 404, "not-found")
    assert_problem(client.get("/transparency/checkpoints/0"), 400, "malformed")
    css = client.get("/static/app.css", headers={"Accept-Encoding": "gzip"})
    assert css.headers["content-encoding"] == "gzip"
    assert css.content == (STATIC / "app.css").read_bytes()


def test_every_answer_carries_the_security_headers(alliance: Alliance) -> None:
    """No page may be framed by another site (the desk's approve button under a decoy),
    and only the bundled scripts run: an injected inline script or a script from
    elsewhere would be refused by the browser even if escaping ever failed."""
    client = client_for(alliance)
    answers = [client.get(path) for path in ("/", "/desk", "/reconciliation", "/transparency")]
    answers += [client.get("/static/app.css"), client.get("/v1/session")]
    answers.append(client.get("/no/such/page"))  # a problem document too
    for answer in answers:
        policy = answer.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in policy and "script-src 'self';" in policy
        assert "unsafe-eval" not in policy and "default-src 'none'" in policy
        assert answer.headers["x-frame-options"] == "DENY"
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.headers["referrer-policy"] == "no-referrer"
    assert "<script>" not in answers[0].text  # no inline script for the policy to refuse
