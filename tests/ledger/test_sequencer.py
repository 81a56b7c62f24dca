"""The sequencer against a real database (SQLite and PostgreSQL): gapless seqs,
idempotent resubmission, refusals that consume nothing, group-committed batches with one
checkpoint each, and projections equal to a replay of the log."""

from __future__ import annotations

import copy
from collections.abc import Callable
from concurrent.futures import Future
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine

from ledger import merkle, projections, store, verifying
from ledger.app import Ledger
from ledger.sequencer import Appended, _await_verdicts, _Verification, replay
from ledger.state import State
from ops.world import EntryFactory, entry_time, genesis_submission
from schemas.entry import format_utc, parse_record
from schemas.errors import (
    AllianceError,
    ConflictError,
    LimitError,
    MalformedError,
    PolicyError,
    RejectedError,
    SignatureError,
    UnknownPrincipalError,
)
from schemas.limits import (
    PARALLEL_VERIFY_MIN_ENTRIES,
    STEAL_BACKLOG_MIN_CHUNKS,
    VERIFY_CHUNK_ENTRIES,
)
from signing.entry import sign_entry, submitted
from signing.keys import PrivateKey
from tests.conftest import Alliance
from tests.dbtools import Snapshot, check_log, naive_root, snapshot
from tests.ledger.builders import one_item_return


def appended(result: Appended | AllianceError) -> Appended:
    assert isinstance(result, Appended), result
    return result


def assert_unchanged(before: Snapshot, engine: Engine) -> None:
    """Log size, entries, checkpoints, tiles, cosignatures and every projection table."""
    after = snapshot(engine)
    assert after.head == before.head
    assert after.latest == before.latest
    assert after.checkpoints == before.checkpoints
    assert after.entries == before.entries
    assert after.tiles == before.tiles
    assert after.cosignatures == before.cosignatures
    assert after.projections == before.projections


def resign(alliance: Alliance, document: dict[str, Any], signer: str = "region:31") -> None:
    document["signatures"] = [sign_entry(document["entry"], alliance.ring.keys[signer])]


# --- appending ----------------------------------------------------------------------------


def test_logged_never_decreases_when_the_clock_steps_back(alliance: Alliance) -> None:
    """A clock that steps back (NTP, a VM restore) is held at the last logged time: a
    business day's cutoff is read from ``logged``, so it must never decrease along seq."""
    start = alliance.clock()
    moments = [start + timedelta(seconds=1)]
    writer = Ledger(alliance.engine, alliance.ring.keys["operator"], lambda: moments[-1]).writer
    first = writer.submit(alliance.enroll_doc()).seq
    moments.append(start - timedelta(minutes=5))  # the clock steps back five minutes
    second = writer.submit(alliance.enroll_doc()).seq
    moments.append(start + timedelta(seconds=2))  # and forward again
    third = writer.submit(alliance.enroll_doc()).seq
    entries = snapshot(alliance.engine).entries
    logged = [parse_record(entries[seq].leaf)[1].logged for seq in (first, second, third)]
    assert logged == [
        format_utc(start + timedelta(seconds=1)),
        format_utc(start + timedelta(seconds=1)),  # held, not five minutes back
        format_utc(start + timedelta(seconds=2)),
    ]
    check_log(alliance.engine)


def test_seqs_are_gapless_from_zero_with_one_checkpoint_per_append(alliance: Alliance) -> None:
    seqs = []
    for _ in range(12):
        alliance.clock.advance(seconds=7)
        result = alliance.sequencer.submit(alliance.enroll_doc())
        assert not result.duplicate
        seqs.append(result.seq)
    assert seqs == list(range(1, 13))
    snap = snapshot(alliance.engine)
    assert [checkpoint.size for checkpoint in snap.checkpoints] == list(range(1, 14))
    # The record carries the seq, the log clock and the exact submission.
    _, model = parse_record(snap.entries[5].leaf)
    assert model.seq == 5
    assert model.logged == format_utc(alliance.clock.now - timedelta(seconds=7 * 7))
    assert snap.entries[5].leaf_hash == merkle.leaf_hash(snap.entries[5].leaf)
    check_log(alliance.engine)


def test_a_new_sequencer_and_a_second_writer_continue_the_same_log(alliance: Alliance) -> None:
    other = Ledger(alliance.engine, alliance.ring.keys["operator"], alliance.clock).writer
    seqs = []
    for index in range(6):
        writer = other if index % 2 else alliance.sequencer
        seqs.append(writer.submit(alliance.enroll_doc()).seq)
    assert seqs == list(range(1, 7))
    restarted = Ledger(alliance.engine, alliance.ring.keys["operator"], alliance.clock).writer
    assert restarted.submit(alliance.enroll_doc()).seq == 7
    assert restarted.state().size == 8
    check_log(alliance.engine)


def test_resubmitting_the_same_document_returns_its_seq_and_writes_nothing(
    alliance: Alliance,
) -> None:
    document = alliance.enroll_doc()
    first = alliance.sequencer.submit(document)
    alliance.sequencer.submit(alliance.enroll_doc())
    before = snapshot(alliance.engine)

    again = alliance.sequencer.submit(copy.deepcopy(document))
    assert again == Appended(first.seq, first.leaf_hash, duplicate=True)
    # Another process (a fresh sequencer) answers the same.
    fresh = Ledger(alliance.engine, alliance.ring.keys["operator"], alliance.clock).writer
    assert fresh.submit(document) == again
    assert_unchanged(before, alliance.engine)


def test_a_duplicate_inside_one_batch_gets_the_seq_of_its_first_copy(alliance: Alliance) -> None:
    document = alliance.enroll_doc()
    results = alliance.sequencer.submit_many([document, alliance.enroll_doc(), document])
    first, second, third = (appended(result) for result in results)
    assert (first.seq, second.seq) == (1, 2)
    assert third == Appended(1, first.leaf_hash, duplicate=True)
    assert snapshot(alliance.engine).head == 3


def test_the_same_id_with_other_bytes_is_a_conflict(alliance: Alliance) -> None:
    document = alliance.enroll_doc()
    seq = alliance.sequencer.submit(document).seq
    before = snapshot(alliance.engine)

    altered = copy.deepcopy(document)
    altered["entry"]["body"]["member"]["name"] = "someone else"
    resign(alliance, altered)
    with pytest.raises(ConflictError) as caught:
        alliance.sequencer.submit(altered)
    assert caught.value.seq == seq
    assert_unchanged(before, alliance.engine)


# --- refusals --------------------------------------------------------------------------------


def bad_shape(alliance: Alliance) -> Any:
    document = alliance.enroll_doc()
    del document["signatures"]
    return document


def not_an_object(alliance: Alliance) -> Any:
    return [alliance.enroll_doc()]


def unknown_envelope_field(alliance: Alliance) -> Any:
    document = alliance.enroll_doc()
    document["entry"]["extra"] = 1
    return document


def bad_body_shape(alliance: Alliance) -> Any:
    document = alliance.enroll_doc()
    document["entry"]["body"]["member"]["stores"] = "S1"
    resign(alliance, document)
    return document


def float_amount(alliance: Alliance) -> Any:
    seller = alliance.enroll_doc()["entry"]["body"]["member"]["id"]
    signer = alliance.new_uscc()
    body = one_item_return(seller, entry_time(alliance.clock()))
    document = submitted(
        alliance.factory.entry("return.recorded", signer, body, alliance.clock()),
        alliance.ring.ensure(signer),
    )
    # Signed with integers (canonical() refuses floats), then the amount turned float.
    document["entry"]["body"]["receipt"]["amount_fen"] = 10_000.0
    return document


def float_in_member(alliance: Alliance) -> Any:
    document = alliance.enroll_doc()
    document["entry"]["body"]["member"]["commitment"]["return_days"] = 7.0
    return document


def bad_signature(alliance: Alliance) -> Any:
    document = alliance.enroll_doc()
    sig = document["signatures"][0]["sig"]
    middle = len(sig) // 2
    document["signatures"][0]["sig"] = (
        sig[:middle] + ("A" if sig[middle] != "A" else "B") + sig[middle + 1 :]
    )
    return document


def signature_over_other_bytes(alliance: Alliance) -> Any:
    document = alliance.enroll_doc()
    document["entry"]["body"]["member"]["name"] = "changed after signing"
    return document


def unknown_key(alliance: Alliance) -> Any:
    document = alliance.enroll_doc()
    document["signatures"] = [sign_entry(document["entry"], PrivateKey.from_seed(b"stranger"))]
    return document


def wrong_signer_key(alliance: Alliance) -> Any:
    document = alliance.enroll_doc()  # signer region:31, signed by region:32's key
    resign(alliance, document, "region:32")
    return document


def extra_signer(alliance: Alliance) -> Any:
    document = alliance.enroll_doc()
    document["signatures"].append(sign_entry(document["entry"], alliance.ring.keys["operator"]))
    return document


def wrong_region(alliance: Alliance) -> Any:
    document = alliance.enroll_doc(region="32")
    document["entry"]["signer"] = "region:31"
    resign(alliance, document)
    return document


def unknown_principal(alliance: Alliance) -> Any:
    stranger = alliance.new_uscc()
    alliance.ring.ensure(stranger)
    body = {"member": stranger, "reason": "business_closed"}
    return alliance.factory.signed(
        alliance.ring, "member.withdrawn", stranger, body, alliance.clock()
    )


def time_ahead(alliance: Alliance) -> Any:
    document = alliance.enroll_doc()
    document["entry"]["time"] = entry_time(alliance.clock() + timedelta(seconds=601))
    resign(alliance, document)
    return document


def time_behind(alliance: Alliance) -> Any:
    document = alliance.enroll_doc()
    document["entry"]["time"] = entry_time(alliance.clock() - timedelta(hours=2))
    resign(alliance, document)
    return document


def time_without_offset(alliance: Alliance) -> Any:
    document = alliance.enroll_doc()
    document["entry"]["time"] = "2026-11-23T10:00:00"
    resign(alliance, document)
    return document


def unknown_kind(alliance: Alliance) -> Any:
    document = alliance.enroll_doc()
    document["entry"]["kind"] = "member.promoted"
    resign(alliance, document)
    return document


def oversize(alliance: Alliance) -> Any:
    return alliance.enroll_doc(stores=1200)


def second_genesis(alliance: Alliance) -> Any:
    return genesis_submission(alliance.config, alliance.ring, EntryFactory(), alliance.clock())


def enrolled_twice(alliance: Alliance) -> Any:
    document = alliance.enroll_doc()
    member = document["entry"]["body"]["member"]["id"]
    alliance.sequencer.submit(document)
    twice = alliance.enroll_doc()
    twice["entry"]["body"]["member"] = copy.deepcopy(document["entry"]["body"]["member"])
    assert twice["entry"]["body"]["member"]["id"] == member
    resign(alliance, twice)
    return twice


REFUSALS: list[tuple[Callable[[Alliance], Any], type[RejectedError], str]] = [
    (bad_shape, MalformedError, "signatures"),
    (not_an_object, MalformedError, "JSON object"),
    (unknown_envelope_field, MalformedError, "entry.extra"),
    (bad_body_shape, MalformedError, "stores"),
    (float_amount, MalformedError, "amount_fen"),
    (float_in_member, MalformedError, "return_days"),
    (bad_signature, SignatureError, "does not verify"),
    (signature_over_other_bytes, SignatureError, "does not verify"),
    (unknown_key, SignatureError, "not a key of this log"),
    (wrong_signer_key, SignatureError, "not a required signer"),
    (extra_signer, SignatureError, "not a required signer"),
    (wrong_region, PolicyError, "must be enrolled by region:32"),
    (unknown_principal, UnknownPrincipalError, "not an enrolled member"),
    (time_ahead, PolicyError, "from the log clock"),
    (time_behind, PolicyError, "from the log clock"),
    (time_without_offset, MalformedError, "time"),
    (unknown_kind, MalformedError, "kind"),
    (oversize, LimitError, "at most"),
    (second_genesis, PolicyError, "already has its genesis"),
    (enrolled_twice, PolicyError, "already enrolled"),
]


@pytest.mark.parametrize(
    ("build", "error", "fragment"), REFUSALS, ids=[build.__name__ for build, *_ in REFUSALS]
)
def test_a_refused_submission_changes_nothing_and_consumes_no_seq(
    alliance: Alliance,
    build: Callable[[Alliance], Any],
    error: type[RejectedError],
    fragment: str,
) -> None:
    alliance.sequencer.submit(alliance.enroll_doc())
    document = build(alliance)
    before = snapshot(alliance.engine)

    with pytest.raises(RejectedError) as caught:
        alliance.sequencer.submit(document)
    assert type(caught.value) is error, caught.value
    assert fragment in str(caught.value), caught.value
    assert_unchanged(before, alliance.engine)
    # The same refusal from a fresh sequencer (no in-memory state yet).
    fresh = Ledger(alliance.engine, alliance.ring.keys["operator"], alliance.clock).writer
    [result] = fresh.submit_many([document])
    assert type(result) is error, result
    assert_unchanged(before, alliance.engine)
    # The next valid entry takes the very next seq.
    assert alliance.sequencer.submit(alliance.enroll_doc()).seq == before.head
    check_log(alliance.engine)


def test_a_mixed_batch_appends_only_the_good_ones_gaplessly(alliance: Alliance) -> None:
    alliance.sequencer.submit(alliance.enroll_doc())
    before = snapshot(alliance.engine)
    plan: list[tuple[Any, type[RejectedError] | None]] = []
    for index, (build, error, _) in enumerate(REFUSALS):
        if build is enrolled_twice:
            continue  # it appends while it builds
        plan.append((alliance.enroll_doc(), None))
        plan.append((build(alliance), error))
        if index % 3 == 0:
            plan.append((alliance.enroll_doc(), None))
    documents = [document for document, _ in plan]

    results = alliance.sequencer.submit_many(documents)

    expected_seq = before.head
    for (_, error), result in zip(plan, results, strict=True):
        if error is None:
            assert appended(result).seq == expected_seq
            assert not appended(result).duplicate
            expected_seq += 1
        else:
            assert type(result) is error, result
    after = snapshot(alliance.engine)
    good = sum(1 for _, error in plan if error is None)
    assert after.head == before.head + good == expected_seq
    # One transaction, one checkpoint.
    assert [c.size for c in after.checkpoints] == [c.size for c in before.checkpoints] + [
        after.head
    ]
    check_log(alliance.engine)


def test_each_batch_writes_one_checkpoint_whose_root_is_recomputable(alliance: Alliance) -> None:
    sizes = [1]
    for batch in (1, 2, 253, 1, 300, 5):  # crosses the first and second full tiles
        alliance.clock.advance(seconds=30)
        results = alliance.sequencer.submit_many([alliance.enroll_doc() for _ in range(batch)])
        seqs = [appended(result).seq for result in results]
        assert seqs == list(range(sizes[-1], sizes[-1] + batch))
        sizes.append(sizes[-1] + batch)
        with alliance.engine.connect() as connection:
            latest = store.latest_checkpoint(connection)
            assert latest is not None
            assert latest.size == sizes[-1] == store.head_size(connection)
            assert merkle.root(latest.size, store.DbTiles(connection)) == latest.root
    snap = snapshot(alliance.engine)
    assert [c.size for c in snap.checkpoints] == sizes
    assert naive_root([entry.leaf for entry in snap.entries]) == snap.latest.root
    assert check_log(alliance.engine).checkpoint_sizes == sizes


# --- projections -------------------------------------------------------------------------------


def _grow_varied_log(alliance: Alliance) -> None:
    """Enrolments in every region, status changes, key rotations, a return with its
    endorsements: rows in most projection tables."""
    members: dict[str, list[str]] = {code: [] for code in ("31", "32", "33", "34")}
    for round_ in range(15):
        alliance.clock.advance(minutes=3)
        documents = []
        for code, enrolled in members.items():
            document = alliance.enroll_doc(region=code, stores=1 + round_ % 3)
            enrolled.append(document["entry"]["body"]["member"]["id"])
            documents.append(document)
        for result in alliance.sequencer.submit_many(documents):
            appended(result)
    ring, factory, now = alliance.ring, alliance.factory, alliance.clock()

    def region_signed(code: str, kind: str, body: dict[str, Any]) -> Any:
        return factory.signed(ring, kind, f"region:{code}", body, now)

    changes = [
        region_signed(
            "31", "member.suspended", {"member": members["31"][0], "reason": "inspection"}
        ),
        region_signed(
            "31", "member.reinstated", {"member": members["31"][0], "reason": "inspection_passed"}
        ),
        region_signed(
            "32", "member.withdrawn", {"member": members["32"][1], "reason": "member_request"}
        ),
        region_signed(
            "33",
            "member.keys_changed",
            {"member": members["33"][2], "keys": [ring.rotate(members["33"][2], 2).public.wire()]},
        ),
    ]
    for result in alliance.sequencer.submit_many(changes):
        appended(result)
    seller, buyer = members["31"][3], members["32"][3]
    now = alliance.clock.advance(minutes=1)
    body = one_item_return(seller, entry_time(now))
    refund = factory.signed(ring, "return.recorded", buyer, body, now)
    target = alliance.sequencer.submit(refund).seq
    approvals = [
        factory.signed(
            ring,
            "endorsement",
            f"region:{code}",
            {"targets": [target], "decision": "approve", "reason": ""},
            now,
        )
        for code in ("31", "32")
    ]
    for result in alliance.sequencer.submit_many(approvals):
        appended(result)


def test_incremental_projections_equal_a_replay_of_the_log(alliance: Alliance) -> None:
    _grow_varied_log(alliance)
    snap = snapshot(alliance.engine)
    state = State()
    replay(state, iter(snap.entries))
    assert state.size == snap.head
    assert snap.projections == projections.state_rows(state)
    assert snap.projections["obligations"], "the return created an obligation"
    assert len(snap.projections["members"]) == 60
    check_log(alliance.engine)


def test_rebuild_reports_identical_projections_after_many_entries(alliance: Alliance) -> None:
    _grow_varied_log(alliance)
    before = snapshot(alliance.engine)
    report = alliance.ledger.rebuild()
    assert report.identical is True
    assert report.differing_tables == []
    assert report.entries == before.head
    after = snapshot(alliance.engine)
    assert after.projections == before.projections
    assert after.entries == before.entries and after.checkpoints == before.checkpoints
    # The sequencer goes on from the rebuilt tables.
    assert alliance.sequencer.submit(alliance.enroll_doc()).seq == before.head
    assert alliance.ledger.rebuild().identical is True


def test_a_large_batch_verified_in_the_worker_refuses_exactly_the_bad_signature(
    alliance: Alliance,
) -> None:
    """Batches of PARALLEL_VERIFY_MIN_ENTRIES or more have their signatures checked in a
    worker process while this thread admits: a bad signature in the middle is refused with
    the same error as the serial path, and only it."""
    documents = [alliance.enroll_doc() for _ in range(PARALLEL_VERIFY_MIN_ENTRIES + 100)]
    bad = 300
    signature = documents[bad]["signatures"][0]["sig"]
    documents[bad]["signatures"][0]["sig"] = ("A" if signature[0] != "A" else "B") + signature[1:]
    head = snapshot(alliance.engine).head
    results = alliance.sequencer.submit_many(documents)
    assert isinstance(results[bad], SignatureError)
    seqs = [getattr(result, "seq", None) for result in results]
    assert seqs[:bad] == list(range(head, head + bad))
    assert seqs[bad + 1 :] == list(range(head + bad, head + len(documents) - 1))
    serial = alliance.sequencer.submit_many([documents[bad]])[0]
    assert type(serial) is type(results[bad]) and str(serial) == str(results[bad])
    check_log(alliance.engine)


def test_chunks_the_worker_has_not_started_are_taken_back_and_checked_by_admission(
    alliance: Alliance, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A chunk the worker has not started when admission needs it is taken back and
    admit() checks its signatures itself: a worker that never starts one costs no wait,
    and a bad signature in a chunk taken back is refused exactly as the worker would."""
    taken: list[Future[Any]] = []

    def never_started(*_: object) -> Future[Any]:
        taken.append(Future())  # pending: the worker never picks it up
        return taken[-1]

    monkeypatch.setattr(verifying, "submit", never_started)
    # Two chunks (VERIFY_CHUNK_ENTRIES and a few more), each taken back.
    documents = [alliance.enroll_doc() for _ in range(VERIFY_CHUNK_ENTRIES + 8)]
    bad = len(documents) - 3  # in the last chunk, the first one taken back
    signature = documents[bad]["signatures"][0]["sig"]
    documents[bad]["signatures"][0]["sig"] = ("A" if signature[0] != "A" else "B") + signature[1:]
    head = snapshot(alliance.engine).head
    results = alliance.sequencer.submit_many(documents)
    assert len(taken) == 2
    assert all(future.cancelled() for future in taken)
    assert isinstance(results[bad], SignatureError)
    seqs = [getattr(result, "seq", None) for result in results]
    assert seqs[:bad] == list(range(head, head + bad))
    assert seqs[bad + 1 :] == list(range(head + bad, head + len(documents) - 1))
    check_log(alliance.engine)


class _DoneOnSecondLook(Future[Any]):
    """A running chunk that the worker finishes while the writer first looks away."""

    def __init__(self) -> None:
        super().__init__()
        self.set_running_or_notify_cancel()
        self.looks = 0

    def done(self) -> bool:
        self.looks += 1
        if self.looks > 1 and not super().done():
            self.set_result(([], []))
        return super().done()


def _queued() -> Future[Any]:
    return Future()  # not started: the worker has not taken it from its queue


@pytest.mark.parametrize("backlog", [STEAL_BACKLOG_MIN_CHUNKS - 1, STEAL_BACKLOG_MIN_CHUNKS + 1])
def test_the_writer_takes_back_the_last_chunk_only_behind_a_backlog(backlog: int) -> None:
    """While the worker is on the chunk admission needs, the writer takes back the last
    unstarted chunk only if STEAL_BACKLOG_MIN_CHUNKS or more wait behind it (the worker
    is slower than admission); with fewer it waits, which costs less than checking a
    chunk itself."""
    pending = _Verification(_DoneOnSecondLook(), [], [])
    later = [_Verification(_queued(), [], []) for _ in range(backlog)]
    _await_verdicts(pending, [pending, *later])
    assert pending.resolved
    stolen = [chunk.future.cancelled() for chunk in later]
    if backlog < STEAL_BACKLOG_MIN_CHUNKS:
        assert stolen == [False] * backlog
    else:
        assert stolen == [False] * (backlog - 1) + [True]  # the far end, and only it


def test_a_dead_verification_worker_fails_no_batch(alliance: Alliance) -> None:
    """If the worker process dies, admission checks the signatures itself."""
    pool = verifying.pool()
    assert pool is not None
    verifying.warm_up()
    for process in list(pool._processes.values()):  # kill the worker
        process.kill()
        process.join()
    documents = [alliance.enroll_doc() for _ in range(PARALLEL_VERIFY_MIN_ENTRIES)]
    head = snapshot(alliance.engine).head
    results = alliance.sequencer.submit_many(documents)
    assert [getattr(r, "seq", r) for r in results] == list(range(head, head + len(documents)))
    check_log(alliance.engine)
