"""What the transparency page shows of the log itself: how the tree grew (the last
checkpoint of each local day) and any stored checkpoint's signed note.

Nothing here is trusted by the page: the browser verifies every note it is given
against the trust root, and the consistency between any two of them by a proof.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from ledger import store
from ledger.app import Ledger
from ledger.calendar import local_date
from ledger.tables import Checkpoint
from schemas.errors import NotFoundError
from schemas.limits import GROWTH_CHECKPOINTS_MAX


@dataclass(frozen=True, slots=True)
class GrowthPoint:
    day: str  # local date (Asia/Shanghai), YYYY-MM-DD
    size: int  # the largest checkpoint the operator signed that day
    signed: str  # when it was signed (RFC 3339, UTC)


def tree_growth(ledger: Ledger, limit: int = GROWTH_CHECKPOINTS_MAX) -> tuple[GrowthPoint, ...]:
    """Per local day, oldest first, the last checkpoint signed that day; from the newest
    ``limit`` checkpoints (older days are left out of a very long history)."""
    query = select(Checkpoint.size, Checkpoint.signed).order_by(Checkpoint.size.desc())
    with ledger.engine.connect() as connection:
        rows = connection.execute(query.limit(limit)).all()
    by_day: dict[str, GrowthPoint] = {}
    for size, signed in rows:  # largest first: the first seen of a day is its last
        day = local_date(datetime.fromisoformat(str(signed))).isoformat()
        by_day.setdefault(day, GrowthPoint(day, int(size), str(signed)))
    return tuple(sorted(by_day.values(), key=lambda point: point.size))


def checkpoint_note(ledger: Ledger, size: int) -> str:
    """The operator's signed note of the stored checkpoint of ``size`` (unverified: the
    reader checks it)."""
    with ledger.engine.connect() as connection:
        stored = store.checkpoint_at(connection, size)
    if stored is None:
        raise NotFoundError(f"no checkpoint of size {size} was signed")
    return stored.note
