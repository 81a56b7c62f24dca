"""The desk's and reconciliation's pages without a browser: what each shows to the public
and to a signed-in region, in both languages."""

from __future__ import annotations

from tests.api.support import client_for
from tests.api.test_desk import _local_return, sign_in
from tests.conftest import Alliance
from tests.reconciliation.nights import closed, make_town


def test_the_desk_page_before_and_after_signing_in(alliance: Alliance) -> None:
    _, seq = _local_return(alliance, "32")
    client = client_for(alliance)
    before = client.get("/desk")
    assert before.status_code == 200 and 'type="file"' in before.text
    assert f'id="target-{seq}"' not in before.text
    assert sign_in(client, "32", alliance.ring.keys["region:32"]).status_code == 200
    after = client.get("/desk")
    assert f'id="target-{seq}"' in after.text and "待审核队列" in after.text
    assert "evidence_insufficient" in after.text  # the policy's rejection codes
    panel = client.get("/desk/panel", params={"lang": "en"})
    assert "Review queue" in panel.text and "<html" not in panel.text
    # a region's own data is stored by no cache (the browser's after signing out, a proxy)
    assert before.headers["cache-control"] == "no-cache"
    for page in (after, panel, client.get("/reconciliation")):
        assert page.headers["cache-control"] == "no-store"


def test_the_reconciliation_page(alliance: Alliance) -> None:
    town = make_town(alliance)
    closed(town, refund_fen=6_000)
    client = client_for(alliance)
    assert "请先在监管工作台登录" in client.get("/reconciliation").text
    assert sign_in(client, "31", alliance.ring.keys["region:31"]).status_code == 200
    page = client.get("/reconciliation", params={"day": town.day.isoformat()})
    assert town.day.isoformat() in page.text and "清算指令" in page.text
    assert f"/statements/{town.seller}.csv" in page.text  # the seller is of region 31
    assert f"/statements/{town.buyer}.csv" not in page.text  # region 32's member
