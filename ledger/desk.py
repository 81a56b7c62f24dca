"""The regulator desk's reads (issue 10): what awaits a region's decision and the
region's picture, each a typed read over the projections and the log's own columns
(seq, kind, signer, logged), never a consumer's data.

Every read is for one region R and stays inside R's scope (ledger.access): entries R
must decide, obligations whose debtor or creditor is enrolled in R, instructions R's
members pay or are paid, disputes R's members raised or are the target of, and notices R
gave. Amounts are integer fen; days are Asia/Shanghai business days.

The anomaly flags are computed from the log alone, with thresholds stated here:
* **bunched at the end of the window**: an accepting member of R with at least
  BUNCHED_RETURNS_MIN returns in the window, of which at least BUNCHED_PERCENT_MIN %
  were accepted within LATE_DAYS days of the last day the seller's commitment allowed;
* **outsized share**: an accepting member of R holding at least OUTSIZED_PERCENT_MIN %
  of the returns accepted in R in the window, once R accepted at least
  OUTSIZED_RETURNS_MIN.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from pydantic import ValidationError
from sqlalchemy import Engine, or_, select

from ledger.calendar import local_date
from ledger.kinds.money import ADVANCE, RETURN, VOID
from ledger.projections import PROJECTION_TABLES, current
from ledger.reads import Reads
from ledger.tables import LogEntry
from schemas.bodies import PolicyModel
from schemas.entry import format_utc, parse_time
from schemas.errors import TamperedError
from schemas.limits import DESK_ITEMS_MAX, DESK_QUEUE_PAGE_MAX

# How long a region may take over a decision (the desk shows each entry's age against
# it): two days, the pace at which the demo's nodes decide.
REVIEW_SLA_S = 48 * 3600
# Age buckets (days, upper bounds included) for disputes and overdue instructions.
AGE_BUCKETS_DAYS = (3, 7, 14, 30)
# Anomaly thresholds (see the module's docstring).
LATE_DAYS = 1
BUNCHED_RETURNS_MIN = 5
BUNCHED_PERCENT_MIN = 50
OUTSIZED_RETURNS_MIN = 10
OUTSIZED_PERCENT_MIN = 25


@dataclass(frozen=True, slots=True)
class QueueItem:
    """An entry awaiting the region's decision: what it is and how old."""

    seq: int
    kind: str
    signer: str
    logged: str
    age_s: int
    overdue: bool  # older than REVIEW_SLA_S
    debtor: str | None  # an obligation's parties and amount (returns, advances)
    creditor: str | None
    amount_fen: int | None
    day: str | None  # a night's business day (reconciliation.closed)


@dataclass(frozen=True, slots=True)
class ReviewQueue:
    region: str
    total: int  # entries awaiting, of which ``items`` lists the oldest page
    sla_s: int
    items: tuple[QueueItem, ...]


@dataclass(frozen=True, slots=True)
class DayReturns:
    """Returns of one local day touching R: accepted by R's members (they refunded), and
    of R's members' sales (they owe)."""

    day: str
    accepted: int
    accepted_fen: int
    sold: int
    sold_fen: int


@dataclass(frozen=True, slots=True)
class Flow:
    """Money owed from members of ``debtor_region`` to members of ``creditor_region``."""

    debtor_region: str
    creditor_region: str
    kind: str  # return | advance
    count: int
    amount_fen: int


@dataclass(frozen=True, slots=True)
class AgedItem:
    """An open dispute or an overdue instruction, with its age in days."""

    what: str  # dispute | overdue
    ref: str  # the dispute's seq, or "night seq/index"
    member: str  # the debtor who disputes, or the payer who is late
    amount_fen: int | None
    since: str  # YYYY-MM-DD: the dispute's day, or the instruction's due date
    age_days: int


@dataclass(frozen=True, slots=True)
class NoticeItem:
    seq: int
    member: str
    rule: str
    measure: str
    deadline: str
    days_left: int
    objected: bool


@dataclass(frozen=True, slots=True)
class Flag:
    """An anomaly: which rule, which member, and the figures that raised it."""

    rule: str  # bunched_at_window_end | outsized_share
    member: str
    returns: int
    percent: int
    threshold_percent: int


@dataclass(frozen=True, slots=True)
class AcceptedReturn:
    """A return accepted by a member of R, as the anomaly rules see it."""

    acceptor: str
    days_left: int  # days between its acceptance and the window's last day


def age_buckets(ages_days: Iterable[int]) -> list[tuple[str, int]]:
    """Counts per AGE_BUCKETS_DAYS bucket, labelled "0-3", "4-7", …, ">30"."""
    counts = [0] * (len(AGE_BUCKETS_DAYS) + 1)
    for age in ages_days:
        index = next((i for i, top in enumerate(AGE_BUCKETS_DAYS) if age <= top), None)
        counts[len(AGE_BUCKETS_DAYS) if index is None else index] += 1
    labels, low = [], 0
    for top in AGE_BUCKETS_DAYS:
        labels.append(f"{low}-{top}")
        low = top + 1
    labels.append(f">{AGE_BUCKETS_DAYS[-1]}")
    return list(zip(labels, counts, strict=True))


def anomaly_flags(returns: Sequence[AcceptedReturn]) -> list[Flag]:
    """The flags of the accepted returns of one region in the window (pure)."""
    flags: list[Flag] = []
    by_acceptor = Counter(item.acceptor for item in returns)
    late = Counter(item.acceptor for item in returns if item.days_left <= LATE_DAYS)
    for acceptor, count in sorted(by_acceptor.items()):
        percent = late[acceptor] * 100 // count
        if count >= BUNCHED_RETURNS_MIN and percent >= BUNCHED_PERCENT_MIN:
            flags.append(
                Flag("bunched_at_window_end", acceptor, count, percent, BUNCHED_PERCENT_MIN)
            )
    total = len(returns)
    if total >= OUTSIZED_RETURNS_MIN:
        for acceptor, count in sorted(by_acceptor.items()):
            percent = count * 100 // total
            if percent >= OUTSIZED_PERCENT_MIN:
                flags.append(Flag("outsized_share", acceptor, count, percent, OUTSIZED_PERCENT_MIN))
    return flags


def returns_per_day(region: str, rows: Iterable[Any]) -> list[DayReturns]:
    """Per local day, the returns accepted by and sold by ``region``'s members, from
    DeskReads._obligations rows."""
    days: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for row in rows:
        if row.kind != RETURN:
            continue
        day = local_date(parse_time(row.logged, field="logged")).isoformat()
        figures = days[day]
        if row.creditor_region == region:
            figures[0] += 1
            figures[1] += int(row.amount_fen)
        if row.debtor_region == region:
            figures[2] += 1
            figures[3] += int(row.amount_fen)
    return [DayReturns(day, *days[day]) for day in sorted(days)]


def flows(rows: Iterable[Any]) -> list[Flow]:
    """Count and amount per (debtor's region, creditor's region, kind)."""
    sums: dict[tuple[str, str, str], list[int]] = defaultdict(lambda: [0, 0])
    for row in rows:
        figures = sums[(str(row.debtor_region), str(row.creditor_region), str(row.kind))]
        figures[0] += 1
        figures[1] += int(row.amount_fen)
    return [Flow(d, c, k, *sums[(d, c, k)]) for d, c, k in sorted(sums)]


def _members_of(region: str) -> Any:
    members = current("members").subquery()
    return select(members.c.id).where(members.c.region == region)


@dataclass(frozen=True, slots=True)
class DeskReads:
    engine: Engine

    def review_queue(self, region: str, now: datetime) -> ReviewQueue:
        """The entries ``region`` must decide and has not, oldest first, the oldest
        DESK_QUEUE_PAGE_MAX of them with their details and age against REVIEW_SLA_S."""
        awaiting = Reads(self.engine).awaiting(region)
        page = awaiting[:DESK_QUEUE_PAGE_MAX]
        obligations = PROJECTION_TABLES["obligations"]
        nights = PROJECTION_TABLES["nights"]
        now_s = int(now.timestamp())
        with self.engine.connect() as connection:
            logged = {
                int(row.seq): row
                for row in connection.execute(
                    select(LogEntry.seq, LogEntry.kind, LogEntry.signer, LogEntry.logged).where(
                        LogEntry.seq.in_(page)
                    )
                )
            }
            owed = {
                int(row.seq): row
                for row in connection.execute(
                    current("obligations").where(obligations.c.seq.in_(page))
                )
            }
            days = {
                int(row.seq): str(row.day)
                for row in connection.execute(current("nights").where(nights.c.seq.in_(page)))
            }
        items = []
        for seq in page:
            entry = logged[seq]
            age_s = max(0, now_s - int(parse_time(entry.logged, field="logged").timestamp()))
            obligation = owed.get(seq)
            items.append(
                QueueItem(
                    seq=seq,
                    kind=str(entry.kind),
                    signer=str(entry.signer),
                    logged=str(entry.logged),
                    age_s=age_s,
                    overdue=age_s > REVIEW_SLA_S,
                    debtor=None if obligation is None else str(obligation.debtor),
                    creditor=None if obligation is None else str(obligation.creditor),
                    amount_fen=None if obligation is None else int(obligation.amount_fen),
                    day=days.get(seq),
                )
            )
        return ReviewQueue(region, len(awaiting), REVIEW_SLA_S, tuple(items))

    def _obligations(self, region: str, since: datetime) -> list[Any]:
        """Live return and advance obligations logged since ``since`` whose debtor or
        creditor is a member of ``region``, with both parties' regions."""
        table = PROJECTION_TABLES["obligations"]
        live = current("obligations").where(
            table.c.kind.in_([RETURN, ADVANCE]),
            table.c.status != VOID,
            table.c.logged >= format_utc(since),
        )
        obligations = live.subquery()
        members = current("members").subquery()
        debtors, creditors = members.alias("debtors"), members.alias("creditors")
        query = (
            select(
                obligations.c.seq,
                obligations.c.kind,
                obligations.c.logged,
                obligations.c.amount_fen,
                obligations.c.debtor,
                obligations.c.creditor,
                debtors.c.region.label("debtor_region"),
                creditors.c.region.label("creditor_region"),
            )
            .join(debtors, debtors.c.id == obligations.c.debtor)
            .join(creditors, creditors.c.id == obligations.c.creditor)
            .where(or_(debtors.c.region == region, creditors.c.region == region))
            .order_by(obligations.c.seq)
        )
        with self.engine.connect() as connection:
            return list(connection.execute(query))

    def returns_per_day(self, region: str, since: datetime) -> list[DayReturns]:
        """Per local day since ``since``, the returns accepted by and sold by R's members."""
        return returns_per_day(region, self._obligations(region, since))

    def flows(self, region: str, since: datetime) -> list[Flow]:
        """Amounts owed between regions (debtor's region to creditor's) by kind, for the
        obligations touching R since ``since``."""
        return flows(self._obligations(region, since))

    def returns_and_flows(
        self, region: str, since: datetime
    ) -> tuple[list[DayReturns], list[Flow]]:
        """Both of the above from one read of the obligations (the picture's)."""
        rows = self._obligations(region, since)
        return returns_per_day(region, rows), flows(rows)

    def disputes(self, region: str, today: date) -> list[AgedItem]:
        """Open disputes raised by R's members or against obligations owed to them,
        oldest first, at most DESK_ITEMS_MAX."""
        disputes = current("disputes").subquery()
        obligations = current("obligations").subquery()
        mine = _members_of(region)
        query = (
            select(disputes.c.seq, disputes.c.debtor, obligations.c.amount_fen, LogEntry.logged)
            .join(obligations, obligations.c.seq == disputes.c.target)
            .join(LogEntry, LogEntry.seq == disputes.c.seq)
            .where(
                disputes.c.status == "open",
                or_(disputes.c.debtor.in_(mine), obligations.c.creditor.in_(mine)),
            )
            .order_by(disputes.c.seq)
            .limit(DESK_ITEMS_MAX)
        )
        with self.engine.connect() as connection:
            rows = list(connection.execute(query))
        items = []
        for seq, debtor, amount_fen, logged in rows:
            day = local_date(parse_time(logged, field="logged"))
            age = (today - day).days
            items.append(AgedItem("dispute", str(seq), debtor, int(amount_fen), str(day), age))
        return items

    def overdue(self, region: str, today: date) -> list[AgedItem]:
        """Instructions R's members pay or are paid that are past their due date and not
        confirmed in full, most overdue first, at most DESK_ITEMS_MAX."""
        instructions = current("instructions").subquery()
        mine = _members_of(region)
        query = (
            select(instructions)
            .where(
                instructions.c.confirmed_fen < instructions.c.amount_fen,
                instructions.c.due < today.isoformat(),
                or_(instructions.c.payer.in_(mine), instructions.c.payee.in_(mine)),
            )
            .order_by(instructions.c.due, instructions.c.night, instructions.c["index"])
            .limit(DESK_ITEMS_MAX)
        )
        with self.engine.connect() as connection:
            rows = list(connection.execute(query))
        return [
            AgedItem(
                "overdue",
                f"{row.night}/{row._mapping['index']}",
                str(row.payer),
                int(row.amount_fen) - int(row.confirmed_fen),
                str(row.due),
                (today - date.fromisoformat(str(row.due))).days,
            )
            for row in rows
        ]

    def notices(self, region: str, today: date) -> list[NoticeItem]:
        """Credit notices R gave that await a decision, by deadline."""
        notices = current("credit_notices").subquery()
        query = (
            select(notices)
            .where(notices.c.region == region, notices.c.decision_seq.is_(None))
            .order_by(notices.c.deadline, notices.c.seq)
            .limit(DESK_ITEMS_MAX)
        )
        with self.engine.connect() as connection:
            rows = list(connection.execute(query))
        return [
            NoticeItem(
                seq=int(row.seq),
                member=str(row.member),
                rule=str(row.rule),
                measure=str(row.measure),
                deadline=str(row.deadline),
                days_left=(date.fromisoformat(str(row.deadline)) - today).days,
                objected=row.objection_seq is not None,
            )
            for row in rows
        ]

    def accepted_returns(self, region: str, since: datetime) -> list[AcceptedReturn]:
        """Live returns accepted by R's members since ``since``, each with the days its
        acceptance left before the window closed: the seller's commitment in force on
        the purchase date (the leaf's receipt and accepted time; nothing personal)."""
        table = PROJECTION_TABLES["obligations"]
        mine = _members_of(region)
        returns = current("obligations").where(
            table.c.kind == RETURN,
            table.c.status != VOID,
            table.c.logged >= format_utc(since),
            table.c.creditor.in_(mine),
        )
        query = select(LogEntry.leaf).where(
            LogEntry.seq.in_(returns.with_only_columns(table.c.seq))
        )
        commitments = PROJECTION_TABLES["commitments"]
        with self.engine.connect() as connection:
            leaves = [bytes(leaf) for (leaf,) in connection.execute(query)]
            entries = [json.loads(leaf)["entry"] for leaf in leaves]
            sellers = sorted({str(e["body"]["receipt"]["merchant"]) for e in entries})
            terms: dict[str, list[tuple[str, int]]] = defaultdict(list)
            for row in connection.execute(
                current("commitments").where(commitments.c.member.in_(sellers))
            ):
                terms[str(row.member)].append((str(row.effective), int(row.return_days)))
        found = []
        for entry in entries:
            body = entry["body"]
            purchased = date.fromisoformat(body["receipt"]["purchased"])
            in_force = [
                days
                for since_day, days in sorted(terms[body["receipt"]["merchant"]])
                if since_day <= purchased.isoformat()
            ]
            if not in_force:
                continue
            last_day = purchased + timedelta(days=in_force[-1])
            accepted = local_date(parse_time(body["accepted"], field="accepted"))
            found.append(AcceptedReturn(str(entry["signer"]), (last_day - accepted).days))
        return found

    def flags(self, region: str, since: datetime) -> list[Flag]:
        return anomaly_flags(self.accepted_returns(region, since))

    def members_in(self, region: str, candidates: Iterable[str]) -> set[str]:
        """Those of ``candidates`` enrolled in ``region``."""
        wanted = sorted(set(candidates))
        if not wanted:
            return set()
        members = current("members").subquery()
        query = select(members.c.id).where(members.c.region == region, members.c.id.in_(wanted))
        with self.engine.connect() as connection:
            return {str(uscc) for (uscc,) in connection.execute(query)}

    def regions(self) -> list[tuple[str, str]]:
        """(code, name) of every region the log declares, by code."""
        regions = current("regions").subquery()
        query = select(regions.c.code, regions.c.name).order_by(regions.c.code)
        with self.engine.connect() as connection:
            return [(str(code), str(name)) for code, name in connection.execute(query)]

    def rejection_reasons(self) -> list[str]:
        """The codes an endorsement that rejects may carry (policy.reasons.rejection)."""
        meta = current("meta").subquery()
        query = select(meta.c.value).where(meta.c.name == "policy")
        with self.engine.connect() as connection:
            value = connection.execute(query).scalar_one_or_none()
        if value is None:
            return []
        try:
            policy = PolicyModel.model_validate_json(value)
        except ValidationError as exc:  # the writer only stores policies it validated
            raise TamperedError("the stored policy is not one the log adopted") from exc
        return list(policy.reasons.rejection)


@dataclass(frozen=True, slots=True)
class NightSummary:
    """A closed night: gross versus net and the netting reduction (its entry's totals)."""

    seq: int
    day: str
    status: str  # pending | approved | void (the regions' verdict on the night)
    gross_fen: int
    net_fen: int
    reduction_permille: int
    obligations: int
    members: int
    instructions: int
    overdue: int


@dataclass(frozen=True, slots=True)
class InstructionStatus:
    """One instruction of a night and where it stands: ``confirmed`` once the payee
    confirmed it all, else ``paid`` once the payer paid it all, else ``overdue`` past its
    due date, else ``due``."""

    night: int
    index: int
    payer: str
    payee: str
    amount_fen: int
    due: str
    paid_fen: int
    confirmed_fen: int
    status: str


def instruction_status(
    amount_fen: int, paid_fen: int, confirmed_fen: int, due: str, today: date
) -> str:
    if confirmed_fen >= amount_fen:
        return "confirmed"
    if paid_fen >= amount_fen:
        return "paid"
    return "overdue" if due < today.isoformat() else "due"


@dataclass(frozen=True, slots=True)
class NightReads:
    """The reconciliation page's reads: the closed nights and each night's instructions."""

    engine: Engine

    def nights(self) -> list[NightSummary]:
        """The newest DESK_ITEMS_MAX closed nights, newest first, with their totals."""
        nights = current("nights").subquery()
        query = (
            select(nights.c.seq, nights.c.day, nights.c.status, LogEntry.leaf)
            .join(LogEntry, LogEntry.seq == nights.c.seq)
            .order_by(nights.c.day.desc())
            .limit(DESK_ITEMS_MAX)
        )
        with self.engine.connect() as connection:
            rows = list(connection.execute(query))
        found = []
        for seq, day, status, leaf in rows:
            totals = json.loads(bytes(leaf))["entry"]["body"]["totals"]
            found.append(
                NightSummary(
                    int(seq),
                    str(day),
                    str(status),
                    int(totals["gross_fen"]),
                    int(totals["net_fen"]),
                    int(totals["reduction_permille"]),
                    int(totals["obligations"]),
                    int(totals["members"]),
                    int(totals["instructions"]),
                    int(totals["overdue"]),
                )
            )
        return found

    def instructions(self, day: str, today: date) -> list[InstructionStatus]:
        """The instructions of the night of ``day`` with their status, by index (at most
        DESK_ITEMS_MAX)."""
        nights = current("nights").subquery()
        instructions = current("instructions").subquery()
        query = (
            select(instructions)
            .join(nights, nights.c.seq == instructions.c.night)
            .where(nights.c.day == day)
            .order_by(instructions.c["index"])
            .limit(DESK_ITEMS_MAX)
        )
        with self.engine.connect() as connection:
            rows = list(connection.execute(query))
        return [
            InstructionStatus(
                int(row.night),
                int(row._mapping["index"]),
                str(row.payer),
                str(row.payee),
                int(row.amount_fen),
                str(row.due),
                int(row.paid_fen),
                int(row.confirmed_fen),
                instruction_status(
                    int(row.amount_fen),
                    int(row.paid_fen),
                    int(row.confirmed_fen),
                    str(row.due),
                    today,
                ),
            )
            for row in rows
        ]


__all__ = [
    "AGE_BUCKETS_DAYS",
    "BUNCHED_PERCENT_MIN",
    "BUNCHED_RETURNS_MIN",
    "LATE_DAYS",
    "OUTSIZED_PERCENT_MIN",
    "OUTSIZED_RETURNS_MIN",
    "REVIEW_SLA_S",
    "AcceptedReturn",
    "AgedItem",
    "DayReturns",
    "DeskReads",
    "Flag",
    "Flow",
    "InstructionStatus",
    "NightReads",
    "NightSummary",
    "NoticeItem",
    "QueueItem",
    "ReviewQueue",
    "age_buckets",
    "anomaly_flags",
    "instruction_status",
]
