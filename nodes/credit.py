"""A region node's credit desk for unpaid instructions (issue 8 rule 7): once a night
every region approved lists an instruction overdue whose payer is a member of this
region, the node starts the credit process (DESIGN §6) by itself:

* **notice** (告知): ``credit.notice`` under ``overdue_settlement`` to the payer, signed
  with the region's key alone, citing that night as evidence, with the points and measure
  the rule carries and the shortest objection period the policy allows;
* **decision**: once the objection period of such a notice is over and the member did not
  object, ``credit.penalty`` as noticed, lasting the rule's ``days``. A notice the member
  objected to (陈述申辩) is left to a person, who must weigh the statement: the node never
  decides over an objection.

Idempotent across runs and restarts: everything is derived from the node's verified
state (the follower's replay of the log), never from a table of its own. An instruction
is "already noticed" when a notice of ``overdue_settlement`` to its payer cites a night
that lists it (``State.overdue_listed``, ``notice_evidence``), which is also what the
writer's rules refuse twice (ledger.kinds.credit, one unpaid instruction, one penalty).
A night is cited only if ``reconciliation_proves_overdue`` holds for it (approved by every
region, the payer has not recorded paying in full) and if none of the instructions it
lists for the payer is the fact of an earlier notice: the rules would refuse it, so such
an instruction waits (``Outcome.blocked``) until a night lists it alone.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from ledger.calendar import LOCAL, local_date
from ledger.kinds.credit import PROVEN, reconciliation_proves_overdue
from ledger.state import State, region_principal
from nodes.client import LogClient
from schemas.entry import parse_time
from signing.entry import submitted
from signing.keys import PrivateKey

RULE = "overdue_settlement"
SHANGHAI_FORMAT = "seconds"

Instruction = tuple[int, int]  # (night seq, index)


@dataclass
class CreditOutcome:
    """What one run of the desk logged and left."""

    noticed: list[int] = field(default_factory=list)  # night seqs cited by new notices
    decided: list[int] = field(default_factory=list)  # notice seqs decided
    objected: list[int] = field(default_factory=list)  # notices left to a person
    blocked: list[Instruction] = field(default_factory=list)  # unnoticeable for now

    def acted(self) -> bool:
        """Whether the run logged or left anything to report."""
        return bool(self.noticed or self.decided or self.objected or self.blocked)

    def wire(self) -> dict[str, object]:
        return {
            "noticed": self.noticed,
            "decided": self.decided,
            "objected": self.objected,
            "blocked": [list(item) for item in self.blocked],
        }


def noticed_instructions(state: State, member: str) -> set[Instruction]:
    """The instructions of ``member`` that a notice of ``overdue_settlement`` already
    covers: every one listed overdue by a night such a notice cites."""
    notices = {
        row.seq for row in state.credit_notices.rows() if row.rule == RULE and row.member == member
    }
    covered: set[Instruction] = set()
    for row in state.notice_evidence.rows():
        if row.notice in notices:
            covered |= state.overdue_listed.get((row.evidence, member), set())
    return covered


def notices_due(state: State, region: str) -> tuple[list[tuple[int, str]], list[Instruction]]:
    """(night seq, payer) pairs to notice now, nights ascending, and the unnoticed
    instructions no night can be cited for yet (module docstring)."""
    planned: list[tuple[int, str]] = []
    covered: dict[str, set[Instruction]] = {}
    waiting: set[Instruction] = set()
    for (night, payer), listed in sorted(state.overdue_listed.items()):
        member = state.member(payer)
        if member is None or member.region != region:
            continue
        if reconciliation_proves_overdue(state, night, payer) != PROVEN:
            continue
        done = covered.setdefault(payer, noticed_instructions(state, payer))
        if listed & done:
            waiting |= listed - done
            continue
        planned.append((night, payer))
        done |= listed
    blocked = sorted(item for item in waiting if not any(item in c for c in covered.values()))
    return planned, blocked


def decisions_due(state: State, region: str, now: datetime) -> tuple[list[int], list[int]]:
    """(notices to decide, notices objected to) among this region's undecided notices of
    ``overdue_settlement`` whose objection period is over at ``now``."""
    decide: list[int] = []
    objected: list[int] = []
    for row in sorted(state.credit_notices.rows(), key=lambda notice: notice.seq):
        if row.rule != RULE or row.region != region or row.decision_seq is not None:
            continue
        if now < parse_time(row.objection_until):
            continue
        (objected if row.objection_seq is not None else decide).append(row.seq)
    return decide, objected


@dataclass
class CreditDesk:
    """The desk of region ``region`` (signing as ``region:<code>`` with ``key``)."""

    region: str
    key: PrivateKey
    new_id: Callable[[], str] = field(default=lambda: str(uuid.uuid4()))

    def run(self, state: State, client: LogClient, now: datetime) -> CreditOutcome:
        """Log the notices and decisions due in ``state`` (the node's verified state,
        synced by the caller) at ``now``."""
        outcome = CreditOutcome()
        planned, outcome.blocked = notices_due(state, self.region)
        for night, payer in planned:
            self._submit(client, now, "credit.notice", self._notice(state, night, payer, now))
            outcome.noticed.append(night)
        decide, outcome.objected = decisions_due(state, self.region, now)
        for notice in decide:
            self._submit(client, now, "credit.penalty", self._decision(state, notice, now))
            outcome.decided.append(notice)
        return outcome

    def _notice(self, state: State, night: int, payer: str, now: datetime) -> dict[str, Any]:
        rule = state.policy.rules[RULE]
        deadline = local_date(now) + timedelta(days=state.policy.objection_days_min)
        return {
            "member": payer,
            "rule": RULE,
            "points": rule.points,
            "measure": rule.measure,
            "evidence": [night],
            "deadline": deadline.isoformat(),
        }

    def _decision(self, state: State, seq: int, now: datetime) -> dict[str, Any]:
        notice = state.credit_notices.get(seq)
        assert notice is not None
        rule = state.policy.rules[RULE]
        until = _moment(now) + timedelta(days=rule.days)
        return {
            "notice": seq,
            "objection": None,
            # Unique per region: one decision per notice, numbered by the notice's seq.
            "decision_no": f"联信〔{local_date(now).year}〕{self.region}-逾{seq}号",
            "member": notice.member,
            "rule": RULE,
            "points": notice.points,
            "measure": notice.measure,
            "until": until.isoformat(timespec=SHANGHAI_FORMAT),
        }

    def _submit(self, client: LogClient, now: datetime, kind: str, body: dict[str, Any]) -> None:
        entry = {
            "v": 1,
            "kind": kind,
            "id": self.new_id(),
            "time": _moment(now).isoformat(timespec=SHANGHAI_FORMAT),
            "signer": region_principal(self.region),
            "body": body,
        }
        client.submit(submitted(entry, self.key))


def _moment(now: datetime) -> datetime:
    """``now`` in local time, to the second: an entry's time and a penalty's ``until``
    are written to the second, so ``until`` is exactly the rule's days after it."""
    return now.astimezone(LOCAL).replace(microsecond=0)
