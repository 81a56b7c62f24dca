"""Reads that need a role (issue 9): a member's obligations and a night's report. The
scope is ledger.access's to judge; these routes only ask it and render."""

from __future__ import annotations

from dataclasses import asdict
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Path
from starlette.concurrency import run_in_threadpool

from api.deps import ReaderDep, ServicesDep
from api.public import USCC_PATTERN
from ledger import access
from reconciliation.statement import night_document
from schemas.errors import NotFoundError

router = APIRouter(prefix="/v1", tags=["scoped"])


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
    return {"member": uscc, "obligations": [asdict(row) for row in rows]}


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
