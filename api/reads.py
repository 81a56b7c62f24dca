"""Reads that need a role (issue 9): a member's obligations and statement, a night's
report, and each region's work lists (pending endorsements, disputes awaiting a
decision, overdue instructions). The scope is ledger.access's to judge; these routes
only ask it and render."""

from __future__ import annotations

from dataclasses import asdict
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from starlette.concurrency import run_in_threadpool

from api.deps import ReaderDep, ServicesDep
from api.public import USCC_PATTERN
from ledger import access
from ledger.calendar import local_date
from reconciliation.statement import night_document, statement
from schemas.errors import NotFoundError

router = APIRouter(prefix="/v1", tags=["scoped"])
REGION_PATTERN = r"^[1-9][0-9]$"  # schemas.bodies.RegionCode


@router.get("/members/{uscc}/obligations")
async def obligations(
    services: ServicesDep,
    reader: ReaderDep,
    uscc: Annotated[str, Path(pattern=USCC_PATTERN)],
) -> dict[str, Any]:
    """The obligations `uscc` owes or is owed, by seq: to the member itself, its region,
    auditors and the operator (a signed request)."""
    return await run_in_threadpool(_obligations, services, reader, uscc)


def _obligations(services: ServicesDep, reader: access.Reader, uscc: str) -> dict[str, Any]:
    reads = services.ledger.reads()
    view = reads.member(uscc)
    # The scope first: a reader outside it learns nothing, not even whether uscc exists.
    access.check_member(reader, uscc, None if view is None else view.member.region)
    if view is None:
        raise NotFoundError(f"{uscc} is not an enrolled member")
    rows = reads.obligations(uscc)
    return {"member": uscc, "obligations": [row._asdict() for row in rows]}


@router.get("/reconciliations/{day}")
async def reconciliation(
    services: ServicesDep,
    reader: ReaderDep,
    day: Annotated[date, Path(description="Business day, YYYY-MM-DD (local)")],
) -> dict[str, Any]:
    """The night of `day`: its entry and, for regions, auditors and the operator, the
    whole report; for a member, its own statement with the inclusion proof of each of
    its instructions."""
    whole = access.sees_whole_night(reader)
    member = None if whole else reader.principal
    return await run_in_threadpool(night_document, services.ledger, day, member)


@router.get("/members/{uscc}/statement")
async def member_statement(
    services: ServicesDep,
    reader: ReaderDep,
    uscc: Annotated[str, Path(pattern=USCC_PATTERN)],
    day: Annotated[date, Query(description="Business day, YYYY-MM-DD (local)")],
) -> dict[str, Any]:
    """`uscc`'s statement of the night of `day` (as `alliance statement` prints it):
    its obligations, gross and net, and each instruction with its verified inclusion
    proof. To the member itself, its region, auditors and the operator."""
    return await run_in_threadpool(_statement, services, reader, uscc, day)


def _statement(
    services: ServicesDep, reader: access.Reader, uscc: str, day: date
) -> dict[str, Any]:
    view = services.ledger.reads().member(uscc)
    access.check_member(reader, uscc, None if view is None else view.member.region)
    if view is None:
        raise NotFoundError(f"{uscc} is not an enrolled member")
    return statement(services.ledger, uscc, day).wire()


Region = Annotated[str, Query(pattern=REGION_PATTERN, description="Region code, e.g. 31")]


@router.get("/disputes/awaiting")
async def disputes_awaiting(
    services: ServicesDep, reader: ReaderDep, region: Region
) -> dict[str, Any]:
    """Open disputes whose decision `region` takes part in: to the region, auditors
    and the operator."""
    access.check_region(reader, region)
    rows = await run_in_threadpool(services.ledger.reads().disputes_awaiting, region)
    return {"region": region, "disputes": [asdict(row) for row in rows]}


@router.get("/instructions/overdue")
async def overdue_instructions(
    services: ServicesDep,
    reader: ReaderDep,
    region: Region,
    day: Annotated[
        date | None, Query(description="Overdue as of this business day [today, local]")
    ] = None,
) -> dict[str, Any]:
    """Settlement instructions due before `day` and not confirmed in full, whose payer
    or payee is a member of `region`: to the region, auditors and the operator."""
    access.check_region(reader, region)
    as_of = day or local_date(services.clock())
    reads = services.ledger.reads()
    rows = await run_in_threadpool(reads.overdue_instructions, region, as_of.isoformat())
    return {"region": region, "day": as_of.isoformat(), "instructions": [r._asdict() for r in rows]}
