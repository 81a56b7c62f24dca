"""Money kinds: cross-store returns, advance payments, endorsements and disputes (DESIGN §3, §5).

Every financial entry (`return.recorded` between two members, `advance.paid`) creates one
obligation keyed by its own seq, an endorsable awaiting a decision from each region it
touches, and so two postings.

Voiding and postings. Postings are not stored: they are a pure function of the
obligation (``postings_of``: ``f"{debtor}:payable"`` = -amount,
``f"{creditor}:receivable"`` = +amount, under the source seq), built from the fields an
obligation never changes, so they are never changed or reversed and per source seq they
sum to zero (checked with ``invariant()`` when the obligation is written and whenever
they are derived). The database derives the same two rows per obligation in the
``postings`` view (ledger.reads.POSTINGS). Whether a posting counts is decided by its
obligation's status, never by extra postings: balance views join ``postings`` to
``obligations`` on ``seq`` and drop void obligations (netting takes only ``effective``
ones). So a rejection or an upheld dispute changes one obligation row and nothing else,
every per-entry sum stays zero, and a rebuild from the log gives the same rows.

Obligation lifecycle kept here: ``pending`` until every region approved, then
``effective``; ``void`` as soon as one region rejects or a dispute is upheld (void is
final); ``held`` while a dispute is open, whatever the endorsements say, and on
dismissal back to what the endorsements say (``effective`` / ``void`` / ``pending``).
A claim may be disputed once: a dismissed dispute is final, so a debtor cannot hold an
obligation out of netting by filing again.

Receipts. A receipt (merchant, store, normalised number: see
``schemas.identifiers.normalise_receipt_number``) counts only its *live* returns: those
whose endorsable is pending or approved and that no upheld dispute voided (a same-member
return has no obligation but still an endorsable, so it counts until rejected). A
rejection or an upheld dispute voids the return's ``ReturnRow`` (final) and takes its
refund off the receipt; a receipt left with no live return is free, so a squatter's
rejected claim neither blocks the genuine return nor fixes its amount or purchase time.
Endorsement state lives in child rows, never in JSON lists: ``EndorsementDueRow`` per
region that must decide, ``EndorsementRow`` per decision.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import date, datetime

from ledger.calendar import ONE_DAY, local_date, period_end
from ledger.kinds.credit import compute_credit
from ledger.kinds.members import active_on, commitment_for, excludes, honours, open_on
from ledger.kinds.settlement import RECONCILIATION, is_settled, night_decided
from ledger.rows import (
    CaseRow,
    CommitmentRow,
    DisputeRow,
    EndorsableRow,
    EndorsementDueRow,
    EndorsementRow,
    MemberRow,
    ObligationRow,
    PostingRow,
    ReceiptLineRow,
    ReceiptRow,
    ReturnLineRow,
    ReturnRow,
    Row,
    StoreRow,
)
from ledger.state import (
    Context,
    State,
    days_between,
    page_hint,
    region_principal,
    register,
)
from schemas.bodies import (
    AdvanceBody,
    DisputeBody,
    DisputeResolvedBody,
    EndorsementBody,
    ItemModel,
    ReceiptModel,
    ReturnBody,
)
from schemas.entry import parse_time
from schemas.errors import PolicyError, invariant
from schemas.identifiers import division_region

RETURN = "return"
ADVANCE = "advance"
MERCHANT = "merchant"
FUNDER_KINDS = frozenset({"fund", "platform"})
ACTIVE = "active"
SUSPENDED = "suspended"
WITHDRAWN = "withdrawn"
REGION_PREFIX = "region:"

# Obligation statuses.
PENDING = "pending"
EFFECTIVE = "effective"
HELD = "held"
VOID = "void"
OBLIGATION_STATUSES = (PENDING, EFFECTIVE, HELD, VOID)
# Return statuses (ReturnRow): a live return counts on its receipt, a void one not.
LIVE = "live"
# Endorsable statuses (PENDING too) and decisions.
APPROVED = "approved"
REJECTED = "rejected"
APPROVE = "approve"
REJECT = "reject"
# Dispute statuses; the resolved ones are the `dispute.resolved` outcomes.
OPEN = "open"
UPHELD = "upheld"
PARTLY = "partly"
DISMISSED = "dismissed"
# The obligation a partly upheld dispute creates: creditor owes the debtor that part back.
REVERSAL = "reversal"

PAYABLE = "payable"
RECEIVABLE = "receivable"


# --- shared pieces -----------------------------------------------------------------------


def _signing_member(state: State, ctx: Context, kinds: frozenset[str], role: str) -> MemberRow:
    """The member that signed, if it is of one of ``kinds`` (admit() checked it active)."""
    member = state.member(ctx.signer)
    if member is None or member.kind not in kinds:
        raise PolicyError(f"{ctx.kind} is signed by {role}, not {ctx.signer}", field="signer")
    return member


def _seller(state: State, member_id: str) -> MemberRow:
    """The selling merchant, in any status but withdrawn: whether it was committed when
    the goods were sold is judged on the purchase date (_purchase_commitment)."""
    member = state.member(member_id)
    field = "body.receipt.merchant"
    if member is None:
        raise PolicyError(f"seller {member_id} is not an enrolled member", field=field)
    if member.kind != MERCHANT:
        raise PolicyError(f"seller {member_id} is a {member.kind}, not a merchant", field=field)
    if member.status == WITHDRAWN:
        raise PolicyError(
            f"seller {member_id} has withdrawn from the alliance: its receipts are no longer "
            "billed across stores (a fund may advance the consumer's loss)",
            field=field,
        )
    return member


def _store(state: State, member: MemberRow, store: str, role: str, field: str) -> StoreRow:
    """The member's store, open or closed (callers judge when it had to be open)."""
    row = state.stores.get(member.id, store)
    if row is None:
        raise PolicyError(f"store {store} is not a store of {role} {member.id}", field=field)
    return row


def _province(state: State, store: StoreRow, field: str) -> str:
    """The region of the province a store lies in (its division's first two digits):
    the store, not its member's home region, decides local lists and endorsements."""
    code = division_region(store.division)
    if state.region(code) is None:
        raise PolicyError(
            f"store {store.store_id} lies in province {code}, which is no region of this log",
            field=field,
        )
    return code


def _endorsable(seq: int, kind: str, regions: set[str]) -> list[Row]:
    """The endorsable and one due row per region that must decide it."""
    rows: list[Row] = [EndorsableRow(seq, kind, PENDING)]
    rows += [EndorsementDueRow(seq, region) for region in sorted(regions)]
    return rows


def postings_of(obligation: ObligationRow) -> tuple[PostingRow, PostingRow]:
    """The obligation's two postings: its debtor's payable -amount and its creditor's
    receivable +amount, under its source seq. They depend only on fields no later
    version of the obligation changes, so every version gives the same two; the
    ``postings`` view (ledger.reads.POSTINGS) derives the same rows in SQL."""
    seq, amount = obligation.seq, obligation.amount_fen
    payable = PostingRow(seq, f"{obligation.debtor}:{PAYABLE}", -amount)
    receivable = PostingRow(seq, f"{obligation.creditor}:{RECEIVABLE}", amount)
    invariant(
        payable.amount_fen + receivable.amount_fen == 0,
        f"postings of seq {seq} do not sum to zero",
    )
    return payable, receivable


def _obligation(ctx: Context, kind: str, debtor: str, creditor: str, amount: int) -> ObligationRow:
    """The obligation, whose two postings (derived, not stored) sum to zero."""
    invariant(debtor != creditor, f"obligation of seq {ctx.seq} owed to its own debtor")
    obligation = ObligationRow(
        ctx.seq, kind, debtor, creditor, amount, PENDING, None, ctx.logged_text, None
    )
    postings_of(obligation)  # the double-entry check, when the obligation is written
    return obligation


# --- return.recorded ---------------------------------------------------------------------


def _check_accepted(state: State, ctx: Context, body: ReturnBody) -> datetime:
    """When the consumer was refunded: not after the entry, and within the policy's
    recording lag before it (an offline till uploads at night, not a week later)."""
    accepted = parse_time(body.accepted, field="body.accepted")
    if accepted > ctx.time:
        raise PolicyError(
            f"accepted {body.accepted} is after the entry time {ctx.entry['time']}",
            field="body.accepted",
        )
    lag_days = state.policy.recording_lag_days
    if ctx.time - accepted > ONE_DAY * lag_days:
        raise PolicyError(
            f"a return accepted {body.accepted} had to be logged within {lag_days} days; "
            f"the entry time is {ctx.entry['time']}",
            field="body.accepted",
        )
    return accepted


def _purchase_commitment(
    state: State, receipt: ReceiptModel, seller: MemberRow, selling: StoreRow
) -> CommitmentRow:
    """The commitment the purchase was made under: the seller was active on the purchase
    date (goods bought before a suspension stay returnable after it), at a store open that
    day; the commitment in force that day binds it, not a later narrower one."""
    purchased = date.fromisoformat(receipt.purchased)
    where = "body.receipt.purchased"
    commitment = commitment_for(state, seller.id, purchased)
    if commitment is None or not active_on(state, seller.id, purchased):
        raise PolicyError(
            f"seller {seller.id} was not an active member on the purchase date {receipt.purchased}",
            field=where,
        )
    if not open_on(selling, purchased):
        raise PolicyError(
            f"store {selling.store_id} of seller {seller.id} was not open on the purchase "
            f"date {receipt.purchased}",
            field="body.receipt.store",
        )
    return commitment


def _check_window(
    state: State, receipt: ReceiptModel, commitment: CommitmentRow, accepted: datetime
) -> None:
    """The consumer was refunded within the seller's committed window: the purchase day
    does not count, and the window ends at 24:00 local on purchase date + return_days,
    or on the next working day if that day is off (民法典 arts. 201, 203)."""
    purchased = date.fromisoformat(receipt.purchased)
    refunded_on = local_date(accepted)
    where = "body.receipt.purchased"
    if purchased > refunded_on:
        raise PolicyError(
            f"receipt purchased {receipt.purchased} is after the refund on "
            f"{refunded_on.isoformat()}",
            field=where,
        )
    days = commitment.return_days
    end = period_end(purchased, days, state.policy.calendar)
    if accepted >= end:
        last_day = (end - ONE_DAY).date().isoformat()
        raise PolicyError(
            f"purchase of {receipt.purchased} is outside seller {commitment.member}'s "
            f"{days}-day return window, which ended at 24:00 on {last_day}",
            field=where,
        )


def _check_categories(
    state: State, commitment: CommitmentRow, province: str, items: list[ItemModel]
) -> None:
    """No statutory exclusion, no category the seller excluded, no local negative list of
    the province the selling store lies in."""
    policy = state.policy
    statutory = set(policy.excluded_categories)
    local = set(policy.local_excluded_categories.get(province, []))
    for index, item in enumerate(items):
        where = f"body.items.{index}.category"
        if item.category in statutory:
            raise PolicyError(
                f"item {item.sku}: category {item.category} is excluded from no-reason "
                "returns by law",
                field=where,
            )
        if excludes(state, commitment, item.category):
            raise PolicyError(
                f"item {item.sku}: category {item.category} is excluded by seller "
                f"{commitment.member}'s commitment",
                field=where,
            )
        if item.category in local:
            raise PolicyError(
                f"item {item.sku}: category {item.category} is on region {province}'s "
                "local negative list",
                field=where,
            )


def _check_refund(body: ReturnBody) -> None:
    """The refund is within the receipt's amount and its items add up to it."""
    if body.refund_fen > body.receipt.amount_fen:
        raise PolicyError(
            f"refund {body.refund_fen} fen exceeds the receipt amount "
            f"{body.receipt.amount_fen} fen",
            field="body.refund_fen",
        )
    total = sum(item.refund_fen for item in body.items)
    if total != body.refund_fen:
        raise PolicyError(
            f"items refund {total} fen in all, but refund_fen is {body.refund_fen}",
            field="body.items",
        )


def _receipt_after(state: State, ctx: Context, body: ReturnBody) -> list[Row]:
    """The receipt with this return counted among its live returns, never refunded
    beyond its amount, and the return's own row. A receipt with no live return is free:
    this return states its amount and purchase time afresh."""
    _check_refund(body)
    receipt = body.receipt
    key = (receipt.merchant, receipt.store, receipt.ref)
    returned = ReturnRow(ctx.seq, *key, body.refund_fen, LIVE)
    row = state.receipts.get(*key)
    if row is None or row.returns == 0:
        fresh = ReceiptRow(*key, receipt.amount_fen, receipt.purchased, body.refund_fen, 1)
        return [fresh, returned]
    if row.purchased != receipt.purchased:
        raise PolicyError(
            f"receipt {receipt.ref} was first recorded as purchased {row.purchased}, "
            f"not {receipt.purchased}",
            field="body.receipt.purchased",
        )
    if row.amount_fen != receipt.amount_fen:
        raise PolicyError(
            f"receipt {receipt.ref} was first recorded with amount {row.amount_fen} fen, "
            f"not {receipt.amount_fen}",
            field="body.receipt.amount_fen",
        )
    if row.refunded_fen + body.refund_fen > receipt.amount_fen:
        raise PolicyError(
            f"receipt {receipt.ref} already refunded {row.refunded_fen} of "
            f"{receipt.amount_fen} fen: {body.refund_fen} more exceeds it",
            field="body.refund_fen",
        )
    counted = row._replace(refunded_fen=row.refunded_fen + body.refund_fen, returns=row.returns + 1)
    return [counted, returned]


def _lines_after(
    state: State, ctx: Context, key: tuple[str, str, str], items: list[ItemModel]
) -> list[Row]:
    """Each item's receipt line with this return's units counted, never beyond what the
    line sold; the first live recording of a line fixes ``line_qty``. Returns the line
    rows and this return's ReturnLineRows."""
    seen: set[int] = set()
    rows: list[Row] = []
    for index, item in enumerate(items):
        where = f"body.items.{index}"
        if item.line in seen:
            raise PolicyError(f"receipt line {item.line} is listed twice", field=f"{where}.line")
        seen.add(item.line)
        if item.qty > item.line_qty:
            raise PolicyError(
                f"item {item.sku}: {item.qty} units returned from line {item.line}, "
                f"which sold {item.line_qty}",
                field=f"{where}.qty",
            )
        line = state.receipt_lines.get(*key, item.line)
        if line is None or line.returned_qty == 0:
            rows.append(ReceiptLineRow(*key, item.line, item.line_qty, item.qty))
        elif line.line_qty != item.line_qty:
            raise PolicyError(
                f"line {item.line} of receipt {key[2]} was first recorded with "
                f"{line.line_qty} units, not {item.line_qty}",
                field=f"{where}.line_qty",
            )
        elif line.line_qty is not None and line.returned_qty + item.qty > line.line_qty:
            raise PolicyError(
                f"line {item.line} of receipt {key[2]} already had {line.returned_qty} of "
                f"{line.line_qty} units returned: {item.qty} more exceeds it",
                field=f"{where}.qty",
            )
        else:
            rows.append(line._replace(returned_qty=line.returned_qty + item.qty))
        rows.append(ReturnLineRow(ctx.seq, item.line, item.qty))
    return rows


def _void_returns(state: State, targets: Iterable[int]) -> list[Row]:
    """Void the live returns among ``targets`` (a region rejected them, or an upheld
    dispute voided their obligation) and give their refunds and units back to their
    receipts and lines; a receipt or line left with no live return is free again. Several
    targets may share a receipt: the handler's rows are applied only after it returns, so
    the receipts and lines are updated here, in order."""
    receipts: dict[tuple[str, str, str], ReceiptRow] = {}
    lines: dict[tuple[str, str, str, int], ReceiptLineRow] = {}
    rows: list[Row] = []
    for target in targets:
        returned = state.receipt_returns.get(target)
        if returned is None or returned.status != LIVE:
            continue  # not a return, or voided already (rejection and upheld dispute)
        key = (returned.merchant, returned.store, returned.ref)
        receipt = receipts.get(key) or state.receipts.get(*key)
        invariant(
            receipt is not None
            and receipt.returns > 0
            and receipt.refunded_fen >= returned.refund_fen,
            f"return {target} is live but its receipt does not count it",
        )
        assert receipt is not None
        if receipt.returns == 1:
            invariant(receipt.refunded_fen == returned.refund_fen, f"receipt of {target} skewed")
            receipts[key] = ReceiptRow(*key, None, None, 0, 0)
        else:
            receipts[key] = receipt._replace(
                refunded_fen=receipt.refunded_fen - returned.refund_fen,
                returns=receipt.returns - 1,
            )
        for number in state.return_line_numbers(target):
            taken = state.return_lines.get(target, number)
            line_key = (*key, number)
            line = lines.get(line_key) or state.receipt_lines.get(*line_key)
            invariant(
                taken is not None and line is not None and line.returned_qty >= taken.qty,
                f"return {target} took units from line {number} that its receipt does not count",
            )
            assert taken is not None and line is not None
            remaining = line.returned_qty - taken.qty
            lines[line_key] = line._replace(
                returned_qty=remaining, line_qty=line.line_qty if remaining else None
            )
        rows.append(returned._replace(status=VOID))
    return [*rows, *receipts.values(), *lines.values()]


@page_hint("return.recorded")
def _return_pages(signer: str, body: ReturnBody) -> list[tuple[str, tuple[object, ...]]]:
    receipt = (body.receipt.merchant, body.receipt.store, body.receipt.ref)
    # The accepting merchant signs: its link to the seller (honours()).
    link = (signer, body.receipt.merchant)
    return [("receipts", receipt), ("receipt_lines", receipt), ("networks", link)]


@register("return.recorded", ReturnBody)
def return_recorded(state: State, ctx: Context, body: ReturnBody) -> list[Row]:
    """Merchant B refunded, at its store, goods merchant A sold: A owes B the refund
    (nothing if A = B), once the regions of the selling and the accepting store have
    approved. Exclusions bind billing, not generosity: a member taking back its own
    goods is never refused for their category (it is still logged and counted)."""
    acceptor = _signing_member(state, ctx, frozenset({MERCHANT}), "the accepting merchant")
    accepting = _store(
        state, acceptor, body.accepted_store, "accepting merchant", "body.accepted_store"
    )
    if accepting.closed is not None:
        raise PolicyError(
            f"store {accepting.store_id} closed at {accepting.closed}", field="body.accepted_store"
        )
    seller = _seller(state, body.receipt.merchant)
    selling = _store(state, seller, body.receipt.store, "seller", "body.receipt.store")
    sold_in = _province(state, selling, "body.receipt.store")
    accepted_in = _province(state, accepting, "body.accepted_store")
    accepted = _check_accepted(state, ctx, body)
    commitment = _purchase_commitment(state, body.receipt, seller, selling)
    _check_window(state, body.receipt, commitment, accepted)
    if seller.id != acceptor.id:
        if not honours(state, acceptor.id, seller.id):
            raise PolicyError(
                f"seller {seller.id} is outside accepting merchant {acceptor.id}'s network",
                field="body.receipt.merchant",
            )
        _check_categories(state, commitment, sold_in, body.items)
    rows = _receipt_after(state, ctx, body)
    rows += _lines_after(state, ctx, (seller.id, body.receipt.store, body.receipt.ref), body.items)
    rows += _endorsable(ctx.seq, RETURN, {sold_in, accepted_in})
    if seller.id != acceptor.id:
        rows.append(_obligation(ctx, RETURN, seller.id, acceptor.id, body.refund_fen))
    return rows


# --- advance.paid ------------------------------------------------------------------------


@register("advance.paid", AdvanceBody)
def advance_paid(state: State, ctx: Context, body: AdvanceBody) -> list[Row]:
    """A fund or platform paid a consumer first (先行垫付) and recovers from the liable
    merchant, on a legal basis its kind may cite (policy.advance_bases). Recovery does
    not need the merchant active: a suspended or absconded merchant is exactly when it
    matters. A case is recovered once per liable merchant, whoever paid it."""
    payer = _signing_member(state, ctx, FUNDER_KINDS, "the fund or platform that paid")
    liable = state.member(body.liable)
    if liable is None:
        raise PolicyError(f"liable {body.liable} is not an enrolled member", field="body.liable")
    if liable.kind != MERCHANT:
        raise PolicyError(
            f"liable {body.liable} is a {liable.kind}, not a merchant", field="body.liable"
        )
    kinds = state.policy.advance_bases.get(body.basis)
    if kinds is None:
        known = ", ".join(sorted(state.policy.advance_bases))
        raise PolicyError(f"basis {body.basis} is not one of {known}", field="body.basis")
    if payer.kind not in kinds:
        raise PolicyError(
            f"a {payer.kind} cannot advance on basis {body.basis} (it is for {' or '.join(kinds)})",
            field="body.basis",
        )
    case = state.cases.get(liable.id, body.case)
    if case is not None:
        raise PolicyError(
            f"case {body.case} against {liable.id} was already claimed at seq {case.seq} "
            f"by {case.payer}",
            field="body.case",
        )
    return [
        CaseRow(liable.id, body.case, ctx.seq, payer.id),
        *_endorsable(ctx.seq, ADVANCE, {liable.region, payer.region}),
        _obligation(ctx, ADVANCE, liable.id, payer.id, body.amount_fen),
    ]


# --- endorsement -------------------------------------------------------------------------


def _check_reason(codes: list[str], reason: str, purpose: str) -> None:
    """A reason is a code of the policy's list for its purpose, never free text."""
    if reason not in codes:
        raise PolicyError(
            f"{purpose} reason {reason} is not one of {', '.join(codes)}", field="body.reason"
        )


def _endorsing_region(state: State, ctx: Context, body: EndorsementBody) -> str:
    if not ctx.signer.startswith(REGION_PREFIX):
        raise PolicyError(f"endorsements are signed by a region, not {ctx.signer}", field="signer")
    if len(set(body.targets)) != len(body.targets):
        raise PolicyError("a target seq is listed twice", field="body.targets")
    if body.decision == REJECT and not body.reason:
        raise PolicyError("a rejection must state its reason", field="body.reason")
    if body.decision == REJECT:
        _check_reason(state.policy.reasons.rejection, body.reason, "rejection")
    elif body.reason:
        raise PolicyError("an approval states no reason", field="body.reason")
    return ctx.signer.removeprefix(REGION_PREFIX)


def _due_regions(state: State, target: int) -> list[str]:
    """The regions that must decide ``target``, sorted (one or two of the log's few)."""
    return [
        code
        for code in state.region_codes()
        if state.endorsement_dues.get(target, code) is not None
    ]


def _awaiting(state: State, target: int, region: str, index: int) -> EndorsableRow:
    """The endorsable ``target``, which ``region`` must decide and has not decided yet."""
    where = f"body.targets.{index}"
    row = state.endorsables.get(target)
    if row is None:
        raise PolicyError(f"seq {target} is not an entry awaiting endorsement", field=where)
    if state.endorsement_dues.get(target, region) is None:
        regions = ", ".join(_due_regions(state, target))
        raise PolicyError(
            f"seq {target} does not touch region {region} (it awaits regions {regions})",
            field=where,
        )
    if state.endorsements.get(target, region) is not None:
        raise PolicyError(f"region {region} has already decided seq {target}", field=where)
    return row


def _decided(state: State, row: EndorsableRow, region: str, decision: str) -> EndorsableRow:
    """The endorsable after ``region``'s decision: rejected once any region rejects
    (final), approved once every due region approved, else still pending."""
    if decision == REJECT or row.status == REJECTED:
        return row._replace(status=REJECTED)
    others = [code for code in _due_regions(state, row.target) if code != region]
    decisions = [state.endorsements.get(row.target, code) for code in others]
    if all(made is not None and made.decision == APPROVE for made in decisions):
        return row._replace(status=APPROVED)
    return row


def _with_status(obligation: ObligationRow, status: str, ctx: Context) -> ObligationRow:
    """The obligation in ``status``; the first time it is effective is remembered (the
    dispute period runs from it)."""
    effective = obligation.effective
    if status == EFFECTIVE and effective is None:
        effective = ctx.logged_text
    return obligation._replace(status=status, effective=effective)


def _after_endorsement(obligation: ObligationRow, endorsable_status: str) -> str:
    """A rejection voids (even a held obligation); full approval makes a pending one
    effective; an open dispute keeps holding an approved one."""
    if obligation.status == VOID or endorsable_status == REJECTED:
        return VOID
    if endorsable_status == APPROVED and obligation.status == PENDING:
        return EFFECTIVE
    return obligation.status


@page_hint("endorsement")
def _endorsement_pages(_signer: str, body: EndorsementBody) -> list[tuple[str, tuple[object, ...]]]:
    pages: list[tuple[str, tuple[object, ...]]] = []
    for target in body.targets:
        key = (target,)
        pages += [
            ("endorsables", key),
            ("endorsement_dues", key),
            ("endorsements", key),
            ("obligations", key),
            ("receipt_returns", key),
        ]
    return pages


@register("endorsement", EndorsementBody)
def endorsement(state: State, ctx: Context, body: EndorsementBody) -> list[Row]:
    """A region approves or rejects, in one batch, entries touching it. Every target is
    checked before any row is produced, so one bad target refuses the whole batch."""
    region = _endorsing_region(state, ctx, body)
    decided = [
        _decided(state, _awaiting(state, target, region, index), region, body.decision)
        for index, target in enumerate(body.targets)
    ]
    rows: list[Row] = []
    honoured: Counter[str] = Counter()
    for row in decided:
        rows += [EndorsementRow(row.target, region, body.decision, ctx.seq), row]
        obligation = state.obligations.get(row.target)
        if obligation is None:
            continue
        status = _after_endorsement(obligation, row.status)
        if status != obligation.status:
            rows.append(_with_status(obligation, status, ctx))
        if row.kind == RETURN and row.status == APPROVED and status != VOID:
            honoured[obligation.debtor] += 1
    for seller in sorted(honoured):
        rows.append(
            compute_credit(
                state, seller, ctx.logged, ctx.logged_text, honoured_delta=honoured[seller]
            )
        )
    for row in decided:
        if row.kind == RECONCILIATION:
            rows += night_decided(state, row)
    rejected = [row.target for row in decided if row.kind == RETURN and row.status == REJECTED]
    return rows + _void_returns(state, rejected)


# --- disputes ----------------------------------------------------------------------------


def _disputable(state: State, ctx: Context, target: int) -> ObligationRow:
    obligation = state.obligations.get(target)
    if not isinstance(obligation, ObligationRow):
        raise PolicyError(f"seq {target} is not an obligation", field="body.target")
    if ctx.signer != obligation.debtor:
        raise PolicyError(
            f"only the debtor {obligation.debtor} may dispute the claim of seq {target}",
            field="signer",
        )
    if obligation.kind == REVERSAL:
        raise PolicyError(
            f"seq {target} is a dispute's own reversal; it cannot be disputed",
            field="body.target",
        )
    if obligation.status == VOID:
        raise PolicyError(f"the obligation of seq {target} is void", field="body.target")
    if obligation.dispute_seq is not None:
        raise PolicyError(
            f"the obligation of seq {target} was already disputed at seq {obligation.dispute_seq}",
            field="body.target",
        )
    return obligation


@register("claim.disputed", DisputeBody, signer_statuses=frozenset({ACTIVE, SUSPENDED}))
def claim_disputed(state: State, ctx: Context, body: DisputeBody) -> list[Row]:
    """The debtor (active or suspended: a suspension takes no right of defence) contests
    a claim before it settles: at any time while its regions decide, and within
    policy.dispute_days of its becoming effective. The obligation is held out of netting
    until the debtor's region resolves it."""
    obligation = _disputable(state, ctx, body.target)
    _check_reason(state.policy.reasons.dispute, body.reason, "dispute")
    limit = state.policy.dispute_days
    if obligation.effective is not None and (
        days_between(parse_time(obligation.effective), ctx.logged) > limit
    ):
        raise PolicyError(
            f"the claim of seq {body.target} became effective {obligation.effective}: the "
            f"{limit}-day dispute period is over",
            field="body.target",
        )
    return [
        DisputeRow(ctx.seq, body.target, obligation.debtor, OPEN, None),
        obligation._replace(status=HELD, dispute_seq=ctx.seq),
    ]


def _open_dispute(state: State, ctx: Context, seq: int) -> DisputeRow:
    dispute = state.disputes.get(seq)
    if not isinstance(dispute, DisputeRow):
        raise PolicyError(f"seq {seq} is not a dispute", field="body.dispute")
    debtor = state.member(dispute.debtor)
    invariant(debtor is not None, f"dispute {seq} names unknown debtor {dispute.debtor}")
    assert debtor is not None
    if ctx.signer != region_principal(debtor.region):
        raise PolicyError(
            f"dispute {seq} is resolved by the debtor's region region:{debtor.region}",
            field="signer",
        )
    if dispute.status != OPEN:
        raise PolicyError(
            f"dispute {seq} was already resolved ({dispute.status}) at seq {dispute.resolved_seq}",
            field="body.dispute",
        )
    return dispute


def _resolving_regions(state: State, ctx: Context) -> list[str]:
    """Who signs a resolution: the debtor's region and, when the creditor belongs to
    another region, that region too, so no region judges alone for its own merchants.
    (An unknown dispute needs only its signer here; the handler refuses it.)"""
    body = ctx.body
    dispute = state.disputes.get(body.dispute) if isinstance(body, DisputeResolvedBody) else None
    obligation = state.obligations.get(dispute.target) if dispute is not None else None
    if obligation is None:
        return [ctx.signer]
    regions = []
    for member_id in (obligation.debtor, obligation.creditor):
        member = state.member(member_id)
        if member is not None and region_principal(member.region) not in regions:
            regions.append(region_principal(member.region))
    return regions


def _outcome_status(
    body: DisputeResolvedBody, obligation: ObligationRow, endorsable: EndorsableRow
) -> str:
    """The obligation's status after the outcome; refuses an amount that does not fit."""
    if body.outcome != PARTLY:
        if body.amount_fen is not None:
            raise PolicyError(
                f"amount_fen is given only with outcome partly, not {body.outcome}",
                field="body.amount_fen",
            )
        if body.outcome == UPHELD:
            return VOID
        return {APPROVED: EFFECTIVE, REJECTED: VOID}.get(endorsable.status, PENDING)
    if body.amount_fen is None or body.amount_fen >= obligation.amount_fen:
        raise PolicyError(
            f"a partly upheld dispute states the part that no longer stands, below the "
            f"claim's {obligation.amount_fen} fen",
            field="body.amount_fen",
        )
    if endorsable.status != APPROVED:
        raise PolicyError(
            f"the claim of seq {obligation.seq} is {endorsable.status}: it can be upheld "
            "in part only once every region has approved it",
            field="body.outcome",
        )
    return EFFECTIVE


@register("dispute.resolved", DisputeResolvedBody, signers=_resolving_regions)
def dispute_resolved(state: State, ctx: Context, body: DisputeResolvedBody) -> list[Row]:
    """The debtor's region decides, with the creditor's region when it is another:
    upheld voids the obligation for good; partly keeps it and adds a reversal obligation
    (creditor owes the debtor ``amount_fen``; postings are never rewritten); dismissed
    returns it to what the endorsements say. A claim a night included (settled) is never
    voided: upheld, it is reversed in full."""
    dispute = _open_dispute(state, ctx, body.dispute)
    obligation = state.obligations.get(dispute.target)
    endorsable = state.endorsables.get(dispute.target)
    invariant(
        isinstance(obligation, ObligationRow) and isinstance(endorsable, EndorsableRow),
        f"dispute {dispute.seq} targets seq {dispute.target} without obligation",
    )
    assert isinstance(obligation, ObligationRow) and isinstance(endorsable, EndorsableRow)
    status = _outcome_status(body, obligation, endorsable)
    reversed_fen = body.amount_fen if body.outcome == PARTLY else None
    if body.outcome == UPHELD and is_settled(state, obligation):
        # A night included it and money may have moved: it stands as settled, and a
        # reversal of its whole amount pays the debtor back (postings are never rewritten).
        status, reversed_fen = EFFECTIVE, obligation.amount_fen
    rows: list[Row] = [
        dispute._replace(status=body.outcome, resolved_seq=ctx.seq),
        _with_status(obligation, status, ctx),
    ]
    if reversed_fen is not None:
        reversal = _obligation(ctx, REVERSAL, obligation.creditor, obligation.debtor, reversed_fen)
        rows.append(_with_status(reversal, EFFECTIVE, ctx))
    if body.outcome == UPHELD and obligation.kind == RETURN:
        rows += _void_returns(state, [obligation.seq])
        if endorsable.status == APPROVED:
            # The seller was credited with honouring this return when it was approved.
            rows.append(
                compute_credit(
                    state, obligation.debtor, ctx.logged, ctx.logged_text, honoured_delta=-1
                )
            )
    return rows
