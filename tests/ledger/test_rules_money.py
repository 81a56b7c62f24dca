"""Rules of return.recorded, advance.paid, endorsement, claim.disputed, dispute.resolved."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.kinds.money import OBLIGATION_STATUSES, postings_of
from ledger.rows import (
    CaseRow,
    CreditRow,
    DisputeRow,
    EndorsableRow,
    EndorsementDueRow,
    EndorsementRow,
    ExclusionRow,
    ObligationRow,
    PostingRow,
    ReceiptRow,
    ReturnRow,
)
from schemas.errors import MalformedError, PolicyError, SignatureError, UnknownPrincipalError
from schemas.identifiers import normalise_receipt_number, receipt_ref
from tests.ledger.builders import (
    LedgerWorld,
    advance_body,
    decisions,
    due_regions,
    endorse,
    endorsement,
    obligation,
    postings_by_seq,
    receipt,
    refused,
    return_body,
)


@dataclass
class Alliance:
    world: LedgerWorld
    seller: str  # merchant A, region 31, store S1, 7-day window
    buyer: str  # merchant B, region 32, store S1
    neighbour: str  # another merchant of region 31
    fund: str  # advance fund, region 31
    platform: str  # platform, region 33


@pytest.fixture
def al() -> Alliance:
    world = LedgerWorld()
    return Alliance(
        world=world,
        seller=world.enroll("31", stores=[("S1", "310101"), ("S2", "310118")], excluded=["toys"]),
        buyer=world.enroll("32", stores=[("S1", "320101")]),
        neighbour=world.enroll("31", stores=[("N1", "310104")]),
        fund=world.enroll("31", kind="fund", stores=[]),
        platform=world.enroll("33", kind="platform", stores=[]),
    )


def record_return(al: Alliance, **fields: object) -> int:
    body = return_body(al.world, al.seller, **fields)  # type: ignore[arg-type]
    return al.world.submit(al.world.sign("return.recorded", al.buyer, body))


def sign_return(al: Alliance, signer: str | None = None, **fields: object) -> dict[str, object]:
    body = return_body(al.world, al.seller, **fields)  # type: ignore[arg-type]
    return al.world.sign("return.recorded", signer or al.buyer, body)


def record_advance(al: Alliance, case: str = "CASE-1", amount_fen: int = 50_000) -> int:
    body = advance_body(al.seller, case, amount_fen, basis="civil_code_524")
    return al.world.submit(al.world.sign("advance.paid", al.fund, body))


def dispute(al: Alliance, target: int, signer: str | None = None) -> int:
    body = {"target": target, "reason": "not_our_sale"}
    return al.world.submit(al.world.sign("claim.disputed", signer or al.seller, body))


def resolve(
    al: Alliance, dispute_seq: int, outcome: str, region: str = "31", **fields: object
) -> int:
    """The debtor's region (``region``) resolves, co-signed by the creditor's region when
    it is another one."""
    return al.world.submit(sign_resolution(al, dispute_seq, outcome, region, **fields))


def sign_resolution(
    al: Alliance, dispute_seq: int, outcome: str, region: str = "31", **fields: object
) -> dict[str, object]:
    body = {"dispute": dispute_seq, "outcome": outcome, **fields}
    state = al.world.state
    row = state.disputes.get(dispute_seq)
    signers = [f"region:{region}"]
    if row is not None:
        claim = state.obligations.get(row.target)
        assert claim is not None
        creditor = state.member(claim.creditor)
        assert creditor is not None
        if f"region:{creditor.region}" not in signers:
            signers.append(f"region:{creditor.region}")
    return al.world.sign_by("dispute.resolved", signers, body)


# --- return.recorded: the happy paths ------------------------------------------------------


def test_cross_region_return_creates_obligation_postings_and_endorsable(al: Alliance) -> None:
    seq = record_return(al, refund_fen=6_000)
    state = al.world.state
    ref = receipt_ref(al.seller, "S1", "R-0001")  # the log holds the ref, never the number
    row = state.receipts.get(al.seller, "S1", ref)
    assert isinstance(row, ReceiptRow)
    assert (row.amount_fen, row.refunded_fen, row.returns) == (10_000, 6_000, 1)
    assert state.receipt_returns.get(seq) == ReturnRow(seq, al.seller, "S1", ref, 6_000, "live")
    assert state.endorsables.get(seq) == EndorsableRow(seq, "return", "pending")
    assert state.endorsement_dues.get(seq, "31") == EndorsementDueRow(seq, "31")
    assert due_regions(state, seq) == ["31", "32"]
    assert obligation(al.world, seq) == ObligationRow(
        seq, "return", al.seller, al.buyer, 6_000, "pending", None, state.last_logged or "", None
    )
    assert sorted(postings_by_seq(state)[seq], key=lambda p: p.amount_fen) == [
        PostingRow(seq, f"{al.seller}:payable", -6_000),
        PostingRow(seq, f"{al.buyer}:receivable", 6_000),
    ]


def test_same_member_return_has_endorsable_but_no_obligation(al: Alliance) -> None:
    body = return_body(al.world, al.seller, accepted_store="S2")
    seq = al.world.submit(al.world.sign("return.recorded", al.seller, body))
    state = al.world.state
    assert due_regions(state, seq) == ["31"]
    assert state.obligations.get(seq) is None
    assert seq not in postings_by_seq(state)


def test_partial_returns_on_one_receipt_add_up_to_its_amount(al: Alliance) -> None:
    record_return(al, refund_fen=6_000)
    record_return(al, refund_fen=4_000)
    row = receipt(al.world.state, al.seller, "R-0001")
    assert row is not None
    assert (row.refunded_fen, row.returns) == (10_000, 2)


def test_longer_commitment_allows_older_purchase(al: Alliance) -> None:
    patient = al.world.enroll("31", return_days=15)
    al.world.link(al.buyer, patient)
    body = return_body(al.world, patient, purchased_days_ago=14)
    assert al.world.submit(al.world.sign("return.recorded", al.buyer, body)) > 0


def test_local_negative_list_is_the_sellers_region(al: Alliance) -> None:
    jiangsu_seller = al.world.enroll("32", stores=[("J1", "320102")])
    al.world.link(al.neighbour, jiangsu_seller)
    body = return_body(al.world, jiangsu_seller, store="J1", categories=("luxury_goods",))
    # luxury goods are on Shanghai's list, not Jiangsu's: a Shanghai store may take them back
    shanghai_acceptor = al.neighbour
    body["accepted_store"] = "N1"
    assert al.world.submit(al.world.sign("return.recorded", shanghai_acceptor, body)) > 0


# --- return.recorded: refusals -------------------------------------------------------------


def test_return_signed_by_a_fund_is_refused(al: Alliance) -> None:
    refused(al.world, sign_return(al, signer=al.fund), PolicyError, "accepting merchant")


def test_return_signed_by_a_suspended_merchant_is_refused(al: Alliance) -> None:
    body = {"member": al.buyer, "reason": "inspection"}
    al.world.submit(al.world.sign("member.suspended", "region:32", body))
    refused(al.world, sign_return(al), UnknownPrincipalError, "suspended")


def test_accepted_store_must_be_the_acceptors(al: Alliance) -> None:
    error = refused(
        al.world, sign_return(al, accepted_store="S2"), PolicyError, "store S2", "accepting"
    )
    assert error.field == "body.accepted_store"


def test_seller_must_be_enrolled(al: Alliance) -> None:
    stranger = al.world.new_uscc("31")
    body = return_body(al.world, stranger)
    sub = al.world.sign("return.recorded", al.buyer, body)
    refused(al.world, sub, PolicyError, stranger, "not an enrolled member")


def test_seller_must_be_a_merchant(al: Alliance) -> None:
    body = return_body(al.world, al.platform)
    sub = al.world.sign("return.recorded", al.buyer, body)
    refused(al.world, sub, PolicyError, "not a merchant")


def test_a_withdrawn_seller_is_refused(al: Alliance) -> None:
    al.world.submit(
        al.world.sign(
            "member.withdrawn", "region:31", {"member": al.seller, "reason": "member_request"}
        )
    )
    error = refused(al.world, sign_return(al), PolicyError, "seller", "withdrawn")
    assert error.field == "body.receipt.merchant"


def test_receipt_store_must_be_the_sellers(al: Alliance) -> None:
    error = refused(al.world, sign_return(al, store="N1"), PolicyError, "store N1", "seller")
    assert error.field == "body.receipt.store"


def test_purchase_in_the_future_is_refused(al: Alliance) -> None:
    sub = sign_return(al, purchased_days_ago=-1)
    error = refused(al.world, sub, PolicyError, "after the refund on")
    assert error.field == "body.receipt.purchased"


def test_purchase_outside_the_sellers_window_is_refused(al: Alliance) -> None:
    # Bought Friday 2026-11-13: the window's last day is Friday 11-20, which is a working
    # day, so it ended at 24:00 that day; the refund is on Monday 11-23.
    sub = sign_return(al, purchased="2026-11-13")
    error = refused(al.world, sub, PolicyError, "7-day return window", "24:00 on 2026-11-20")
    assert error.field == "body.receipt.purchased"


@pytest.mark.parametrize(
    ("category", "why"),
    [
        ("fresh_perishable", "excluded from no-reason returns by law"),
        ("toys", "commitment"),
        ("luxury_goods", "region 31's local negative list"),
    ],
)
def test_excluded_categories_are_refused(al: Alliance, category: str, why: str) -> None:
    sub = sign_return(al, categories=("apparel", category))
    error = refused(al.world, sub, PolicyError, category, why)
    assert error.field == "body.items.1.category"


def test_items_must_add_up_to_the_refund(al: Alliance) -> None:
    sub = sign_return(al, refund_fen=6_000)
    sub["entry"]["body"]["items"][0]["refund_fen"] = 5_999  # type: ignore[index]
    sub = al.world.sign("return.recorded", al.buyer, sub["entry"]["body"])  # type: ignore[index]
    refused(al.world, sub, PolicyError, "items refund 5999 fen")


def test_refund_above_receipt_amount_is_refused(al: Alliance) -> None:
    sub = sign_return(al, amount_fen=5_000, refund_fen=6_000)
    refused(al.world, sub, PolicyError, "exceeds the receipt amount")


def test_receipt_is_never_refunded_beyond_its_amount(al: Alliance) -> None:
    record_return(al, refund_fen=6_000)
    error = refused(al.world, sign_return(al, refund_fen=4_001), PolicyError, "already refunded")
    assert error.field == "body.refund_fen"


def test_later_return_must_state_the_same_amount(al: Alliance) -> None:
    record_return(al, refund_fen=1_000)
    sub = sign_return(al, amount_fen=20_000, refund_fen=1_000)
    refused(al.world, sub, PolicyError, "first recorded with amount 10000")


def test_later_return_must_state_the_same_purchase_time(al: Alliance) -> None:
    record_return(al, refund_fen=1_000, purchased_days_ago=2)
    sub = sign_return(al, refund_fen=1_000, purchased_days_ago=3)
    error = refused(al.world, sub, PolicyError, "first recorded as purchased")
    assert error.field == "body.receipt.purchased"


# --- receipts: only live returns count -------------------------------------------------------


def own_return(al: Alliance, **fields: object) -> int:
    """A same-member return (A = B): the seller refunds its own receipt at store S2."""
    body = return_body(al.world, al.seller, accepted_store="S2", **fields)  # type: ignore[arg-type]
    return al.world.submit(al.world.sign("return.recorded", al.seller, body))


def test_rejected_squatter_return_frees_the_receipt_for_the_real_one(al: Alliance) -> None:
    squat = record_return(al, amount_fen=1, refund_fen=1)
    real = {"amount_fen": 10_000, "refund_fen": 6_000}
    body = return_body(al.world, al.seller, accepted_store="S2", **real)  # type: ignore[arg-type]
    sub = al.world.sign("return.recorded", al.seller, body)
    refused(al.world, sub, PolicyError, "first recorded with amount 1 fen")  # still pending
    endorse(al.world, "31", [squat], "reject")
    state = al.world.state
    ref = receipt_ref(al.seller, "S1", "R-0001")
    assert receipt(state, al.seller, "R-0001") == ReceiptRow(al.seller, "S1", ref, None, None, 0, 0)
    assert state.receipt_returns.get(squat).status == "void"
    seq = al.world.submit(sub)
    row = receipt(state, al.seller, "R-0001")
    assert row is not None
    assert (row.amount_fen, row.refunded_fen, row.returns) == (10_000, 6_000, 1)
    assert row.purchased == body["receipt"]["purchased"]
    assert state.receipt_returns.get(seq).status == "live"


def test_squatter_return_can_take_a_new_purchase_time_once_rejected(al: Alliance) -> None:
    squat = record_return(al, purchased_days_ago=1, refund_fen=1)
    real = return_body(al.world, al.seller, accepted_store="S2", purchased_days_ago=3)
    sub = al.world.sign("return.recorded", al.seller, real)
    refused(al.world, sub, PolicyError, "first recorded as purchased")
    endorse(al.world, "32", [squat], "reject")
    seq = al.world.submit(sub)
    row = receipt(al.world.state, al.seller, "R-0001")
    assert row is not None
    assert (row.purchased, row.returns) == (real["receipt"]["purchased"], 1)
    assert al.world.state.receipt_returns.get(seq).status == "live"


def test_upheld_dispute_frees_the_refund_it_voided(al: Alliance) -> None:
    first = record_return(al, refund_fen=6_000)
    second = record_return(al, refund_fen=4_000)
    endorse(al.world, "31", [first, second])
    endorse(al.world, "32", [first, second])
    resolve(al, dispute(al, second), "upheld")
    row = receipt(al.world.state, al.seller, "R-0001")
    assert row is not None
    assert (row.amount_fen, row.refunded_fen, row.returns) == (10_000, 6_000, 1)
    refused(al.world, sign_return(al, refund_fen=4_001), PolicyError, "already refunded 6000")
    assert record_return(al, refund_fen=4_000) > second


def test_upheld_dispute_on_the_only_return_frees_the_receipt(al: Alliance) -> None:
    seq = record_return(al, refund_fen=10_000)
    resolve(al, dispute(al, seq), "upheld")
    assert receipt(al.world.state, al.seller, "R-0001").returns == 0
    assert record_return(al, amount_fen=12_000, refund_fen=12_000) > seq


def test_pending_and_approved_returns_keep_counting(al: Alliance) -> None:
    pending = record_return(al, refund_fen=6_000)
    approved = own_return(al, refund_fen=3_000)
    endorse(al.world, "31", [approved])
    assert al.world.state.endorsables.get(approved).status == "approved"
    assert al.world.state.endorsables.get(pending).status == "pending"
    refused(al.world, sign_return(al, refund_fen=1_001), PolicyError, "already refunded 9000")


def test_rejected_same_member_return_stops_counting(al: Alliance) -> None:
    own = own_return(al, refund_fen=10_000)
    refused(al.world, sign_return(al, refund_fen=1), PolicyError, "already refunded 10000")
    endorse(al.world, "31", [own], "reject")
    assert record_return(al, refund_fen=10_000) > own


def test_rejection_and_upheld_dispute_of_one_return_subtract_once(al: Alliance) -> None:
    kept = record_return(al, refund_fen=6_000)
    voided = record_return(al, refund_fen=4_000)
    dispute_seq = dispute(al, voided)
    endorse(al.world, "32", [voided], "reject")
    resolve(al, dispute_seq, "upheld")
    row = receipt(al.world.state, al.seller, "R-0001")
    assert row is not None
    assert (row.refunded_fen, row.returns) == (6_000, 1)
    assert al.world.state.receipt_returns.get(kept).status == "live"


def test_batch_rejection_of_two_returns_on_one_receipt_frees_it(al: Alliance) -> None:
    first = record_return(al, refund_fen=6_000)
    second = record_return(al, refund_fen=4_000)
    endorse(al.world, "32", [first, second], "reject")
    ref = receipt_ref(al.seller, "S1", "R-0001")
    assert receipt(al.world.state, al.seller, "R-0001") == ReceiptRow(
        al.seller, "S1", ref, None, None, 0, 0
    )


def test_case_variants_of_a_number_are_one_receipt(al: Alliance) -> None:
    record_return(al, number="REC-001", refund_fen=6_000)
    for variant in ("rec-001", "Rec-001", "rEC-001"):
        sub = sign_return(al, number=variant, refund_fen=4_001)
        refused(al.world, sub, PolicyError, "already refunded 6000")
    record_return(al, number="rec-001", refund_fen=4_000)
    sub = sign_return(al, number="REC-001", refund_fen=1)
    refused(al.world, sub, PolicyError, "already refunded 10000")
    assert [row.ref for row in al.world.state.receipts.rows()] == [
        receipt_ref(al.seller, "S1", "rec-001")
    ]


@pytest.mark.parametrize(
    ("written", "normal"),
    [
        ("ＲＥＣ-001", "rec-001"),
        ("ＲＥＣ－００１", "rec-001"),
        ("rec-001", "rec-001"),
        ("  REC-001\u3000", "rec-001"),
        ("Straße-1", "strasse-1"),
        ("№１２", "no12"),
    ],
)
def test_receipt_number_normalisation(written: str, normal: str) -> None:
    assert normalise_receipt_number(written) == normal
    assert normalise_receipt_number(normal) == normal


@given(st.text(max_size=20))
def test_receipt_number_normalisation_is_idempotent(text: str) -> None:
    once = normalise_receipt_number(text)
    assert normalise_receipt_number(once) == once


# --- advance.paid --------------------------------------------------------------------------


def test_advance_creates_obligation_from_merchant_to_fund(al: Alliance) -> None:
    seq = record_advance(al)
    state = al.world.state
    assert state.cases.get(al.seller, "CASE-1") == CaseRow(al.seller, "CASE-1", seq, al.fund)
    assert due_regions(state, seq) == ["31"]
    row = obligation(al.world, seq)
    assert (row.kind, row.debtor, row.creditor, row.amount_fen) == (
        "advance",
        al.seller,
        al.fund,
        50_000,
    )
    body = advance_body(al.buyer, "CASE-9", basis="consumer_law_44")
    seq = al.world.submit(al.world.sign("advance.paid", al.platform, body))
    assert due_regions(state, seq) == ["32", "33"]


def test_advance_signed_by_a_merchant_is_refused(al: Alliance) -> None:
    sub = al.world.sign("advance.paid", al.buyer, advance_body(al.seller))
    refused(al.world, sub, PolicyError, "fund or platform")


@pytest.mark.parametrize(
    ("liable", "words"),
    [("platform", "not a merchant"), ("stranger", "not an enrolled member")],
)
def test_advance_liable_must_be_an_enrolled_merchant(al: Alliance, liable: str, words: str) -> None:
    member = al.platform if liable == "platform" else al.world.new_uscc("31")
    sub = al.world.sign("advance.paid", al.fund, advance_body(member))
    assert refused(al.world, sub, PolicyError, words).field == "body.liable"


@pytest.mark.parametrize("status", ["member.suspended", "member.withdrawn"])
def test_advance_recovers_from_a_suspended_or_withdrawn_merchant(al: Alliance, status: str) -> None:
    """Recovery matters most when the merchant was suspended or absconded."""
    reason = "inspection" if status == "member.suspended" else "member_request"
    al.world.submit(al.world.sign(status, "region:31", {"member": al.seller, "reason": reason}))
    seq = record_advance(al)
    claim = obligation(al.world, seq)
    assert (claim.debtor, claim.creditor, claim.status) == (al.seller, al.fund, "pending")


def test_advance_case_is_claimed_once(al: Alliance) -> None:
    seq = record_advance(al)
    sub = al.world.sign("advance.paid", al.fund, advance_body(al.seller, amount_fen=1))
    error = refused(al.world, sub, PolicyError, "CASE-1", f"already claimed at seq {seq}")
    assert error.field == "body.case"


# --- endorsement ---------------------------------------------------------------------------


def test_both_regions_approve_then_obligation_is_effective(al: Alliance) -> None:
    seq = record_return(al)
    decision = endorse(al.world, "31", [seq])
    state = al.world.state
    assert state.endorsements.get(seq, "31") == EndorsementRow(seq, "31", "approve", decision)
    assert state.endorsables.get(seq).status == "pending"
    assert obligation(al.world, seq).status == "pending"
    endorse(al.world, "32", [seq])
    assert decisions(state, seq) == {"31": "approve", "32": "approve"}
    assert state.endorsables.get(seq).status == "approved"
    assert obligation(al.world, seq).status == "effective"


def test_one_rejection_voids_and_later_approval_cannot_revive(al: Alliance) -> None:
    seq = record_return(al)
    endorse(al.world, "32", [seq], "reject")
    assert al.world.state.endorsables.get(seq).status == "rejected"
    assert obligation(al.world, seq).status == "void"
    endorse(al.world, "31", [seq])
    assert decisions(al.world.state, seq) == {"31": "approve", "32": "reject"}
    assert al.world.state.endorsables.get(seq).status == "rejected"
    assert obligation(al.world, seq).status == "void"


def test_batch_endorsement_decides_every_target(al: Alliance) -> None:
    first = record_return(al, number="R-1")
    second = record_return(al, number="R-2")
    advance = record_advance(al)
    endorse(al.world, "31", [first, second, advance])
    assert obligation(al.world, advance).status == "effective"
    assert {obligation(al.world, s).status for s in (first, second)} == {"pending"}


def test_endorsement_by_a_member_is_refused(al: Alliance) -> None:
    seq = record_return(al)
    refused(al.world, endorsement(al.world, al.seller, [seq]), PolicyError, "by a region")


def test_endorsement_by_an_unknown_region_is_refused(al: Alliance) -> None:
    seq = record_return(al)
    al.world.ring.ensure("region:43")
    sub = endorsement(al.world, "region:43", [seq])
    refused(al.world, sub, UnknownPrincipalError, "region:43")


def test_duplicate_targets_are_refused(al: Alliance) -> None:
    seq = record_return(al)
    sub = endorsement(al.world, "region:31", [seq, seq])
    refused(al.world, sub, PolicyError, "listed twice")


@pytest.mark.parametrize(
    ("decision", "reason", "words"),
    [
        ("reject", "", "must state its reason"),
        ("reject", "changed_our_mind", "rejection reason changed_our_mind is not one of"),
        ("approve", "receipt_not_genuine", "an approval states no reason"),
    ],
)
def test_a_reason_is_a_code_of_the_policy(
    al: Alliance, decision: str, reason: str, words: str
) -> None:
    seq = record_return(al)
    sub = endorsement(al.world, "region:31", [seq], decision, reason)
    assert refused(al.world, sub, PolicyError, words).field == "body.reason"


def test_free_text_is_no_reason(al: Alliance) -> None:
    """Free text could carry a consumer's name into a log that can never be erased."""
    seq = record_return(al)
    sub = endorsement(al.world, "region:31", [seq], "reject", "张三 said no")
    assert refused(al.world, sub, MalformedError).field == "body.reason"
    body = {"target": seq, "reason": "the buyer 张三 lied"}
    sub = al.world.sign("claim.disputed", al.seller, body)
    assert refused(al.world, sub, MalformedError).field == "body.reason"
    body = {"target": seq, "reason": "goods_stolen"}
    sub = al.world.sign("claim.disputed", al.seller, body)
    error = refused(al.world, sub, PolicyError, "dispute reason goods_stolen is not one of")
    assert error.field == "body.reason"


def test_target_must_await_endorsement(al: Alliance) -> None:
    seq = record_return(al)
    sub = endorsement(al.world, "region:31", [seq, 1])
    error = refused(al.world, sub, PolicyError, "seq 1 is not an entry awaiting endorsement")
    assert error.field == "body.targets.1"


def test_target_must_touch_the_region(al: Alliance) -> None:
    seq = record_return(al)
    sub = endorsement(al.world, "region:33", [seq])
    refused(al.world, sub, PolicyError, "does not touch region 33")


def test_region_decides_once(al: Alliance) -> None:
    seq = record_return(al)
    endorse(al.world, "31", [seq])
    sub = endorsement(al.world, "region:31", [seq], "reject", "evidence_insufficient")
    refused(al.world, sub, PolicyError, "already decided")


# --- claim.disputed and dispute.resolved ----------------------------------------------------


def test_dispute_holds_then_dismissal_makes_effective(al: Alliance) -> None:
    seq = record_return(al)
    endorse(al.world, "31", [seq])
    dispute_seq = dispute(al, seq)
    assert al.world.state.disputes.get(dispute_seq) == DisputeRow(
        dispute_seq, seq, al.seller, "open", None
    )
    held = obligation(al.world, seq)
    assert (held.status, held.dispute_seq) == ("held", dispute_seq)
    endorse(al.world, "32", [seq])
    assert obligation(al.world, seq).status == "held"  # approval does not release a hold
    resolved = resolve(al, dispute_seq, "dismissed")
    assert al.world.state.disputes.get(dispute_seq) == DisputeRow(
        dispute_seq, seq, al.seller, "dismissed", resolved
    )
    assert obligation(al.world, seq).status == "effective"


def test_dismissal_before_approval_returns_to_pending(al: Alliance) -> None:
    seq = record_advance(al)
    dispute_seq = dispute(al, seq)
    resolve(al, dispute_seq, "dismissed")
    assert obligation(al.world, seq).status == "pending"
    endorse(al.world, "31", [seq])
    assert obligation(al.world, seq).status == "effective"


def test_upheld_dispute_voids_for_good(al: Alliance) -> None:
    seq = record_return(al)
    endorse(al.world, "31", [seq])
    endorse(al.world, "32", [seq])
    dispute_seq = dispute(al, seq)
    resolve(al, dispute_seq, "upheld")
    assert obligation(al.world, seq).status == "void"
    assert al.world.state.disputes.get(dispute_seq).status == "upheld"


def test_rejection_while_held_voids_and_dismissal_keeps_void(al: Alliance) -> None:
    seq = record_return(al)
    dispute_seq = dispute(al, seq)
    endorse(al.world, "32", [seq], "reject")
    assert obligation(al.world, seq).status == "void"
    resolve(al, dispute_seq, "dismissed")
    assert obligation(al.world, seq).status == "void"


def test_dispute_target_must_be_an_obligation(al: Alliance) -> None:
    body = return_body(al.world, al.seller, accepted_store="S2")
    own = al.world.submit(al.world.sign("return.recorded", al.seller, body))
    for target in (own, 1, 999):
        sub = al.world.sign(
            "claim.disputed", al.seller, {"target": target, "reason": "not_our_sale"}
        )
        refused(al.world, sub, PolicyError, f"seq {target} is not an obligation")


def test_only_the_debtor_may_dispute(al: Alliance) -> None:
    seq = record_return(al)
    for signer in (al.buyer, al.neighbour, "region:31"):
        sub = al.world.sign("claim.disputed", signer, {"target": seq, "reason": "not_our_sale"})
        error = refused(al.world, sub, PolicyError, f"only the debtor {al.seller}")
        assert error.field == "signer"


def test_void_obligation_cannot_be_disputed(al: Alliance) -> None:
    seq = record_return(al)
    endorse(al.world, "31", [seq], "reject")
    sub = al.world.sign("claim.disputed", al.seller, {"target": seq, "reason": "not_our_sale"})
    refused(al.world, sub, PolicyError, "is void")


def test_claim_is_disputed_once(al: Alliance) -> None:
    seq = record_return(al)
    first = dispute(al, seq)
    sub = al.world.sign("claim.disputed", al.seller, {"target": seq, "reason": "not_our_sale"})
    refused(al.world, sub, PolicyError, f"already disputed at seq {first}")
    resolve(al, first, "dismissed")
    sub = al.world.sign("claim.disputed", al.seller, {"target": seq, "reason": "not_our_sale"})
    refused(al.world, sub, PolicyError, f"already disputed at seq {first}")


def _effective_return(al: Alliance) -> int:
    seq = record_return(al)
    endorse(al.world, "31", [seq])
    endorse(al.world, "32", [seq])
    assert obligation(al.world, seq).effective == al.world.state.last_logged
    return seq


def test_dispute_after_the_dispute_period_is_refused(al: Alliance) -> None:
    seq = _effective_return(al)
    al.world.tick(days=7)
    al.world.tick(seconds=1)
    sub = al.world.sign("claim.disputed", al.seller, {"target": seq, "reason": "not_our_sale"})
    error = refused(al.world, sub, PolicyError, "7-day dispute period is over", "became effective")
    assert error.field == "body.target"


def test_dispute_on_the_last_day_is_admitted(al: Alliance) -> None:
    seq = _effective_return(al)
    al.world.tick(days=7)
    assert dispute(al, seq) > seq


def test_a_claim_still_awaiting_its_regions_may_be_disputed_any_time(al: Alliance) -> None:
    """The period runs from effectiveness: a claim pending for weeks is still open to it."""
    seq = record_return(al)
    al.world.tick(days=30)
    assert obligation(al.world, seq).effective is None
    assert dispute(al, seq) > seq


def test_resolution_must_name_a_dispute(al: Alliance) -> None:
    seq = record_return(al)
    sub = al.world.sign("dispute.resolved", "region:31", {"dispute": seq, "outcome": "upheld"})
    refused(al.world, sub, PolicyError, f"seq {seq} is not a dispute")


def test_resolution_is_by_the_debtors_region(al: Alliance) -> None:
    dispute_seq = dispute(al, record_return(al))
    body = {"dispute": dispute_seq, "outcome": "upheld"}
    sub = al.world.sign_by("dispute.resolved", ["region:32", "region:31"], body)
    error = refused(al.world, sub, PolicyError, "debtor's region region:31")
    assert error.field == "signer"


def test_resolution_needs_the_creditors_region_too(al: Alliance) -> None:
    """The seller (31) owes the buyer (32): region 31 alone may not judge for its own."""
    dispute_seq = dispute(al, record_return(al))
    body = {"dispute": dispute_seq, "outcome": "upheld"}
    sub = al.world.sign("dispute.resolved", "region:31", body)
    error = refused(al.world, sub, SignatureError, "must also be signed by region:32")
    assert error.field == "signatures"


def test_a_dispute_within_one_region_is_resolved_by_it_alone(al: Alliance) -> None:
    seq = al.world.submit(al.world.sign("return.recorded", al.neighbour, _neighbour_return(al)))
    dispute_seq = dispute(al, seq)
    body = {"dispute": dispute_seq, "outcome": "dismissed"}
    al.world.submit(al.world.sign("dispute.resolved", "region:31", body))
    assert al.world.state.disputes.get(dispute_seq).status == "dismissed"


def _neighbour_return(al: Alliance) -> dict[str, object]:
    """The seller's goods, refunded by its region-31 neighbour at store N1."""
    return return_body(al.world, al.seller, accepted_store="N1", number="R-N")


def test_dispute_is_resolved_once(al: Alliance) -> None:
    dispute_seq = dispute(al, record_return(al))
    resolve(al, dispute_seq, "dismissed")
    sub = sign_resolution(al, dispute_seq, "upheld")
    refused(al.world, sub, PolicyError, "already resolved (dismissed)")


# --- double entry and rebuild ----------------------------------------------------------------


def _busy_ledger(al: Alliance) -> list[int]:
    seqs = [record_return(al, number=f"R-{n}", refund_fen=1_000 + n) for n in range(4)]
    seqs.append(record_advance(al, "CASE-A"))
    endorse(al.world, "31", seqs)
    endorse(al.world, "32", seqs[:2])
    endorse(al.world, "32", seqs[2:3], "reject")
    resolve(al, dispute(al, seqs[3]), "upheld")
    return seqs


def test_postings_sum_to_zero_per_obligation_whatever_its_status(al: Alliance) -> None:
    seqs = _busy_ledger(al)
    postings = postings_by_seq(al.world.state)
    statuses = {obligation(al.world, s).status for s in seqs}
    assert statuses == {"effective", "void"}
    assert sorted(postings) == seqs
    for seq, rows in postings.items():
        assert sum(row.amount_fen for row in rows) == 0
        row = obligation(al.world, seq)
        assert sorted(rows, key=lambda p: p.amount_fen) == [
            PostingRow(seq, f"{row.debtor}:payable", -row.amount_fen),
            PostingRow(seq, f"{row.creditor}:receivable", row.amount_fen),
        ]
        # Every version of the obligation has the same postings: a status change or a
        # dispute never adds, alters or reverses one.
        for status in OBLIGATION_STATUSES:
            later = row._replace(status=status, dispute_seq=seq + 1)
            assert list(postings_of(later)) == list(postings_of(row))


def test_balances_count_only_non_void_obligations(al: Alliance) -> None:
    seqs = _busy_ledger(al)
    state = al.world.state
    live = {
        row.seq
        for row in state.obligations.rows()
        if isinstance(row, ObligationRow) and row.status != "void"
    }
    balance = sum(
        row.amount_fen
        for seq, rows in postings_by_seq(state).items()
        for row in rows
        if seq in live and row.account == f"{al.buyer}:receivable"
    )
    assert balance == sum(obligation(al.world, s).amount_fen for s in seqs[:2])


def test_rebuild_from_the_log_gives_identical_rows(al: Alliance) -> None:
    _busy_ledger(al)
    assert al.world.replay().all_tables() == al.world.state.all_tables()


def test_endorsement_state_is_child_rows_not_lists(al: Alliance) -> None:
    seq = record_return(al)
    endorse(al.world, "32", [seq])
    endorse(al.world, "31", [seq])
    state = al.world.state
    assert [state.endorsement_dues.get(seq, code) for code in ("31", "32", "33")] == [
        EndorsementDueRow(seq, "31"),
        EndorsementDueRow(seq, "32"),
        None,
    ]
    assert state.endorsables.get(seq) == EndorsableRow(seq, "return", "approved")
    assert isinstance(state.credit.get(al.seller), CreditRow)


def test_exclusions_are_one_row_per_category(al: Alliance) -> None:
    state = al.world.state
    enrolment = state.commitments_of[al.seller][0].seq
    assert [row for row in state.exclusions.rows() if row.member == al.seller] == [
        ExclusionRow(al.seller, enrolment, "toys")
    ]
    member = al.world.enroll("31", excluded=["shoes", "apparel", "shoes"])
    al.world.link(al.buyer, member)
    assert sorted(row.category for row in state.exclusions.rows() if row.member == member) == [
        "apparel",
        "shoes",
    ]
    body = return_body(al.world, member, categories=("shoes",))
    sub = al.world.sign("return.recorded", al.buyer, body)
    refused(al.world, sub, PolicyError, "category shoes is excluded by seller")


def test_suspended_debtor_can_still_dispute(al: Alliance) -> None:
    """A suspension takes no right of defence away."""
    seq = record_return(al)
    body = {"member": al.seller, "reason": "inspection"}
    al.world.submit(al.world.sign("member.suspended", "region:31", body))
    dispute_seq = dispute(al, seq)
    assert obligation(al.world, seq).status == "held"
    assert al.world.state.disputes.get(dispute_seq).status == "open"


def test_withdrawn_debtor_cannot_dispute(al: Alliance) -> None:
    seq = record_return(al)
    body = {"member": al.seller, "reason": "member_request"}
    al.world.submit(al.world.sign("member.withdrawn", "region:31", body))
    sub = al.world.sign("claim.disputed", al.seller, {"target": seq, "reason": "not_our_sale"})
    refused(al.world, sub, UnknownPrincipalError, "withdrawn")
