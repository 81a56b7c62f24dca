"""ledger.reads: each typed read, by plain SQL over the stored projections, equals what the
writer's in-memory State says for the same log (on SQLite and PostgreSQL)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Connection, func, or_, select, text
from sqlalchemy.exc import DBAPIError

from ledger import projections, store
from ledger.calendar import local_date
from ledger.kinds.credit import credit_as_of
from ledger.kinds.money import postings_of
from ledger.maintenance import unguarded
from ledger.projections import FIELD_NAMES, PROJECTION_TABLES
from ledger.reads import POSTINGS, MemberView, Reads
from ledger.rows import ObligationRow
from ledger.state import State
from nodes.endorse import awaiting_region
from ops.world import entry_time, member_body
from schemas.errors import TamperedError
from signing.entry import submitted
from tests.conftest import Alliance
from tests.ledger.builders import advance_body as builders_advance
from tests.ledger.builders import one_item_return

REGIONS = ("31", "32", "33", "34")
STATUSES = ("pending", "effective", "held", "void")


@dataclass
class Busy:
    """A log with every kind of row the reads join: members with stores and exclusions,
    returns (cross-member and own), an advance, approvals, a rejection, an upheld
    dispute, an open dispute and a penalty."""

    seller: str
    buyer: str
    fund: str
    returns: list[int]
    advance: int
    open_dispute: int


def _submit(
    alliance: Alliance, kind: str, signer: str, body: dict[str, Any], *cosigners: str
) -> int:
    alliance.ring.ensure(signer)
    entry = alliance.factory.entry(kind, signer, body, alliance.clock())
    keys = [alliance.ring.keys[name] for name in (signer, *cosigners)]
    return alliance.sequencer.submit(submitted(entry, *keys)).seq


def _enrol(alliance: Alliance, region: str, **fields: Any) -> str:
    fields.setdefault("network", alliance.named())
    member = alliance.new_uscc(region)
    key = alliance.ring.ensure(member).public.wire()
    _submit(
        alliance, "member.enrolled", f"region:{region}", member_body(member, region, key, **fields)
    )
    return member


def _return(
    alliance: Alliance, seller: str, acceptor: str, number: str, refund_fen: int, store: str
) -> int:
    purchased = entry_time(alliance.clock())
    body = one_item_return(
        seller, purchased, number=number, refund_fen=refund_fen, accepted_store=store
    )
    return _submit(alliance, "return.recorded", acceptor, body)


def _endorse(alliance: Alliance, region: str, targets: list[int], decision: str) -> None:
    body = {
        "targets": targets,
        "decision": decision,
        "reason": "" if decision == "approve" else "receipt_not_genuine",
    }
    _submit(alliance, "endorsement", f"region:{region}", body)


def _busy(alliance: Alliance) -> Busy:
    seller = _enrol(
        alliance, "31", stores=[("S1", "310101"), ("S2", "310104")], excluded=["toys", "shoes"]
    )
    buyer = _enrol(alliance, "32", stores=[("S1", "320101")])
    fund = _enrol(alliance, "33", kind="fund", stores=[])
    returns = [
        _return(alliance, seller, buyer, "R-1", 6_000, "S1"),
        _return(alliance, seller, buyer, "R-2", 4_000, "S1"),
        _return(alliance, seller, buyer, "R-3", 3_000, "S1"),
        _return(alliance, seller, buyer, "R-4", 2_000, "S1"),
        _return(alliance, seller, seller, "R-5", 1_000, "S2"),
    ]
    advance_body = builders_advance(seller, "C-1", 9_000)
    advance = _submit(alliance, "advance.paid", fund, advance_body)
    _endorse(alliance, "31", [*returns[:3], returns[4], advance], "approve")
    _endorse(alliance, "33", [advance], "approve")
    _endorse(alliance, "32", returns[:1], "approve")
    _endorse(alliance, "32", returns[1:2], "reject")
    upheld = _submit(
        alliance, "claim.disputed", seller, {"target": returns[2], "reason": "not_our_sale"}
    )
    upheld_body = {"dispute": upheld, "outcome": "upheld"}
    _submit(alliance, "dispute.resolved", "region:31", upheld_body, "region:32")
    open_dispute = _submit(
        alliance, "claim.disputed", seller, {"target": returns[3], "reason": "not_our_sale"}
    )
    alliance.clock.advance(days=1)
    notice = {
        "member": seller,
        "rule": "serious_violation",
        "points": 60,
        "measure": "delisting",
        "evidence": [advance],  # approved by both regions: the fund paid its customer
        "deadline": local_date(alliance.clock() + timedelta(days=3)).isoformat(),
    }
    notice_seq = _submit(alliance, "credit.notice", "region:31", notice)
    alliance.clock.advance(days=4)
    penalty = {
        "notice": notice_seq,
        "objection": None,
        "decision_no": "沪联信〔2026〕1号",
        "member": seller,
        "rule": "serious_violation",
        "points": 10,  # a lighter decision than the notice proposed
        "measure": "warning",
        "until": entry_time(alliance.clock() + timedelta(days=30)),
    }
    _submit(alliance, "credit.penalty", "region:31", penalty)
    return Busy(seller, buyer, fund, returns, advance, open_dispute)


@pytest.fixture
def busy(alliance: Alliance) -> tuple[Busy, State, Reads]:
    scenario = _busy(alliance)
    return scenario, alliance.ledger.replayed_state(), alliance.ledger.reads()


def test_member_view_has_its_stores_and_exclusions(busy: tuple[Busy, State, Reads]) -> None:
    scenario, state, reads = busy
    for member in (scenario.seller, scenario.buyer, scenario.fund):
        row = state.member(member)
        assert row is not None
        stores = tuple(
            sorted((s for s in state.stores.rows() if s.member == member), key=lambda s: s.store_id)
        )
        excluded = tuple(sorted(e.category for e in state.exclusions.rows() if e.member == member))
        assert reads.member(member) == MemberView(row, stores, excluded)
    view = reads.member(scenario.seller)
    assert view is not None
    assert view.excluded == ("shoes", "toys")
    assert [store.store_id for store in view.stores] == ["S1", "S2"]
    assert reads.member(scenario.fund) == MemberView(state.member(scenario.fund), (), ())  # type: ignore[arg-type]
    assert reads.member("91310000MA00000000") is None


def test_credit_as_of_matches_the_writers_computation(
    alliance: Alliance, busy: tuple[Busy, State, Reads]
) -> None:
    scenario, state, reads = busy
    now = alliance.clock()
    moments = [now, now - timedelta(days=2), now + timedelta(days=29), now + timedelta(days=31)]
    for member in (scenario.seller, scenario.buyer, "91310000MA00000000"):
        for moment in moments:
            assert reads.credit_as_of(member, moment) == credit_as_of(state, member, moment)
    listed = reads.credit_as_of(scenario.seller, now)
    assert (listed.points, listed.measure, listed.stars) == (10, "warning", 4)
    assert listed.returns_honoured == 1  # R-1 only: R-3 was never approved by Jiangsu
    assert reads.credit_as_of(scenario.seller, now + timedelta(days=31)).stars == 5


def test_obligations_of_a_member_by_status(busy: tuple[Busy, State, Reads]) -> None:
    scenario, state, reads = busy
    for member in (scenario.seller, scenario.buyer, scenario.fund):
        mine = sorted(
            (o for o in state.obligations.rows() if member in (o.debtor, o.creditor)),
            key=lambda o: o.seq,
        )
        assert reads.obligations(member) == mine
        for status in STATUSES:
            assert reads.obligations(member, status) == [o for o in mine if o.status == status]
    statuses = {o.seq: o.status for o in reads.obligations(scenario.seller)}
    returns = scenario.returns
    assert statuses == {
        returns[0]: "effective",
        returns[1]: "void",
        returns[2]: "void",
        returns[3]: "held",
        scenario.advance: "effective",
    }
    assert reads.obligations("91310000MA00000000") == []


def _balances(state: State, member: str) -> dict[str, tuple[int, int]]:
    result = dict.fromkeys(STATUSES, (0, 0))
    for obligation in state.obligations.rows():
        for posting in postings_of(obligation):
            owed, owing = result[obligation.status]
            if posting.account == f"{member}:payable":
                result[obligation.status] = (owed - posting.amount_fen, owing)
            elif posting.account == f"{member}:receivable":
                result[obligation.status] = (owed, owing + posting.amount_fen)
    return result


def test_balances_per_status_match_the_postings(busy: tuple[Busy, State, Reads]) -> None:
    scenario, state, reads = busy
    for member in (scenario.seller, scenario.buyer, scenario.fund, "91310000MA00000000"):
        assert reads.balances(member) == _balances(state, member)
    assert reads.balances(scenario.seller) == {
        "pending": (0, 0),
        "effective": (15_000, 0),
        "held": (2_000, 0),
        "void": (7_000, 0),
    }
    assert reads.balances(scenario.fund)["effective"] == (0, 9_000)


def _view(connection: Connection) -> list[tuple[int, str, int]]:
    """The rows of the ``postings`` view, sorted."""
    rows = connection.execute(select(POSTINGS.c.seq, POSTINGS.c.account, POSTINGS.c.amount_fen))
    return sorted((int(seq), str(account), int(amount)) for seq, account, amount in rows)


def _derived(state: State) -> list[tuple[int, str, int]]:
    """The postings of the state's obligations, as postings_of derives them, sorted."""
    return sorted(
        (posting.seq, posting.account, posting.amount_fen)
        for obligation in state.obligations.rows()
        for posting in postings_of(obligation)
    )


def _unbalanced(connection: Connection) -> list[tuple[int, int, int]]:
    """(seq, rows, sum) of each seq of the view without exactly two postings summing to 0."""
    query = (
        select(POSTINGS.c.seq, func.count(), func.sum(POSTINGS.c.amount_fen))
        .group_by(POSTINGS.c.seq)
        .having(or_(func.count() != 2, func.sum(POSTINGS.c.amount_fen) != 0))
    )
    return [(int(seq), int(count), int(total)) for seq, count, total in connection.execute(query)]


def _versions(connection: Connection) -> dict[int, list[int]]:
    """The stored versions of each obligation, oldest first."""
    table = PROJECTION_TABLES["obligations"]
    query = select(table.c.seq, table.c.version).order_by(table.c.seq, table.c.version)
    versions: dict[int, list[int]] = {}
    for seq, version in connection.execute(query):
        versions.setdefault(int(seq), []).append(int(version))
    return versions


def test_the_postings_view_has_two_balanced_rows_per_obligation(
    alliance: Alliance, busy: tuple[Busy, State, Reads]
) -> None:
    """Obligations whose status changed have several stored versions; the view still
    shows exactly their two postings, as postings_of derives them."""
    scenario, state, _ = busy
    with alliance.engine.connect() as connection:
        versions = _versions(connection)
        view = _view(connection)
        assert _unbalanced(connection) == []
    changed = [scenario.returns[0], scenario.returns[1], scenario.returns[3], scenario.advance]
    assert all(versions[seq][0] == seq and len(versions[seq]) > 1 for seq in changed)
    assert view == _derived(state)
    assert len(view) == 2 * len(state.obligations) == 2 * 5  # R-5 is the seller's own


def test_the_postings_view_needs_no_creating_version(
    alliance: Alliance, busy: tuple[Busy, State, Reads]
) -> None:
    """Rewritten as `alliance rebuild` does, each obligation is stored once, at its
    newest version: the view (and the balances) are unchanged."""
    scenario, state, reads = busy
    members = (scenario.seller, scenario.buyer, scenario.fund)
    before = {member: reads.balances(member) for member in members}
    with (
        alliance.engine.begin() as connection,
        unguarded(connection, projections.SEALED_TABLES),
    ):
        projections.clear(connection)
        projections.write_all(connection, state, alliance.sequencer.sealer)
    with alliance.engine.connect() as connection:
        versions = _versions(connection)
        assert _view(connection) == _derived(state)
        assert _unbalanced(connection) == []
    newest = {row.seq: state.obligations.versions[(row.seq,)] for row in state.obligations.rows()}
    assert versions == {seq: [version] for seq, version in newest.items()}
    assert scenario.returns[1] in versions
    assert newest[scenario.returns[1]] != scenario.returns[1]  # rejected: no version == seq
    assert {member: reads.balances(member) for member in members} == before


def test_the_postings_view_of_an_obligation_changed_in_its_own_batch(alliance: Alliance) -> None:
    """A return and its rejection in one batch: the batch stores the obligation at the
    rejection's seq only, never at its own; the view still shows its two postings."""
    seller = _enrol(alliance, "31", stores=[("S1", "310101")])
    buyer = _enrol(alliance, "32", stores=[("S1", "320101")])
    purchased = entry_time(alliance.clock())
    body = one_item_return(seller, purchased, number="R-1", refund_fen=700, accepted_store="S1")
    seq = alliance.ledger.size()
    reject = {"targets": [seq], "decision": "reject", "reason": "receipt_not_genuine"}
    documents = [
        alliance.factory.signed(alliance.ring, "return.recorded", buyer, body, alliance.clock()),
        alliance.factory.signed(
            alliance.ring, "endorsement", "region:32", reject, alliance.clock()
        ),
    ]
    results = alliance.ledger.submit_many(documents)
    assert [getattr(result, "seq", result) for result in results] == [seq, seq + 1]
    with alliance.engine.connect() as connection:
        assert _versions(connection) == {seq: [seq + 1]}
        assert _view(connection) == [
            (seq, f"{seller}:payable", -700),
            (seq, f"{buyer}:receivable", 700),
        ]
    assert alliance.ledger.reads().balances(buyer)["void"] == (0, 700)


def test_the_postings_view_refuses_writes(
    alliance: Alliance, busy: tuple[Busy, State, Reads]
) -> None:
    """Nothing stores postings: the view takes no INSERT, UPDATE or DELETE (a UNION ALL
    view is not updatable on PostgreSQL, and no SQLite view is)."""
    scenario, state, _ = busy
    seq = scenario.returns[0]
    for sql in (
        f"INSERT INTO postings (seq, account, amount_fen) VALUES ({seq}, 'planted', 1)",
        f"UPDATE postings SET amount_fen = 0 WHERE seq = {seq}",
        f"DELETE FROM postings WHERE seq = {seq}",
    ):
        with pytest.raises(DBAPIError, match="view"), alliance.engine.begin() as connection:
            connection.execute(text(sql))
    with alliance.engine.connect() as connection:
        assert _view(connection) == _derived(state)


def test_balances_refuse_an_obligation_shown_twice(
    alliance: Alliance, busy: tuple[Busy, State, Reads]
) -> None:
    """A planted copy of an obligation's newest version (INSERT rights, no key) makes
    four postings of one seq: balances name the tampering instead of counting it twice."""
    scenario, state, reads = busy
    table = PROJECTION_TABLES["obligations"]
    seq = scenario.returns[0]
    row = state.obligations.get(seq)
    assert row is not None
    version = state.obligations.versions[(seq,)]
    with alliance.engine.begin() as connection:
        values = {field: getattr(row, field) for field in FIELD_NAMES["obligations"]}
        connection.execute(table.insert().values(**values, version=version, seal=bytes(32)))
    with alliance.engine.connect() as connection:
        assert _unbalanced(connection) == [(seq, 4, 0)]
    with pytest.raises(TamperedError, match="alliance doctor"):
        reads.balances(scenario.buyer)
    assert reads.balances(scenario.fund)["effective"] == (0, 9_000)  # not a party to it


def test_awaiting_matches_the_nodes_state(busy: tuple[Busy, State, Reads]) -> None:
    scenario, state, reads = busy
    for region in REGIONS:
        assert reads.awaiting(region) == awaiting_region(state, region)
    # R-3 (voided by its upheld dispute, but still pending endorsement) and R-4 await
    # Jiangsu; the rejected R-2 and the fully decided entries await nobody.
    assert reads.awaiting("32") == [scenario.returns[2], scenario.returns[3]]
    assert reads.awaiting("31") == [scenario.returns[3]]
    assert reads.awaiting("33") == reads.awaiting("34") == []


def test_reads_follow_new_versions(alliance: Alliance, busy: tuple[Busy, State, Reads]) -> None:
    """Rows changed by later entries are read at their newest version."""
    scenario, _, reads = busy
    held = scenario.returns[3]
    _endorse(alliance, "31", [held], "approve")
    _endorse(alliance, "32", scenario.returns[2:4], "approve")
    body = {"dispute": scenario.open_dispute, "outcome": "dismissed"}
    _submit(alliance, "dispute.resolved", "region:31", body, "region:32")
    state = alliance.ledger.state()
    for region in REGIONS:
        assert reads.awaiting(region) == awaiting_region(state, region) == []
    effective = reads.obligations(scenario.buyer, "effective")
    assert [o.seq for o in effective] == [scenario.returns[0], held]
    assert all(isinstance(o, ObligationRow) for o in effective)
    assert reads.balances(scenario.buyer) == _balances(state, scenario.buyer)
    assert reads.balances(scenario.buyer)["effective"] == (0, 8_000)


def test_a_loaded_state_has_the_credit_evidence_indexes(
    alliance: Alliance, busy: tuple[Busy, State, Reads]
) -> None:
    """A writer starting from the sealed projections can judge credit evidence as the
    writer that wrote them: the indexes come out as a replay builds them."""
    _, state, _ = busy
    with alliance.engine.connect() as connection:
        sealer = alliance.sequencer.sealer_in(connection)
        size = store.head_size(connection)
        loaded = projections.load_state(connection, sealer, size).state
    assert loaded.rejections and loaded.resolutions and loaded.evidence_notices
    for index in ("rejections", "resolutions", "evidence_notices", "member_penalties"):
        assert getattr(loaded, index) == getattr(state, index), index
    assert loaded.all_tables() == state.all_tables()
