"""The regulator desk's and the reconciliation page's reads (issue 10): a region's review
queue and picture (ledger.desk), the closed nights with their instructions' status, and
a member's statement as CSV. Scopes are ledger.access's: a region reads its own desk, a
night's instructions need a signed request or a session, a statement is the member's
and its region's."""

from __future__ import annotations

from dataclasses import asdict
from datetime import date, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Path
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from api.deps import ReaderDep, Services, ServicesDep
from api.public import USCC_PATTERN
from ledger import access
from ledger.calendar import local_date
from ledger.desk import AGE_BUCKETS_DAYS, DeskReads, NightReads, age_buckets
from reconciliation.statement import statement, statement_csv
from schemas.errors import NotFoundError
from schemas.limits import DESK_WINDOW_DAYS

router = APIRouter(prefix="/v1", tags=["desk"])

RegionCode = Annotated[str, Path(pattern=r"^[1-9][0-9]$")]
CSV_MEDIA_TYPE = "text/csv; charset=utf-8"


@router.get("/regions/{code}/queue")
async def queue(services: ServicesDep, reader: ReaderDep, code: RegionCode) -> dict[str, Any]:
    """The entries awaiting region `code`'s decision, oldest first, each with its age
    against the review SLA: to the region itself, auditors and the operator."""
    access.check_region(reader, code)
    desk = DeskReads(services.ledger.engine)
    found = await run_in_threadpool(desk.review_queue, code, services.clock())
    return asdict(found)


@router.get("/regions/{code}/picture")
async def picture(services: ServicesDep, reader: ReaderDep, code: RegionCode) -> dict[str, Any]:
    """The region's picture over the last DESK_WINDOW_DAYS days: returns per day, flows
    between regions, open disputes and overdue instructions by age, notices awaiting
    their deadline, anomaly flags."""
    access.check_region(reader, code)
    return await run_in_threadpool(_picture, services, code)


def _picture(services: Services, code: str) -> dict[str, Any]:
    desk = DeskReads(services.ledger.engine)
    now = services.clock()
    today = local_date(now)
    since = now - timedelta(days=DESK_WINDOW_DAYS)
    disputes = desk.disputes(code, today)
    overdue = desk.overdue(code, today)
    per_day, amounts = desk.returns_and_flows(code, since)
    return {
        "region": code,
        "today": today.isoformat(),
        "window_days": DESK_WINDOW_DAYS,
        "returns_per_day": [asdict(day) for day in per_day],
        "flows": [asdict(flow) for flow in amounts],
        "age_buckets_days": list(AGE_BUCKETS_DAYS),
        "disputes": [asdict(item) for item in disputes],
        "disputes_by_age": age_buckets(item.age_days for item in disputes),
        "overdue": [asdict(item) for item in overdue],
        "overdue_by_age": age_buckets(item.age_days for item in overdue),
        "notices": [asdict(item) for item in desk.notices(code, today)],
        "flags": [asdict(flag) for flag in desk.flags(code, since)],
    }


@router.get("/reconciliations")
async def nights(services: ServicesDep, reader: ReaderDep) -> dict[str, Any]:
    """The closed nights, newest first: gross and net, the netting reduction, counts.
    A signed request or a session: the public sees no reconciliation."""
    access.sees_whole_night(reader)
    reads = NightReads(services.ledger.engine)
    found = await run_in_threadpool(reads.nights)
    return {"nights": [asdict(night) for night in found]}


@router.get("/reconciliations/{day}/instructions")
async def instructions(
    services: ServicesDep,
    reader: ReaderDep,
    day: Annotated[date, Path(description="Business day, YYYY-MM-DD (local)")],
) -> dict[str, Any]:
    """The instructions of the night of `day`, each with its status (due, paid,
    confirmed, overdue): all of them for regions, auditors and the operator, a member's
    own for a member."""
    whole = access.sees_whole_night(reader)
    reads = NightReads(services.ledger.engine)
    today = local_date(services.clock())
    found = await run_in_threadpool(reads.instructions, day.isoformat(), today)
    if not whole:
        found = [item for item in found if reader.principal in (item.payer, item.payee)]
    return {"day": day.isoformat(), "instructions": [asdict(item) for item in found]}


@router.get("/reconciliations/{day}/statements/{uscc}.csv")
async def statement_file(
    services: ServicesDep,
    reader: ReaderDep,
    day: Annotated[date, Path(description="Business day, YYYY-MM-DD (local)")],
    uscc: Annotated[str, Path(pattern=USCC_PATTERN)],
) -> Response:
    """`uscc`'s statement of the night of `day` as CSV (UTF-8 with a BOM), every
    instruction proof checked first: to the member, its region, auditors, the operator."""
    view = await run_in_threadpool(services.ledger.reads().member, uscc)
    access.check_member(reader, uscc, None if view is None else view.member.region)
    if view is None:
        raise NotFoundError(f"{uscc} is not an enrolled member")
    found = await run_in_threadpool(statement, services.ledger, uscc, day)
    name = f"statement-{uscc}-{day.isoformat()}.csv"
    return Response(
        statement_csv(found).encode("utf-8"),
        media_type=CSV_MEDIA_TYPE,
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            "Cache-Control": "no-store",  # a member's accounts: kept by no cache
        },
    )
