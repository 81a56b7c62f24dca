"""Typed reads for every reader that is not the writer (API, reconciliation, dashboard,
nodes' hints): the newest version of each projection row, no seal check (readers decide
nothing; the writer and the nodes verify what they build on).

Each read is plain SQL over ``ledger.projections.current(name)`` (the newest version of
each row) with joins over the child tables, and over the ``postings`` view derived from
the obligations (``POSTINGS``): no JSON is parsed and no LIKE is used. The results are
the frozen rows of ledger.rows (or small frozen views of them), equal to what the
writer's in-memory State holds for the same log size.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy import (
    BigInteger,
    Connection,
    Engine,
    Select,
    Text,
    and_,
    case,
    column,
    func,
    literal,
    or_,
    select,
    table,
    true,
    union_all,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.schema import DDL

from ledger import store
from ledger.calendar import local_date
from ledger.kinds.credit import credit_row
from ledger.kinds.money import (
    ADVANCE,
    EFFECTIVE,
    HELD,
    OBLIGATION_STATUSES,
    PAYABLE,
    PENDING,
    RECEIVABLE,
    RETURN,
    VOID,
)
from ledger.merkle.tiles import entry_bundle
from ledger.projections import FIELD_NAMES, PROJECTION_TABLES, current
from ledger.rows import (
    TABLES,
    CommitmentRow,
    CreditRow,
    DisputeRow,
    ExclusionRow,
    InstructionRow,
    KeyRow,
    MemberRow,
    MetaRow,
    ObligationRow,
    PenaltyRow,
    StatusRow,
    StoreRow,
)
from schemas.bodies import PolicyModel
from schemas.entry import format_utc
from schemas.errors import NotFoundError, TamperedError
from schemas.limits import ENTRY_BUNDLE_SIZE, HASH_SIZE, TILE_WIDTH

# The double-entry view (DESIGN §5), created by the migrations on both backends: two
# postings per obligation, derived in SQL exactly as ledger.kinds.money.postings_of
# derives them in Python (the debtor's payable -amount, the creditor's receivable
# +amount, under the source seq). It reads the newest version of each obligation, as
# every read does, never the creating one (version == seq): a batch stores only the last
# version of a row it changed twice, and a rebuild stores only the current rows, so the
# creating version need not be stored at all. The fields it reads never change between
# versions, so a status change never adds or alters a posting. Nothing stores postings:
# the view takes no writes on either backend (PostgreSQL updates no view with a join).
POSTINGS = table(
    "postings",
    column("seq", BigInteger),
    column("account", Text),
    column("amount_fen", BigInteger),
)
_DEBIT, _CREDIT = -1, 1  # the sign of each side's amount


def postings_view() -> Select[Any]:
    """The SELECT behind the ``postings`` view: (seq, account, amount_fen), two rows per
    obligation. One SELECT over the obligations joined to the two sides, not a UNION
    ALL of two SELECTs: both planners then push a reader's restriction on the
    obligations (by seq, debtor or creditor) into the view and use their indexes. A
    UNION ALL was read whole on every call (measured at 100k obligations on PostgreSQL:
    0.2 s for a member's balances, up to a minute with the per-obligation check,
    against 4 ms in this form)."""
    obligations = PROJECTION_TABLES["obligations"]
    sides = union_all(
        select(literal(_DEBIT).label("sign")), select(literal(_CREDIT).label("sign"))
    ).subquery("sides")
    debit = sides.c.sign == _DEBIT
    account = case(
        (debit, obligations.c.debtor + f":{PAYABLE}"),
        else_=obligations.c.creditor + f":{RECEIVABLE}",
    )
    return (
        current("obligations")
        .with_only_columns(
            obligations.c.seq,
            account.label("account"),
            (sides.c.sign * obligations.c.amount_fen).label("amount_fen"),
        )
        .select_from(obligations.join(sides, true()))
    )


def create_postings_view(dialect: Dialect) -> DDL:
    """The DDL of the ``postings`` view for ``dialect``: the constants are inline (a view
    takes no parameters), and DDL, unlike text(), reads no ``:name`` in them as one."""
    query = postings_view().compile(dialect=dialect, compile_kwargs={"literal_binds": True})
    return DDL(f"CREATE VIEW {POSTINGS.name} AS {query}")  # type: ignore[no-untyped-call]


@dataclass(frozen=True, slots=True)
class MemberView:
    """A member with its stores (by store id) and the categories it excludes (sorted)."""

    member: MemberRow
    stores: tuple[StoreRow, ...]
    excluded: tuple[str, ...]


def _newest(name: str, *where: Any) -> Select[Any]:
    """The newest version of the rows of ``name`` matching ``where`` (conditions on the
    projection table's own columns), ordered by key."""
    table = PROJECTION_TABLES[name]
    keys = TABLES[name][1]
    return current(name).where(*where).order_by(*[table.c[key] for key in keys])


def _rows(connection: Connection, name: str, *where: Any) -> list[Any]:
    """The rows of ``name`` matching ``where``, as ledger.rows objects, in key order."""
    row_type = TABLES[name][0]
    width = len(FIELD_NAMES[name])
    return [row_type(*values[:width]) for values in connection.execute(_newest(name, *where))]


def _versioned(connection: Connection, name: str, *where: Any) -> list[tuple[Any, int]]:
    """Like _rows(), each row with its version: the seq of the entry that wrote it."""
    row_type = TABLES[name][0]
    width = len(FIELD_NAMES[name])
    return [
        (row_type(*values[:width]), int(values[width]))
        for values in connection.execute(_newest(name, *where))
    ]


def _one(connection: Connection, name: str, *where: Any) -> Any:
    rows = _rows(connection, name, *where)
    if len(rows) > 1:  # two newest versions of one key: only a planted row does that
        raise TamperedError(f"{name}: a key matched {len(rows)} rows: run `alliance doctor`")
    return rows[0] if rows else None


def _balances(member: str) -> Select[Any]:
    """(status, payable_fen, receivable_fen, unbalanced obligations) of ``member`` per
    obligation status, summed per obligation first so each one's postings are checked.
    The obligations are picked by debtor and creditor (indexed) and the view joined on
    their seq: filtering the view's computed accounts instead reads every obligation."""
    table = PROJECTION_TABLES["obligations"]
    party = or_(table.c.debtor == member, table.c.creditor == member)
    obligations = current("obligations").where(party).subquery()
    account, amount = POSTINGS.c.account, POSTINGS.c.amount_fen
    owed = case((account == f"{member}:{PAYABLE}", -amount), else_=0)
    owing = case((account == f"{member}:{RECEIVABLE}", amount), else_=0)
    per_obligation = (
        select(
            obligations.c.status,
            func.sum(owed).label("owed"),
            func.sum(owing).label("owing"),
            func.count().label("postings"),
            func.sum(amount).label("net"),
        )
        .select_from(obligations.join(POSTINGS, POSTINGS.c.seq == obligations.c.seq))
        .group_by(obligations.c.seq, obligations.c.status)
        .subquery()
    )
    unbalanced = or_(per_obligation.c.postings != 2, per_obligation.c.net != 0)
    return select(
        per_obligation.c.status,
        func.sum(per_obligation.c.owed),
        func.sum(per_obligation.c.owing),
        func.sum(case((unbalanced, 1), else_=0)),
    ).group_by(per_obligation.c.status)


@dataclass(frozen=True, slots=True)
class MemberRecord:
    """What the log says of one member, each row with the seq of the entry that wrote
    its newest version: the rows a public page and a return check are computed from."""

    member: MemberRow
    member_seq: int
    policy: MetaRow
    statuses: tuple[StatusRow, ...]  # by seq
    commitments: tuple[CommitmentRow, ...]  # by seq
    exclusions: tuple[ExclusionRow, ...]
    stores: tuple[tuple[StoreRow, int], ...]  # by store id
    penalties: tuple[tuple[PenaltyRow, int], ...]  # by seq
    evidence_counts: dict[int, int]  # notice seq -> evidence seqs it cites


@dataclass(frozen=True, slots=True)
class PublicCounts:
    """A member's counts since a moment (never amounts): returns it accepted for other
    members' sales, returns of its sales that were approved and stand, settlement
    instructions of its listed overdue, and advances recovered from it through netting."""

    returns_accepted: int
    returns_honoured: int
    overdue_settlements: int
    advances_recovered: int


def _count_obligations(member_column: Any, kind: str, since: str, *where: Any) -> Select[Any]:
    table = PROJECTION_TABLES["obligations"]
    query = current("obligations").where(member_column, table.c.kind == kind, *where)
    newest = query.where(table.c.logged >= since).subquery()
    return select(func.count()).select_from(newest)


def _count_overdue(member: str, since_day: str) -> Select[Any]:
    """Distinct instructions of ``member`` listed overdue by a night of ``since_day`` or
    later (one instruction listed on several nights counts once)."""
    listings_table = PROJECTION_TABLES["overdue_listings"]
    listings = current("overdue_listings").where(listings_table.c.payer == member).subquery()
    nights = current("nights").subquery()
    instructions = (
        select(listings.c.night, listings.c.index)
        .join(nights, nights.c.seq == listings.c.listed)
        .where(nights.c.day >= since_day)
        .distinct()
        .subquery()
    )
    return select(func.count()).select_from(instructions)


@dataclass(frozen=True, slots=True)
class AwaitingDispute:
    """An open dispute (its seq) over the obligation ``target``: the debtor's region
    decides, with the creditor's when it is another (ledger.kinds.money)."""

    seq: int
    target: int
    debtor: str
    creditor: str
    amount_fen: int
    regions: tuple[str, ...]  # the regions whose decision it awaits


@dataclass(frozen=True, slots=True)
class Reads:
    engine: Engine

    def member(self, uscc: str) -> MemberView | None:
        """The member, its stores and excluded categories; None if never enrolled."""
        members = PROJECTION_TABLES["members"]
        stores = PROJECTION_TABLES["stores"]
        exclusions = PROJECTION_TABLES["exclusions"]
        with self.engine.connect() as connection:
            member: MemberRow | None = _one(connection, "members", members.c.id == uscc)
            if member is None:
                return None
            store_rows = _rows(connection, "stores", stores.c.member == uscc)
            excluded = _rows(connection, "exclusions", exclusions.c.member == uscc)
        return MemberView(member, tuple(store_rows), tuple(row.category for row in excluded))

    def credit_as_of(self, member: str, moment: datetime) -> CreditRow:
        """The member's credit at ``moment`` from its penalties and stored counts: the
        same computation as ledger.kinds.credit.credit_as_of on the writer's State."""
        meta = PROJECTION_TABLES["meta"]
        penalties = PROJECTION_TABLES["penalties"]
        credit = PROJECTION_TABLES["credit"]
        with self.engine.connect() as connection:
            policy_row: MetaRow | None = _one(connection, "meta", meta.c.name == "policy")
            if policy_row is None:
                raise NotFoundError("the log has no policy yet")
            rows: list[PenaltyRow] = _rows(connection, "penalties", penalties.c.member == member)
            stored: CreditRow | None = _one(connection, "credit", credit.c.member == member)
        try:
            policy = PolicyModel.model_validate_json(policy_row.value)
        except ValidationError as exc:  # the writer only stores policies it validated
            raise TamperedError("the stored policy is not one the log adopted") from exc
        return credit_row(member, rows, stored, policy, moment, format_utc(moment))

    def policy(self) -> PolicyModel | None:
        """The policy in force (the newest `policy.adopted`, or the genesis's)."""
        meta = PROJECTION_TABLES["meta"]
        with self.engine.connect() as connection:
            row: MetaRow | None = _one(connection, "meta", meta.c.name == "policy")
        if row is None:
            return None
        try:
            return PolicyModel.model_validate_json(row.value)
        except ValidationError as exc:  # the writer only stores policies it validated
            raise TamperedError("the stored policy is not one the log adopted") from exc

    def obligations(self, member: str, status: str | None = None) -> list[ObligationRow]:
        """The obligations the member owes or is owed (optionally of one status), by seq."""
        obligations = PROJECTION_TABLES["obligations"]
        where = [or_(obligations.c.debtor == member, obligations.c.creditor == member)]
        if status is not None:
            where.append(obligations.c.status == status)
        with self.engine.connect() as connection:
            return _rows(connection, "obligations", *where)

    def balances(self, member: str) -> dict[str, tuple[int, int]]:
        """Per obligation status, (payable_fen, receivable_fen) of the member: what it
        owes and is owed, both positive, from its postings (the ``postings`` view)
        joined to their obligations' status (postings are never reversed; a void
        obligation's postings show under "void"). Every status is present, with (0, 0)
        when the member has none. Every obligation counted must show exactly two
        postings summing to zero, or TamperedError: a check as cheap as the sums."""
        result = dict.fromkeys(OBLIGATION_STATUSES, (0, 0))
        with self.engine.connect() as connection:
            for status, owed, owing, unbalanced in connection.execute(_balances(member)):
                if unbalanced:
                    raise TamperedError(
                        f"{unbalanced} obligation(s) of {member} ({status}) show postings "
                        "that are not two summing to zero: run `alliance doctor`"
                    )
                result[str(status)] = (int(owed), int(owing))
        return result

    def awaiting(self, region: str) -> list[int]:
        """Seqs of pending entries ``region`` must decide and has not, oldest first (a
        hint for the region's node, which decides from its own verified state)."""
        dues_table = PROJECTION_TABLES["endorsement_dues"]
        dues = current("endorsement_dues").where(dues_table.c.region == region).subquery()
        endorsables = current("endorsables").subquery()
        decided = current("endorsements").subquery()
        query = (
            select(dues.c.target)
            .join(endorsables, endorsables.c.target == dues.c.target)
            .outerjoin(
                decided,
                and_(decided.c.target == dues.c.target, decided.c.region == dues.c.region),
            )
            .where(endorsables.c.status == PENDING, decided.c.target.is_(None))
            .order_by(dues.c.target)
        )
        with self.engine.connect() as connection:
            return [int(target) for (target,) in connection.execute(query)]

    def disputes_awaiting(self, region: str) -> list[AwaitingDispute]:
        """Open disputes whose decision ``region`` takes part in (its members are the
        disputed obligation's debtor or creditor), oldest first."""
        disputes = PROJECTION_TABLES["disputes"]
        with self.engine.connect() as connection:
            open_rows: list[DisputeRow] = _rows(connection, "disputes", disputes.c.status == "open")
        found = []
        for dispute in open_rows:
            obligation = self.obligation(dispute.target)
            if obligation is None:
                raise TamperedError(f"dispute {dispute.seq} targets seq {dispute.target}: none")
            regions = self._regions_in_order(obligation.debtor, obligation.creditor)
            if region in regions:
                found.append(
                    AwaitingDispute(
                        dispute.seq,
                        dispute.target,
                        obligation.debtor,
                        obligation.creditor,
                        obligation.amount_fen,
                        regions,
                    )
                )
        return found

    def overdue_instructions(self, region: str, day: str) -> list[InstructionRow]:
        """Instructions due before ``day`` (YYYY-MM-DD) and not yet confirmed in full,
        whose payer or payee is a member of ``region``, by night and index."""
        table = PROJECTION_TABLES["instructions"]
        where = (table.c.due < day, table.c.confirmed_fen < table.c.amount_fen)
        with self.engine.connect() as connection:
            rows: list[InstructionRow] = _rows(connection, "instructions", *where)
        return [row for row in rows if region in self._regions_in_order(row.payer, row.payee)]

    def _regions_in_order(self, *members: str) -> tuple[str, ...]:
        regions: list[str] = []
        for member in members:
            view = self.member(member)
            if view is not None and view.member.region not in regions:
                regions.append(view.member.region)
        return tuple(regions)

    # --- who is reading (ledger.access) -------------------------------------------------

    def key(self, key_id: str) -> KeyRow | None:
        """The key row of ``key_id`` (its principal, and until_seq once replaced)."""
        keys = PROJECTION_TABLES["principal_keys"]
        with self.engine.connect() as connection:
            found: KeyRow | None = _one(connection, "principal_keys", keys.c.key_id == key_id)
            return found

    def dues_of(self, seq: int) -> set[str]:
        """The regions that must endorse the entry at ``seq`` (none for most kinds)."""
        dues = PROJECTION_TABLES["endorsement_dues"]
        with self.engine.connect() as connection:
            rows = _rows(connection, "endorsement_dues", dues.c.target == seq)
        return {row.region for row in rows}

    def obligation(self, seq: int) -> ObligationRow | None:
        obligations = PROJECTION_TABLES["obligations"]
        with self.engine.connect() as connection:
            found: ObligationRow | None = _one(connection, "obligations", obligations.c.seq == seq)
            return found

    def instruction(self, night: int, index: int) -> InstructionRow | None:
        table = PROJECTION_TABLES["instructions"]
        with self.engine.connect() as connection:
            where = (table.c.night == night, table.c.index == index)
            found: InstructionRow | None = _one(connection, "instructions", *where)
            return found

    def regions_of(self, members: set[str]) -> set[str]:
        """The regions of those of ``members`` that are enrolled."""
        table = PROJECTION_TABLES["members"]
        if not members:
            return set()
        with self.engine.connect() as connection:
            rows = _rows(connection, "members", table.c.id.in_(sorted(members)))
        return {row.region for row in rows}

    # --- public reads (一站式查询): ledger.public builds its views on these ----------------

    def search_members(self, query: str, limit: int) -> list[MemberRow]:
        """Members whose USCC is ``query``, or whose name or one of whose stores' names
        contains it (case as written: names are Chinese), by USCC, at most ``limit``."""
        members = PROJECTION_TABLES["members"]
        stores = PROJECTION_TABLES["stores"]
        by_store = current("stores").where(stores.c.name.contains(query, autoescape=True))
        store_members = by_store.with_only_columns(stores.c.member).subquery()
        matches = or_(
            members.c.id == query,
            members.c.name.contains(query, autoescape=True),
            members.c.id.in_(select(store_members.c.member)),
        )
        with self.engine.connect() as connection:
            rows = connection.execute(_newest("members", matches).limit(limit))
            width = len(FIELD_NAMES["members"])
            return [MemberRow(*values[:width]) for values in rows]

    def member_record(self, uscc: str) -> MemberRecord | None:
        """Everything ledger.public shows of one member; None if never enrolled."""
        with self.engine.connect() as connection:
            found = _versioned(connection, "members", PROJECTION_TABLES["members"].c.id == uscc)
            if not found:
                return None
            if len(found) > 1:
                raise TamperedError(f"members: {uscc} matched {len(found)} rows")
            meta = PROJECTION_TABLES["meta"]
            policy: MetaRow | None = _one(connection, "meta", meta.c.name == "policy")
            if policy is None:
                raise NotFoundError("the log has no policy yet")
            record = MemberRecord(
                member=found[0][0],
                member_seq=found[0][1],
                policy=policy,
                statuses=tuple(_rows(connection, "member_statuses", _of("member_statuses", uscc))),
                commitments=tuple(_rows(connection, "commitments", _of("commitments", uscc))),
                exclusions=tuple(_rows(connection, "exclusions", _of("exclusions", uscc))),
                stores=tuple(_versioned(connection, "stores", _of("stores", uscc))),
                penalties=tuple(_versioned(connection, "penalties", _of("penalties", uscc))),
                evidence_counts={},
            )
            notices = [penalty.notice for penalty, _ in record.penalties]
            record.evidence_counts.update(_evidence_counts(connection, notices))
        return record

    def public_counts(self, member: str, since: datetime) -> PublicCounts:
        """The member's PublicCounts for obligations logged, and nights closed, since
        ``since`` (an aware moment; nights by their local business day)."""
        table = PROJECTION_TABLES["obligations"]
        since_text = format_utc(since)
        since_day = local_date(since).isoformat()
        live = table.c.status != VOID
        queries = [
            _count_obligations(table.c.creditor == member, RETURN, since_text, live),
            _count_obligations(
                table.c.debtor == member, RETURN, since_text, table.c.status.in_([EFFECTIVE, HELD])
            ),
            _count_overdue(member, since_day),
            _count_obligations(
                table.c.debtor == member, ADVANCE, since_text, live, table.c.reconciled.is_not(None)
            ),
        ]
        with self.engine.connect() as connection:
            counts = [int(connection.execute(query).scalar_one()) for query in queries]
        return PublicCounts(*counts)

    # --- the log as C2SP tlog-tiles -----------------------------------------------------

    def tile(
        self, level: int, index: int, width: int, tree_size: int | None = None
    ) -> bytes | None:
        """The first ``width`` hashes of tile (``level``, ``index``), or None while the
        tile holds fewer (a partial tile is a prefix of the tile it grows into), or
        when they are not all within the tree of ``tree_size`` leaves (the checkpoint
        this server serves: a lagging replica never serves past its own)."""
        if tree_size is not None and not tile_within(level, index, width, tree_size):
            return None
        with self.engine.connect() as connection:
            hashes = store.DbTiles(connection).read_tiles([(level, index)]).get((level, index))
        if hashes is None or len(hashes) < width * HASH_SIZE:
            return None
        return hashes[: width * HASH_SIZE]

    def entry_bundle(self, index: int, width: int, tree_size: int) -> bytes | None:
        """The C2SP entry bundle of leaves ``index*256 .. index*256+width-1``, or None
        unless all of them lie within ``tree_size`` (the verified checkpoint's)."""
        start = index * ENTRY_BUNDLE_SIZE
        end = start + width
        if end > tree_size:
            return None
        with self.engine.connect() as connection:
            leaves = [entry.leaf for entry in store.read_entries(connection, start, end)]
        if len(leaves) != width:
            raise TamperedError(f"the log lacks leaves in {start}..{end - 1}")
        return entry_bundle(leaves)


def tile_within(level: int, index: int, width: int, tree_size: int) -> bool:
    """Whether the first ``width`` hashes of hash tile (``level``, ``index``) are all
    nodes of the tree of ``tree_size`` leaves: each is the root of a full subtree of
    TILE_WIDTH**level leaves, the last ending at leaf (index*TILE_WIDTH + width) *
    TILE_WIDTH**level."""
    leaves_per_hash: int = TILE_WIDTH**level
    return (index * TILE_WIDTH + width) * leaves_per_hash <= tree_size


def _of(name: str, member: str) -> Any:
    """The condition "this row is ``member``'s" on projection ``name``."""
    return PROJECTION_TABLES[name].c.member == member


def _evidence_counts(connection: Connection, notices: list[int]) -> dict[int, int]:
    """How many evidence seqs each notice cites."""
    if not notices:
        return {}
    table = PROJECTION_TABLES["notice_evidence"]
    cited = current("notice_evidence").where(table.c.notice.in_(notices)).subquery()
    query = select(cited.c.notice, func.count()).group_by(cited.c.notice)
    return {int(notice): int(count) for notice, count in connection.execute(query)}
