"""The regulator desk (``/desk``) and the reconciliation page (``/reconciliation``):
server-rendered from ledger.desk's typed reads for the region of the session
(ledger.sessions). Signing in and deciding happen in the browser (web/src/desk.js):
the region's key never reaches the server, which only verifies what it signed."""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import date, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from api.deps import ReaderDep, Services, ServicesDep
from api.web import i18n
from api.web.desk_words import WORDS
from api.web.render import page_lang, render
from ledger.access import Reader
from ledger.calendar import local_date
from ledger.desk import AGE_BUCKETS_DAYS, DeskReads, NightReads, age_buckets
from schemas.limits import DESK_WINDOW_DAYS

router = APIRouter()
i18n.register(WORDS)

PRIVATE_CACHE_CONTROL = "no-store"


def _private(response: HTMLResponse, region: str | None) -> HTMLResponse:
    """A page showing a region's own data is kept by no cache (not the browser's disk
    after signing out, not a proxy shared by a government intranet)."""
    if region is not None:
        response.headers["Cache-Control"] = PRIVATE_CACHE_CONTROL
    return response


CHART_WORDS = ("accepted", "sold", "owes", "owed", "days", "disputes", "overdue")


def _region(reader: Reader) -> str | None:
    return reader.principal if reader.role == "region" else None


def _panel_context(services: Services, reader: Reader, lang: str) -> dict[str, Any]:
    """What the desk panel shows: the sign-in form, or the region's queue and picture."""
    desk = DeskReads(services.ledger.engine)
    region = _region(reader)
    context: dict[str, Any] = {"region": region, "regions": desk.regions()}
    if region is None:
        return context
    now = services.clock()
    today = local_date(now)
    since = now - timedelta(days=DESK_WINDOW_DAYS)
    disputes = desk.disputes(region, today)
    overdue = desk.overdue(region, today)
    per_day, amounts = desk.returns_and_flows(region, since)
    translate = i18n.translator(lang)
    picture = {
        "returns_per_day": [asdict(day) for day in per_day],
        "flows": [asdict(flow) for flow in amounts],
        "disputes_by_age": age_buckets(item.age_days for item in disputes),
        "overdue_by_age": age_buckets(item.age_days for item in overdue),
        "words": {word: translate(f"desk.chart.{word}") for word in CHART_WORDS},
    }
    context.update(
        queue=desk.review_queue(region, now),
        reasons=desk.rejection_reasons(),
        picture=picture,
        picture_json=json.dumps(picture, ensure_ascii=False).replace("</", "<\\/"),
        disputes=disputes,
        overdue=overdue,
        notices=desk.notices(region, today),
        flags=desk.flags(region, since),
        buckets=AGE_BUCKETS_DAYS,
        window_days=DESK_WINDOW_DAYS,
        today=today,
    )
    return context


@router.get("/desk", response_class=HTMLResponse)
async def desk_page(request: Request, services: ServicesDep, reader: ReaderDep) -> HTMLResponse:
    """The regulator desk: sign in, the review queue, the region's picture."""
    lang = page_lang(request)
    context = await run_in_threadpool(_panel_context, services, reader, lang)
    return _private(render(request, "desk/desk.html", context), context["region"])


@router.get("/desk/panel", response_class=HTMLResponse)
async def desk_panel(request: Request, services: ServicesDep, reader: ReaderDep) -> HTMLResponse:
    """The desk's panel alone (the page swaps it in after signing in or deciding)."""
    lang = page_lang(request)
    context = await run_in_threadpool(_panel_context, services, reader, lang)
    return _private(render(request, "desk/_panel.html", context), context["region"])


@router.get("/reconciliation", response_class=HTMLResponse)
async def reconciliation_page(
    request: Request,
    services: ServicesDep,
    reader: ReaderDep,
    day: Annotated[date | None, Query(description="Business day, YYYY-MM-DD")] = None,
) -> HTMLResponse:
    """Per night: gross versus net, the netting reduction, the instructions with their
    status; a statement as CSV for a member of the signed-in region."""
    context = await run_in_threadpool(_reconciliation_context, services, reader, day)
    page = render(request, "reconciliation/reconciliation.html", context)
    return _private(page, context["region"])


def _reconciliation_context(services: Services, reader: Reader, day: date | None) -> dict[str, Any]:
    region = _region(reader)
    context: dict[str, Any] = {"region": region}
    if region is None:
        return context
    reads = NightReads(services.ledger.engine)
    closed = reads.nights()
    # Nights with nothing to net (the enrolment weeks) are counted, not listed.
    nights = [n for n in closed if n.obligations or n.instructions or n.overdue]
    chosen = next((n for n in nights if day is not None and n.day == day.isoformat()), None)
    if chosen is None and nights:
        chosen = nights[0]
    today = local_date(services.clock())
    instructions = reads.instructions(chosen.day, today) if chosen else []
    parties = [i.payer for i in instructions] + [i.payee for i in instructions]
    statement_members = sorted(DeskReads(services.ledger.engine).members_in(region, parties))
    series = {
        "days": [n.day for n in reversed(nights)],
        "gross": [n.gross_fen for n in reversed(nights)],
        "net": [n.net_fen for n in reversed(nights)],
    }
    context.update(
        empty_nights=len(closed) - len(nights),
        nights=nights,
        night=chosen,
        instructions=instructions,
        statement_members=statement_members,
        series_json=json.dumps(series).replace("</", "<\\/"),
    )
    return context
