"""The login-free pages: 一站式查询 (``/``, ``/?q=TEXT``) and the transparency page.

They render the public reads (ledger.public) on the server, so a page is complete
without JavaScript; the browser then checks what it shows (web/src/verify.js) against
the trust root the page is served with (``/trust.json``, its fingerprint in the footer).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from api.deps import ServicesDep
from api.web import i18n, names
from api.web.render import render
from api.web.trust import trust_root
from ledger.calendar import local_date
from ledger.health import last_cosignatures
from ledger.public import PublicMember, ReturnCheck
from ledger.transparency import checkpoint_note, tree_growth
from schemas.errors import AllianceError, MalformedError, NotFoundError
from schemas.limits import (
    ID_LENGTH_MAX,
    PROOF_TREE_SIZE_MAX,
    SEARCH_PAGE_SIZE_DEFAULT,
    SEARCH_QUERY_LENGTH_MAX,
)
from signing.keys import b64encode

router = APIRouter()

i18n.register(
    {
        "home.title": {"zh-CN": "一站式查询", "en": "One-stop lookup"},
        "home.lead": {
            "zh-CN": "按统一社会信用代码、商户名称或门店名称查询联盟成员的承诺与信用。",
            "en": "Look up a member's commitment and credit by USCC, name or store.",
        },
        "search.label": {"zh-CN": "代码、名称或门店", "en": "USCC, name or store"},
        "search.button": {"zh-CN": "查询", "en": "Search"},
        "search.none": {"zh-CN": "没有找到匹配的成员。", "en": "No member matches."},
        "search.many": {"zh-CN": "找到 {n} 个成员：", "en": "{n} members found:"},
        "search.too_long": {
            "zh-CN": "查询内容过长（最多 {n} 个字符）。",
            "en": "The query is too long (at most {n} characters).",
        },
        "card.status": {"zh-CN": "状态", "en": "Status"},
        "card.region": {"zh-CN": "所属地区", "en": "Region"},
        "card.stars": {"zh-CN": "信用星级", "en": "Credit stars"},
        "card.stars_of": {"zh-CN": "{n} 星（满分 5 星）", "en": "{n} of 5 stars"},
        "card.stores": {"zh-CN": "门店", "en": "Stores"},
        "card.store_closed": {"zh-CN": "已关闭", "en": "closed"},
        "card.store_opened": {"zh-CN": "开业", "en": "opened"},
        "card.commitment": {"zh-CN": "退货承诺", "en": "Return commitment"},
        "card.return_days": {
            "zh-CN": "购买后 {n} 天内可在联盟任一门店无理由退货",
            "en": "Returns within {n} days of purchase, at any alliance store",
        },
        "card.since": {"zh-CN": "生效日期", "en": "in force since"},
        "card.upcoming": {"zh-CN": "即将生效", "en": "upcoming"},
        "card.excluded": {"zh-CN": "商户另行排除的类别", "en": "Categories it also excludes"},
        "card.excluded_hint": {
            "zh-CN": "法定及本地不适用的类别见下方退货查询结果。",
            "en": "The categories excluded by law and locally are listed by the check below.",
        },
        "check.excluded": {"zh-CN": "不适用的商品类别", "en": "Excluded categories"},
        "card.excluded_none": {"zh-CN": "无", "en": "none"},
        "card.no_commitment": {"zh-CN": "目前没有生效的承诺。", "en": "No commitment in force."},
        "card.measures": {"zh-CN": "联盟信用措施", "en": "Alliance credit measures"},
        "card.measures_none": {"zh-CN": "无生效中的措施。", "en": "No measure in force."},
        "card.decision": {"zh-CN": "决定文号", "en": "Decision no."},
        "card.issued": {"zh-CN": "作出日期", "en": "Issued"},
        "card.until": {"zh-CN": "有效期至", "en": "Until"},
        "card.counts": {"zh-CN": "近 12 个月", "en": "Last 12 months"},
        "card.counts_since": {"zh-CN": "自 {d} 起", "en": "since {d}"},
        "card.returns_honoured": {"zh-CN": "兑现的退货", "en": "Returns honoured"},
        "card.overdue": {"zh-CN": "逾期结算", "en": "Overdue settlements"},
        "card.advances": {"zh-CN": "追回的先行垫付", "en": "Advances recovered"},
        "card.entries": {"zh-CN": "依据的账本条目", "en": "Ledger entries shown"},
        "badge.label": {"zh-CN": "浏览器验证", "en": "Checked in this browser"},
        "badge.pending": {"zh-CN": "正在验证…", "en": "Verifying…"},
        "badge.ok": {"zh-CN": "已验证", "en": "Verified"},
        "badge.partial": {"zh-CN": "部分已验证", "en": "Partly verified"},
        "badge.unwitnessed": {"zh-CN": "已签名，待见证", "en": "Signed, not yet witnessed"},
        "badge.failed": {"zh-CN": "验证失败", "en": "Verification failed"},
        "badge.nojs": {"zh-CN": "需启用脚本进行验证", "en": "Verification needs JavaScript"},
        "badge.detail": {
            "zh-CN": "{entries} 条条目包含于规模为 {size} 的签名检查点；"
            "{witnessed}/{witnesses} 个地区见证人已联署",
            "en": "{entries} entries are in signed checkpoint {size}; "
            "{witnessed} of {witnesses} region witnesses cosigned",
        },
        "check.title": {
            "zh-CN": "能在这里退货吗？截止到哪天？",
            "en": "Can I return it here, and until when?",
        },
        "check.store": {"zh-CN": "购买门店", "en": "Store of purchase"},
        "check.purchased": {"zh-CN": "购买日期", "en": "Purchase date"},
        "check.button": {"zh-CN": "查询退货期限", "en": "Check"},
        "check.err_date": {"zh-CN": "请输入有效的购买日期。", "en": "Enter a valid purchase date."},
        "check.err_future": {
            "zh-CN": "购买日期不能晚于今天。",
            "en": "The purchase date cannot be in the future.",
        },
        "check.err_store": {
            "zh-CN": "该成员没有这家门店。",
            "en": "The member has no such store.",
        },
        "check.yes": {"zh-CN": "可以退货", "en": "Returnable"},
        "check.no": {"zh-CN": "不能退货", "en": "Not returnable"},
        "check.until": {
            "zh-CN": "最晚可于 {d}（北京时间当日 24:00 前）办理",
            "en": "until the end of {d} (Beijing time)",
        },
        "check.days": {"zh-CN": "承诺 {n} 天无理由退货", "en": "{n}-day return commitment"},
        "check.statutory": {"zh-CN": "法定不适用类别", "en": "Excluded by law"},
        "check.local": {"zh-CN": "本地不适用类别", "en": "Excluded locally"},
        "reason.returnable": {"zh-CN": "在承诺期内", "en": "within the commitment"},
        "reason.window-closed": {"zh-CN": "退货期限已过", "en": "the return window has closed"},
        "reason.not-committed": {
            "zh-CN": "购买当日该成员没有生效的承诺",
            "en": "the member had no commitment in force on the purchase date",
        },
        "reason.store-not-open": {
            "zh-CN": "购买当日该门店未营业",
            "en": "the store was not open on the purchase date",
        },
        "status.active": {"zh-CN": "正常", "en": "Active"},
        "status.suspended": {"zh-CN": "暂停", "en": "Suspended"},
        "status.withdrawn": {"zh-CN": "已退出", "en": "Withdrawn"},
        "status.pending": {"zh-CN": "待审核", "en": "Pending"},
        "measure.none": {"zh-CN": "无", "en": "None"},
        "measure.warning": {"zh-CN": "联盟警示", "en": "Alliance warning"},
        "measure.suspension": {"zh-CN": "暂停承诺资格", "en": "Suspension"},
        "measure.delisting": {"zh-CN": "摘牌", "en": "Delisting"},
        "rule.overdue_settlement": {"zh-CN": "逾期结算", "en": "Overdue settlement"},
        "rule.refused_return": {"zh-CN": "拒绝退货", "en": "Refused return"},
        "rule.false_claim": {"zh-CN": "虚假申报", "en": "False claim"},
        "rule.serious_violation": {"zh-CN": "严重违规", "en": "Serious violation"},
        "kind.merchant": {"zh-CN": "商户", "en": "Merchant"},
        "kind.platform": {"zh-CN": "平台", "en": "Platform"},
        "kind.fund": {"zh-CN": "先行垫付资金", "en": "Advance fund"},
        "error.title": {"zh-CN": "出错了", "en": "Something went wrong"},
        "tr.lead": {
            "zh-CN": "账本是只增不改的默克尔树（RFC 6962）。以下内容均在您的浏览器中"
            "依据信任根重新验证。",
            "en": "The ledger is an append-only Merkle tree (RFC 6962). Everything below is "
            "checked again in your browser against the trust root.",
        },
        "tr.badge": {
            "zh-CN": "规模 {size} 的检查点由日志密钥签名；"
            "{witnessed}/{witnesses} 个地区见证人已联署",
            "en": "Checkpoint {size} is signed by the log key; "
            "{witnessed} of {witnesses} region witnesses cosigned",
        },
        "tr.latest": {"zh-CN": "最新检查点", "en": "Latest checkpoint"},
        "tr.size": {"zh-CN": "条目数（树的规模）", "en": "Entries (tree size)"},
        "tr.root": {"zh-CN": "根哈希", "en": "Root hash"},
        "tr.origin": {"zh-CN": "日志标识", "en": "Origin"},
        "tr.note": {"zh-CN": "签名检查点原文", "en": "Signed checkpoint text"},
        "tr.witnesses": {"zh-CN": "地区见证人", "en": "Region witnesses"},
        "tr.region": {"zh-CN": "地区", "en": "Region"},
        "tr.cosigned_size": {"zh-CN": "最近联署的检查点", "en": "Last cosigned checkpoint"},
        "tr.cosigned_at": {"zh-CN": "联署时间", "en": "Cosigned at"},
        "tr.age": {"zh-CN": "距今", "en": "Age"},
        "tr.check": {"zh-CN": "浏览器验证", "en": "Browser check"},
        "tr.never": {"zh-CN": "尚未联署", "en": "never cosigned"},
        "tr.growth": {"zh-CN": "账本增长", "en": "Tree growth"},
        "tr.growth_chart": {
            "zh-CN": "每日最后一个检查点的树规模折线图",
            "en": "Line chart of the tree size at each day's last checkpoint",
        },
        "tr.day": {"zh-CN": "日期", "en": "Day"},
        "tr.growth_table": {"zh-CN": "数据表", "en": "Data table"},
        "tr.consistency": {"zh-CN": "一致性验证", "en": "Consistency check"},
        "tr.consistency_lead": {
            "zh-CN": "选择两个检查点，浏览器将验证较早的树是较新树的前缀（没有条目被修改或删除）。",
            "en": "Pick two checkpoints: your browser checks that the older tree is a prefix "
            "of the newer one (no entry was changed or removed).",
        },
        "tr.sizes_hint": {
            "zh-CN": "可输入任一已签名检查点的规模；列表中是每天的最后一个检查点。",
            "en": "Any signed checkpoint's size will do; the list offers each day's last.",
        },
        "tr.old": {"zh-CN": "较早的检查点（规模）", "en": "Older checkpoint (size)"},
        "tr.new": {"zh-CN": "较新的检查点（规模）", "en": "Newer checkpoint (size)"},
        "tr.run": {"zh-CN": "验证一致性", "en": "Check consistency"},
        "tr.consistent": {
            "zh-CN": "一致：规模 {old} 的树是规模 {new} 的树的前缀，两个检查点的签名均有效。",
            "en": "Consistent: the tree of {old} is a prefix of the tree of {new}, and both "
            "checkpoints' signatures verify.",
        },
        "tr.inconsistent": {"zh-CN": "验证失败", "en": "Check failed"},
        "age.s": {"zh-CN": "{n} 秒前", "en": "{n} s ago"},
        "age.m": {"zh-CN": "{n} 分钟前", "en": "{n} min ago"},
        "age.h": {"zh-CN": "{n} 小时前", "en": "{n} h ago"},
        "age.d": {"zh-CN": "{n} 天前", "en": "{n} days ago"},
    }
)


def script_json(value: object) -> str:
    """JSON to embed in a ``<script type="application/json">``: ``<`` escaped, so no
    text can close the element."""
    return json.dumps(value, ensure_ascii=False).replace("<", "\\u003c")


def _search_results(services: ServicesDep, q: str) -> list[Any]:
    return services.public.search(q, SEARCH_PAGE_SIZE_DEFAULT)


def _check(
    services: ServicesDep, uscc: str, store: str | None, purchased: str | None
) -> tuple[ReturnCheck | None, str | None]:
    """The return check the form asked for, or (an i18n key) why it cannot be answered."""
    if not store or not purchased:
        return None, None
    try:
        day = date.fromisoformat(purchased)
    except ValueError:
        return None, "check.err_date"
    try:
        return services.public.check(uscc, store[:ID_LENGTH_MAX], day), None
    except MalformedError:
        return None, "check.err_future"
    except NotFoundError:
        return None, "check.err_store"


@router.get("/", response_class=HTMLResponse)
async def home(
    request: Request,
    services: ServicesDep,
    q: Annotated[str | None, Query()] = None,
    store: Annotated[str | None, Query()] = None,
    purchased: Annotated[str | None, Query()] = None,
) -> HTMLResponse:
    """一站式查询: the search form, and with ``q`` its results; one result opens its card."""
    context = await run_in_threadpool(_home_context, services, q, store, purchased)
    context["trust"] = await run_in_threadpool(trust_root, services.ledger)
    return render(request, "home.html", context)


def _home_context(
    services: ServicesDep, q: str | None, store: str | None, purchased: str | None
) -> dict[str, Any]:
    query = (q or "").strip()
    context: dict[str, Any] = {
        "q": query,
        "results": None,
        "card": None,
        "check": None,
        "check_error": None,
        "store": store or "",
        "purchased": purchased or "",
        "today": local_date(services.clock()).isoformat(),
        "too_long": len(query) > SEARCH_QUERY_LENGTH_MAX,
        "query_max": SEARCH_QUERY_LENGTH_MAX,
        "names": names,
    }
    if not query or context["too_long"]:
        return context
    try:
        results = _search_results(services, query)
    except AllianceError:
        results = []
    context["results"] = results
    if len(results) == 1:
        card: PublicMember = services.public.member(results[0].uscc)
        context["card"] = card
        context["check"], context["check_error"] = _check(
            services, card.member.uscc, store, purchased
        )
    return context


@router.get("/trust.json")
async def trust_json(services: ServicesDep) -> Response:
    """The trust root the pages check against (the export's trust.json, canonical JSON)."""
    trust = await run_in_threadpool(trust_root, services.ledger)
    return Response(
        trust.text,
        media_type="application/json",
        headers={"Cache-Control": "no-cache", "X-Trust-Fingerprint": trust.fingerprint},
    )


@router.get("/transparency", response_class=HTMLResponse)
async def transparency(request: Request, services: ServicesDep) -> HTMLResponse:
    """The latest checkpoint, each witness's last cosignature, tree growth, and a
    consistency check between two checkpoints run in the browser."""
    context = await run_in_threadpool(_transparency_context, services)
    return render(request, "transparency.html", context)


@dataclass(frozen=True, slots=True)
class WitnessRow:
    region: str
    size: int | None  # the newest checkpoint it cosigned
    timestamp_s: int | None  # its cosignature time
    age_s: int | None
    note: str | None  # that checkpoint's note, for the browser to verify


def _transparency_context(services: ServicesDep) -> dict[str, Any]:
    ledger = services.ledger
    latest = ledger.signed_checkpoint()
    now_s = int(services.clock().timestamp())
    times = last_cosignatures(ledger)
    witnesses = []
    for region, timestamp_s in times.items():
        cosigned = ledger.last_cosigned(region)
        witnesses.append(
            WitnessRow(
                region=region,
                size=None if cosigned is None else cosigned.size,
                timestamp_s=timestamp_s,
                age_s=None if timestamp_s is None else max(0, now_s - timestamp_s),
                note=None if cosigned is None else cosigned.note,
            )
        )
    growth = tree_growth(ledger)
    return {
        "latest": latest,
        "latest_root": b64encode(latest.root),
        "witnesses": witnesses,
        "growth": growth,
        "growth_json": script_json([[p.day, p.size] for p in growth]),
        "notes_json": script_json({w.region: w.note for w in witnesses}),
        "names": names,
        "trust": trust_root(ledger),
    }


@router.get("/transparency/checkpoints/{size}")
async def stored_checkpoint(
    services: ServicesDep, size: Annotated[int, Path(ge=1, le=PROOF_TREE_SIZE_MAX)]
) -> Response:
    """The operator's signed note of the checkpoint of ``size``, as it was stored (the
    page verifies it before it uses its root)."""
    note = await run_in_threadpool(checkpoint_note, services.ledger, size)
    return Response(note, media_type="text/plain; charset=utf-8")
