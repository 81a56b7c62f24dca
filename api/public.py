"""Public lookups (一站式查询): anyone may ask; no amounts, receipts or notes leave."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Path, Query
from starlette.concurrency import run_in_threadpool

from api.deps import ServicesDep
from api.wire import MemberSummaryWire, PublicMemberWire, ReturnCheckWire, SearchWire
from schemas.limits import (
    ID_LENGTH_MAX,
    SEARCH_PAGE_SIZE_DEFAULT,
    SEARCH_PAGE_SIZE_MAX,
    SEARCH_QUERY_LENGTH_MAX,
)

router = APIRouter(prefix="/v1/public", tags=["public"])

# A USCC is 18 characters of its alphabet (GB 32100-2015): anything else is refused unread.
USCC_PATTERN = r"^[0-9A-HJ-NP-RTUW-Y]{18}$"
Uscc = Annotated[str, Query(pattern=USCC_PATTERN)]


@router.get("/members", response_model=SearchWire)
def search(
    services: ServicesDep,
    q: Annotated[str, Query(min_length=1, max_length=SEARCH_QUERY_LENGTH_MAX)],
    limit: Annotated[int, Query(ge=1, le=SEARCH_PAGE_SIZE_MAX)] = SEARCH_PAGE_SIZE_DEFAULT,
) -> SearchWire:
    """Members by USCC, or whose name or one of whose stores' names contains `q`."""
    found = services.public.search(q, limit)
    return SearchWire(query=q, limit=limit, members=[MemberSummaryWire.of(m) for m in found])


@router.get("/members/{uscc}", response_model=PublicMemberWire)
async def member(
    services: ServicesDep, uscc: Annotated[str, Path(pattern=USCC_PATTERN)]
) -> PublicMemberWire:
    """A member's public page: status and its history, stores, the commitment in force,
    stars and measures in force, 12-month counts, and an inclusion proof of each public
    entry the page rests on."""
    page = await run_in_threadpool(services.public.member, uscc)
    return PublicMemberWire.of(page)


@router.get("/check", response_model=ReturnCheckWire)
def check(
    services: ServicesDep,
    uscc: Uscc,
    store: Annotated[str, Query(min_length=1, max_length=ID_LENGTH_MAX)],
    purchased: Annotated[date, Query(description="Purchase date, YYYY-MM-DD (local)")],
) -> ReturnCheckWire:
    """Can a purchase of `purchased` at `store` be returned, and until when (the
    commitment in force on the purchase date, the civil-code period and the holiday
    calendar)."""
    return ReturnCheckWire.of(services.public.check(uscc, store, purchased))
