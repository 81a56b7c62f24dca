"""The actors of the simulation: the regions' desks (endorsement, disputes,
membership, credit), the traders (merchants' returns, the zone fund's and platforms'
advances, disputes), and the bad submissions the log must refuse."""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from ledger.calendar import local_date
from ledger.rows import EndorsementRow, NoticeRow, ObligationRow
from ledger.state import State, region_principal
from nodes.endorse import Awaiting, Decision, Judge
from ops.demo.catalogue import FEN_PER_YUAN
from ops.demo.population import Member
from ops.demo.sales import Sale
from ops.demo.stage import TICKS_AT, Claim, OpenDispute, Planned, Plant, World
from ops.world import entry_time
from schemas.entry import parse_time
from schemas.errors import InvariantError, invariant
from schemas.limits import DEMO_DRAIN_ROUNDS_MAX, DEMO_ENTRY_DELAY_MAX_S
from signing.entry import submitted

RETURNS_PER_MERCHANT = 4  # 200 merchants: 800 returns a day
RETURNS_PER_PLANT = 200  # one fabricated receipt per this many returns
MERCHANTS_PER_ADVANCE = 40
MERCHANTS_PER_DISPUTE = 60
# Past the window even when its last day falls on a long run of days off (art. 203).
OUTSIDE_WINDOW_EXTRA_DAYS = 12
UPHELD_EVERY = 3  # dispute 0, 3, 6 … is upheld, the others dismissed
FUND_ADVANCE_SHARE = 0.6  # of advances, paid by the zone fund (else by a platform)
OVER_REFUND_FEN = 5_000
FABRICATED = "receipt_not_genuine"  # 虚构退货：卖方收银系统无此笔销售（监管核查）
NO_COMPLAINT = "no_consumer_complaint"  # 先行垫付依据不足：12315 无对应投诉
FUND_BASIS = "civil_code_524"  # the zone's pooled fund pays for the merchant (民法典 524)
PLATFORM_BASIS = "consumer_law_44"  # a platform pays first (消法 44)
RETURN_DISPUTES = (
    "not_our_sale",  # 退货商品非本店售出：小票与本店销售记录不符
    "goods_used",  # 已使用且影响二次销售，不符合无理由退货条件
    "already_refunded",  # 已由本店直接办理退款，属重复追偿
)
ADVANCE_DISPUTE = "settled_with_consumer"  # 消费者已与本店和解并退款
SUSPEND_REASON = "inspection"  # 门店停业整改: the region inspects the store
REINSTATE_REASON = "inspection_passed"  # 整改完成，经现场核查恢复承诺
OBJECTION = "evidence_wrong"  # 陈述申辩：争议系顾客自行撤回，非本店虚报
OVERDUE_OBJECTION = "disproportionate"  # 陈述申辩：逾期系资金周转所致，已承诺清偿，请求从轻
# Labels of the submissions the log must refuse.
OUTSIDE_WINDOW = "return outside the seller's window"
OUTSIDE_NETWORK = "seller outside the acceptor's network"
OVER_REFUND = "refund above the receipt amount"
REFUND_AGAIN = "receipt refunded beyond its amount"
EXCLUDED = "category on a negative list"
SUSPENDED = "return by a suspended member"
OLD_KEY = "signed with a replaced key"
CASE_TWICE = "advance case claimed twice"


def share(total: int, index: int, parts: int) -> int:
    """The ``index``-th of ``parts`` near-equal shares of ``total`` (earlier get the rest)."""
    base, rest = divmod(total, parts)
    return base + (1 if index < rest else 0)


class Regulators:
    """The four regions' desks: endorsement judges, disputes, membership, credit."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.ledger = world.ledger
        self.books = world.books

    def judge(self, region: str) -> Judge:
        """The region's own knowledge (POS checks, complaint records): it rejects what the
        simulation planted against its records and approves the rest. A night it leaves
        to its node, which approves it only once its own check of the report holds
        (recomputed from the log in process, over HTTP as far as the region's scope
        reaches: nodes.remote)."""

        def decide(item: Awaiting) -> Decision | None:
            if item.kind == "reconciliation.closed":
                return None
            plant = self.books.planted.get(str(item.entry["id"]))
            if plant is not None and plant.region == region:
                return Decision(False, plant.reason)
            return Decision(True, "")

        return decide

    def endorse(self, _day: int) -> None:
        self.ledger.endorse_round(self.judge)

    def drain(self) -> None:
        """Run the nodes until every return and advance is decided by every region."""
        for _ in range(DEMO_DRAIN_ROUNDS_MAX):
            if self.ledger.endorse_round(self.judge) == 0:
                return
        raise InvariantError(
            f"demo: endorsement nodes still busy after {DEMO_DRAIN_ROUNDS_MAX} rounds"
        )

    def morning(self, day: int) -> None:
        schedule, world = self.world.schedule, self.world
        self.resolve_disputes(day)
        if day == schedule.keys_day:
            self.rotate_keys()
        if day == schedule.suspend_day:
            self.set_status(world.suspend_member, "member.suspended", SUSPEND_REASON)
        if day == schedule.reinstate_day:
            self.set_status(world.suspend_member, "member.reinstated", REINSTATE_REASON)
        # A notice whose objection period ended at midnight is decided first thing, so
        # that a debtor who was waiting for the decision can pay the same day.
        self.decide_notices()

    def late(self, day: int) -> None:
        """Follow-ups that would fall on a next day the run does not have."""
        schedule = self.world.schedule
        if schedule.reinstate_day is None and day == schedule.suspend_day:
            self.set_status(self.world.suspend_member, "member.reinstated", REINSTATE_REASON)

    def set_status(self, member: Member, kind: str, reason: str) -> None:
        body = {"member": member.id, "reason": reason}
        self.ledger.submit_one(kind, region_principal(member.region), body)
        if kind == "member.suspended":
            self.world.suspended.add(member.id)
        else:
            self.world.suspended.discard(member.id)

    def rotate_keys(self) -> None:
        """The member's POS is replaced: its region registers the new key, and the
        keyring holds the new key from now on (so --keys saves the current one)."""
        member = self.world.keys_member
        self.world.retired_key = self.ledger.ring.keys[member.id]
        new = self.ledger.ring.rotate(member.id, 1)
        body = {"member": member.id, "keys": [new.public.wire()]}
        self.ledger.submit_one("member.keys_changed", region_principal(member.region), body)

    def resolve_disputes(self, day: int) -> None:
        """The debtor's region decides earlier days' disputes: some upheld, most dismissed."""
        remaining = []
        for dispute in self.books.open_disputes:
            if dispute.filed_day >= day:
                remaining.append(dispute)
                continue
            self.resolve(dispute)
        self.books.open_disputes = remaining

    def resolve(self, dispute: OpenDispute) -> None:
        """Upheld every UPHELD_EVERY-th, upheld in part (half) the next one when its regions
        have approved the claim, else dismissed; signed by the debtor's region and, when
        the creditor's region is another, by that one too."""
        state = self.ledger.sequencer.state()
        row = state.disputes.get(dispute.seq)
        invariant(row is not None, f"demo: dispute {dispute.seq} is not logged")
        assert row is not None
        obligation = state.obligations.get(row.target)
        endorsable = state.endorsables.get(row.target)
        assert obligation is not None and endorsable is not None
        body: dict[str, Any] = {"dispute": dispute.seq, "outcome": "dismissed"}
        if dispute.ordinal % UPHELD_EVERY == 0:
            body["outcome"] = "upheld"
        elif dispute.ordinal % UPHELD_EVERY == 1 and endorsable.status == "approved":
            body.update(outcome="partly", amount_fen=max(1, obligation.amount_fen // 2))
        signers = [region_principal(dispute.debtor.region)]
        creditor = self.world.member(obligation.creditor)
        if region_principal(creditor.region) not in signers:
            signers.append(region_principal(creditor.region))
        entry = self.ledger.factory.entry("dispute.resolved", signers[0], body, self.world.now)
        keys = [self.ledger.ring.keys[signer] for signer in signers]
        self.ledger.sequencer.submit(submitted(entry, *keys))

    def credit(self, day: int) -> None:
        """Due process, evening by evening: on the notice day, notice of a refused return
        (proved by its region's rejection) and of a false claim (proved by an upheld
        dispute); every evening, a decision on each notice whose objection period is over,
        and the restoration of each penalty whose cure is now on the log."""
        if day == self.world.schedule.notice_day:
            self.notice_refused_return()
            self.notice_false_claim()
        self.notice_overdue()
        self.decide_notices()
        self.restore_cured()

    def notice_overdue(self) -> None:
        """The payer's region node gives notice of each overdue instruction by itself,
        citing the approved night that lists it (nodes/credit.py, issue 8 rule 7). The
        debtor objects that the penalty is out of proportion (陈述申辩), so the node leaves
        the decision to the region's desk, which decides it here (``decide_notices``)."""
        state = self.ledger.sequencer.state()
        known = set(self.books.overdue_notices)
        for notice in sorted(state.credit_notices.rows(), key=lambda row: row.seq):
            if notice.rule != "overdue_settlement" or notice.seq in known:
                continue
            cited = [
                row.evidence for row in state.notice_evidence.rows() if row.notice == notice.seq
            ]
            instruction = min(state.overdue_listed[(cited[0], notice.member)])
            self.books.overdue_notices[notice.seq] = instruction
            self.books.notices.append((notice.seq, self.world.member(notice.member)))
            invariant(
                self.world.now < parse_time(notice.objection_until),
                f"demo: the objection period of notice {notice.seq} ended before the debtor saw it",
            )
            self.object(notice.seq, OVERDUE_OBJECTION)

    def notice_refused_return(self) -> None:
        """The first fabricated return its region rejected: notice to the member that
        recorded it, citing the rejection."""
        state = self.ledger.sequencer.state()
        for seq, plant in self.books.planted_returns:
            row = state.endorsements.get(seq, plant.region)
            if isinstance(row, EndorsementRow) and row.decision == "reject":
                self.notice(self.world.merchant(plant.culprit), "refused_return", row.seq)
                return

    def notice_false_claim(self) -> None:
        """The first upheld dispute of a return: notice to the member that claimed it,
        citing the resolution. It objects the same evening (陈述申辩)."""
        state = self.ledger.sequencer.state()
        upheld = sorted(
            (row.seq, row.resolved_seq, row.target)
            for row in state.disputes.rows()
            if row.status == "upheld" and row.resolved_seq is not None
        )
        for _, resolution, target in upheld:
            claim = state.obligations.get(target)
            if isinstance(claim, ObligationRow) and claim.kind == "return":
                seq = self.notice(self.world.merchant(claim.creditor), "false_claim", resolution)
                self.object(seq)
                return

    def notice(self, member: Member, rule_name: str, evidence: int) -> int:
        """Points and measure as the policy's rule carries them; the shortest objection
        period the policy allows."""
        policy = self.ledger.config.policy
        rule = policy["rules"][rule_name]
        deadline = local_date(self.world.now) + timedelta(days=int(policy["objection_days_min"]))
        body = {
            "member": member.id,
            "rule": rule_name,
            "points": int(rule["points"]),
            "measure": str(rule["measure"]),
            "evidence": [evidence],
            "deadline": deadline.isoformat(),
        }
        seq = self.ledger.submit_one("credit.notice", region_principal(member.region), body)
        self.books.notices.append((seq, member))
        return seq

    def object(self, notice: int, reason: str = OBJECTION) -> None:
        member = next(member for seq, member in self.books.notices if seq == notice)
        body = {"notice": notice, "reason": reason}
        self.ledger.submit_one("credit.objection", member.id, body)

    def decide_notices(self) -> None:
        """Decide each notice whose objection period has ended: as proposed, or, when the
        member objected, a warning instead of the proposed measure (its statement heard)."""
        state = self.ledger.sequencer.state()
        pending = []
        for seq, member in self.books.notices:
            notice = state.credit_notices.get(seq)
            assert notice is not None
            if self.world.now < parse_time(notice.objection_until):
                pending.append((seq, member))
                continue
            penalty = self.penalty(notice)
            instruction = self.books.overdue_notices.get(seq)
            if instruction is not None:  # decided: the debtor now pays (Treasury.pay)
                self.books.overdue_penalties[penalty] = instruction
                self.books.released.add(instruction)
            rule = self.ledger.config.policy["rules"][notice.rule]
            if rule.get("cure") is not None:
                self.books.curable.append((penalty, member))
        self.books.notices = pending

    def penalty(self, notice: NoticeRow) -> int:
        rule = self.ledger.config.policy["rules"][notice.rule]
        numbers = self.books.decision_numbers
        numbers[notice.region] += 1
        year = local_date(self.world.now).year
        body = {
            "notice": notice.seq,
            "objection": notice.objection_seq,
            "decision_no": f"长三角联信〔{year}〕{notice.region}-{numbers[notice.region]}号",
            "member": notice.member,
            "rule": notice.rule,
            "points": notice.points,
            "measure": notice.measure if notice.objection_seq is None else "warning",
            "until": entry_time(self.world.now + timedelta(days=int(rule["days"]))),
        }
        return self.ledger.submit_one("credit.penalty", region_principal(notice.region), body)

    def restore_cured(self) -> None:
        """信用修复 once the cure is logged: for a refused return, a return the member
        recorded after the penalty that every region approved; for an overdue settlement,
        the payee's confirmation that discharged the instruction."""
        state = self.ledger.sequencer.state()
        waiting = []
        for penalty, member in self.books.curable:
            instruction = self.books.overdue_penalties.get(penalty)
            if instruction is None:
                cure = self.approved_return_after(state, member, penalty)
            else:
                cure = self.discharge_after(state, instruction, penalty)
            if cure is None:
                waiting.append((penalty, member))
                continue
            body = {"penalty": penalty, "reason": "cured_on_log", "cure": cure}
            self.ledger.submit_one("credit.restored", region_principal(member.region), body)
        self.books.curable = waiting

    @staticmethod
    def approved_return_after(state: State, member: Member, penalty: int) -> int | None:
        return min(
            (
                row.seq
                for row in state.obligations.rows()
                if row.creditor == member.id
                and row.kind == "return"
                and row.seq > penalty
                and row.status == "effective"
            ),
            default=None,
        )

    @staticmethod
    def discharge_after(state: State, instruction: tuple[int, int], penalty: int) -> int | None:
        """The confirmation that discharged ``instruction``, if it did after ``penalty``."""
        row = state.instructions.get(*instruction)
        assert row is not None
        last = state.last_confirmation.get(instruction)
        if row.confirmed_fen < row.amount_fen or last is None or last < penalty:
            return None
        return last


class Traders:
    """Merchants, the zone fund and the platforms: returns, advances, disputes."""

    def __init__(self, world: World, merchants: int) -> None:
        self.world = world
        self.ledger = world.ledger
        self.books = world.books
        self.bad = BadSubmissions(world)
        self.per_day = merchants * RETURNS_PER_MERCHANT
        self.plants_per_day = max(1, self.per_day // RETURNS_PER_PLANT)
        self.advances_per_day = max(1, merchants // MERCHANTS_PER_ADVANCE)
        self.disputes_per_day = max(1, merchants // MERCHANTS_PER_DISPUTE)

    def business(self, tick: int, day: int) -> None:
        """One stretch of opening hours: returns, a fabricated one now and then,
        advances, and the bad submissions the log must refuse, as one batch."""
        world, parts = self.world, len(TICKS_AT)
        planned = [
            self.plan_return(world.maker.make(world.now, world.suspended))
            for _ in range(share(self.per_day, tick, parts))
        ]
        for _ in range(share(self.plants_per_day, tick, parts)):
            planned.append(self.plan_fabricated())
        for index in range(share(self.advances_per_day, tick, parts)):
            planted = day % 2 == 1 and tick == 0 and index == 0  # every other day
            planned.append(self.plan_advance(planted))
        planned += self.bad.refusals(tick, day)
        self.ledger.submit(planned)

    def plan_return(self, sale: Sale, plant: Plant | None = None) -> Planned:
        delay = self.world.rng.randint(0, DEMO_ENTRY_DELAY_MAX_S)
        document = self.ledger.signed("return.recorded", sale.acceptor.id, sale.body, delay_s=delay)
        if plant is not None:
            self.books.planted[document["entry"]["id"]] = plant
        return Planned(document, logged=functools.partial(self._note_return, sale, plant))

    def _note_return(self, sale: Sale, plant: Plant | None, seq: int) -> None:
        self.books.returns_today += 1
        if plant is not None:
            self.books.planted_returns.append((seq, plant))
        elif sale.seller.id != sale.acceptor.id:
            self.books.claims.append(Claim(seq, "return", sale.seller))
        if sale.full and plant is None:
            self.books.full_refunds.append(sale)

    def plan_fabricated(self) -> Planned:
        """A franchisee claims a peer's receipt that the peer's POS never issued."""
        sale = self.world.maker.cross_member(self.world.now, self.world.suspended)
        return self.plan_return(sale, Plant(sale.seller.region, FABRICATED, sale.acceptor.id))

    def plan_advance(self, planted: bool) -> Planned:
        """The zone fund pays for merchants of the zone's regions, a platform for any."""
        world, rng, population = self.world, self.world.rng, self.world.population
        zone_regions = {store.division[:2] for store in population.fund.stores}
        use_fund = rng.random() < FUND_ADVANCE_SHARE
        funder = population.fund if use_fund else rng.choice(population.platforms)
        liable = rng.choice(
            [
                m
                for m in population.merchants
                if m.id not in world.suspended and (not use_fund or m.region in zone_regions)
            ]
        )
        prefix = "SFQ" if use_fund else f"PT{population.platforms.index(funder) + 1}"
        case = f"{prefix}-{world.now:%Y%m%d}-{len(self.books.cases) + 1:05d}"
        body = {
            "liable": liable.id,
            "case": case,
            "basis": FUND_BASIS if use_fund else PLATFORM_BASIS,
            "amount_fen": rng.randint(50, 3_000) * FEN_PER_YUAN,
            # The case file stays with the payer; the log holds its hash.
            "evidence_hash": hashlib.sha256(f"case file {case}".encode()).hexdigest(),
        }
        document = self.ledger.signed("advance.paid", funder.id, body)
        self.books.cases.append({"funder": funder.id, **body})
        if planted:
            plant = Plant(liable.region, NO_COMPLAINT, funder.id)
            self.books.planted[document["entry"]["id"]] = plant
            return Planned(document)
        return Planned(document, logged=functools.partial(self._note_claim, liable))

    def _note_claim(self, liable: Member, seq: int) -> None:
        self.books.claims.append(Claim(seq, "advance", liable))

    def file_disputes(self, day: int) -> None:
        """Debtors contest a few claims against them (never a planted one: those the
        regions void anyway), within the policy's dispute period."""
        world = self.world
        state = self.ledger.sequencer.state()
        candidates = [
            claim
            for claim in self.books.claims
            if claim.seq not in self.books.disputed
            and claim.debtor.id not in world.suspended
            and self.disputable(state, claim.seq)
        ]
        chosen = world.rng.sample(candidates, min(self.disputes_per_day, len(candidates)))
        planned = []
        for claim in sorted(chosen, key=lambda c: c.seq):
            is_return = claim.kind == "return"
            reason = world.rng.choice(RETURN_DISPUTES) if is_return else ADVANCE_DISPUTE
            body = {"target": claim.seq, "reason": reason}
            document = self.ledger.signed("claim.disputed", claim.debtor.id, body)
            note = functools.partial(self._note_dispute, claim, day)
            planned.append(Planned(document, logged=note))
        self.ledger.submit(planned)

    def disputable(self, state: State, seq: int) -> bool:
        """Whether the claim at ``seq`` is still within its dispute period (issue 7 §3):
        awaiting its regions, or effective for less than ``policy.dispute_days``."""
        obligation = state.obligations.get(seq)
        if obligation is None or obligation.effective is None:
            return True
        age = self.world.now - parse_time(obligation.effective)
        return age < timedelta(days=state.policy.dispute_days)

    def _note_dispute(self, claim: Claim, day: int, seq: int) -> None:
        self.books.disputed.add(claim.seq)
        ordinal = len(self.books.disputed) - 1
        self.books.open_disputes.append(OpenDispute(seq, claim.debtor, day, ordinal))


class BadSubmissions:
    """Submissions the log itself must refuse, mixed into the stores' batches."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.maker = world.maker

    def refusals(self, tick: int, day: int) -> list[Planned]:
        world = self.world
        makers: dict[int, Callable[[], Planned | None]] = {
            1: self.outside_window,
            3: self.over_refund,
            5: self.refund_again,
            6: self.excluded_category,
            7: self.outside_network,
        }
        planned = [item for item in [makers[tick]()] if item] if tick in makers else []
        if tick == 0 and day == world.schedule.suspend_day:
            planned.append(self.by_suspended())
        if tick == 0 and day == world.schedule.keys_day:
            planned.append(self.with_old_key())
        if tick == 3 and day == 0 and world.books.cases:
            planned.append(self.case_again())
        return planned

    def _refused(self, kind: str, signer: str, body: dict[str, Any], label: str) -> Planned:
        return Planned(self.world.ledger.signed(kind, signer, body), refusal=label)

    def outside_window(self) -> Planned:
        now = self.world.now
        seller, acceptor = self.maker.pair(self.world.suspended)
        late = now - timedelta(days=seller.return_days + OUTSIDE_WINDOW_EXTRA_DAYS)
        sale = self.maker.refund(self.maker.receipt(seller, now, late), acceptor, now)
        return self._refused("return.recorded", acceptor.id, sale.body, OUTSIDE_WINDOW)

    def over_refund(self) -> Planned:
        """A refund larger than the receipt's amount (the items sum to it, too)."""
        sale = self.maker.make(self.world.now, self.world.suspended)
        body = json.loads(json.dumps(sale.body))
        excess = sale.receipt.amount_fen + OVER_REFUND_FEN - int(body["refund_fen"])
        body["items"][0]["refund_fen"] += excess
        body["refund_fen"] += excess
        return self._refused("return.recorded", sale.acceptor.id, body, OVER_REFUND)

    def refund_again(self) -> Planned | None:
        """A receipt refunded in full earlier today, refunded in full once more."""
        suspended = self.world.suspended
        for sale in self.world.books.full_refunds:
            if sale.seller.id in suspended or sale.acceptor.id in suspended:
                continue
            again = self.maker.refund(sale.receipt, sale.acceptor, self.world.now, full=True)
            return self._refused("return.recorded", sale.acceptor.id, again.body, REFUND_AGAIN)
        return None

    def excluded_category(self) -> Planned:
        """Goods excluded from no-reason returns by law, billed to another member (a
        member taking back its own goods may be more generous than the floor)."""
        seller, acceptor = self.maker.cross_pair(self.world.suspended)
        policy = self.world.ledger.config.policy
        category = str(policy["excluded_categories"][0])
        receipt = self.maker.receipt(seller, self.world.now, category=category)
        sale = self.maker.refund(receipt, acceptor, self.world.now, full=True)
        return self._refused("return.recorded", acceptor.id, sale.body, EXCLUDED)

    def outside_network(self) -> Planned | None:
        """An independent's receipt taken back by a franchisee, whose network is its
        franchise group: the franchisee may not bill the independent."""
        suspended = self.world.suspended
        population = self.world.population
        sellers = [m for m in population.independents if m.id not in suspended]
        acceptors = [m for m in population.franchisees if m.id not in suspended]
        if not sellers or not acceptors:
            return None
        acceptor = self.maker.rng.choice(acceptors)
        honoured = set(population.network_of(acceptor))
        sellers = [m for m in sellers if m.id not in honoured]
        if not sellers:
            return None
        seller = self.maker.rng.choice(sellers)
        now = self.world.now
        sale = self.maker.refund(self.maker.receipt(seller, now), acceptor, now)
        return self._refused("return.recorded", acceptor.id, sale.body, OUTSIDE_NETWORK)

    def by_suspended(self) -> Planned:
        member = self.world.suspend_member
        now = self.world.now
        sale = self.maker.refund(self.maker.receipt(member, now), member, now)
        return self._refused("return.recorded", member.id, sale.body, SUSPENDED)

    def with_old_key(self) -> Planned:
        """The rotated member's old POS key signs once more."""
        member, old = self.world.keys_member, self.world.retired_key
        invariant(old is not None, "demo: the old key is used only after a rotation")
        assert old is not None
        now = self.world.now
        sale = self.maker.refund(self.maker.receipt(member, now), member, now)
        entry = self.world.ledger.factory.entry(
            "return.recorded", member.id, sale.body, self.world.now
        )
        return Planned(submitted(entry, old), refusal=OLD_KEY)

    def case_again(self) -> Planned:
        case = dict(self.world.books.cases[0])
        funder = case.pop("funder")
        return self._refused("advance.paid", funder, case, CASE_TWICE)
