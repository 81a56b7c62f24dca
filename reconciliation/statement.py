"""A member's statement of one night (``alliance statement``): the included obligations
it is a party to, its gross receivable and payable and its net, and its instructions,
each with an RFC 9162 inclusion proof against the night's instructions root, checked
before it is printed. CSV is UTF-8 with a BOM, so Excel opens the Chinese intact."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from datetime import date
from typing import Any

from ledger.app import Ledger
from reconciliation.nightly import verified_night
from reconciliation.report import InstructionProof, item_proofs, verify_instruction
from schemas.canonical import canonical
from schemas.errors import NotFoundError
from signing.keys import b64encode

CSV_BOM = "\ufeff"


def yuan(amount_fen: int) -> str:
    """Integer 分 as 元 with two decimals, from integers only (never a float)."""
    sign = "-" if amount_fen < 0 else ""
    whole, cents = divmod(abs(amount_fen), 100)
    return f"{sign}{whole}.{cents:02d}"


@dataclass(frozen=True)
class Statement:
    member: str
    day: date
    night_seq: int
    obligations: list[dict[str, Any]]
    receivable_fen: int
    payable_fen: int
    net_fen: int
    instructions: list[dict[str, Any]]  # each item with its "proof"

    def wire(self) -> dict[str, Any]:
        return {
            "member": self.member,
            "day": self.day.isoformat(),
            "reconciliation": self.night_seq,
            "obligations": self.obligations,
            "receivable_fen": self.receivable_fen,
            "payable_fen": self.payable_fen,
            "net_fen": self.net_fen,
            "receivable": yuan(self.receivable_fen),
            "payable": yuan(self.payable_fen),
            "net": yuan(self.net_fen),
            "instructions": self.instructions,
        }


def statement(ledger: Ledger, member: str, day: date) -> Statement:
    """``member``'s statement of ``day``'s night, every proof verified."""
    night = verified_night(ledger, day)
    document = json.loads(night.report)
    state = ledger.state()
    obligations = []
    for seq in document["included"]:
        row = state.obligations.get(seq)
        if row is None or member not in (row.debtor, row.creditor):
            continue
        owed_to_member = row.creditor == member
        obligations.append(
            {
                "seq": seq,
                "kind": row.kind,
                "counterparty": row.debtor if owed_to_member else row.creditor,
                "direction": "receivable" if owed_to_member else "payable",
                "amount_fen": row.amount_fen,
                "amount": yuan(row.amount_fen),
            }
        )
    position = next((p for p in document["positions"] if p["member"] == member), None)
    if position is None:
        raise NotFoundError(f"{member} has no position in the night of {day}")
    items = document["instructions"]
    mine = [i for i, item in enumerate(items) if member in (item["payer"], item["payee"])]
    proofs = item_proofs([canonical(item) for item in items], mine)
    instructions = []
    for index, proof in zip(mine, proofs, strict=True):
        verify_instruction(night.body, items[index], proof)
        instructions.append({**items[index], "proof": _proof_wire(proof)})
    return Statement(
        member,
        day,
        night.seq,
        obligations,
        position["receivable_fen"],
        position["payable_fen"],
        position["net_fen"],
        instructions,
    )


def _proof_wire(proof: InstructionProof) -> dict[str, Any]:
    return {
        "index": proof.index,
        "tree_size": proof.tree_size,
        "hashes": [b64encode(h) for h in proof.hashes],
    }


def statement_csv(result: Statement) -> str:
    """The statement as CSV (UTF-8 with a BOM): obligations, totals, instructions."""
    out = io.StringIO()
    out.write(CSV_BOM)
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["对账日 day", result.day.isoformat(), "成员 member", result.member])
    writer.writerow(
        ["来源序号 seq", "类型 kind", "对方 counterparty", "方向 direction", "金额(元)"]
    )
    for item in result.obligations:
        row = [item["seq"], item["kind"], item["counterparty"], item["direction"], item["amount"]]
        writer.writerow(row)
    writer.writerow(["应收合计 receivable", yuan(result.receivable_fen)])
    writer.writerow(["应付合计 payable", yuan(result.payable_fen)])
    writer.writerow(["净额 net", yuan(result.net_fen)])
    writer.writerow(
        ["指令 index", "付款方 payer", "收款方 payee", "金额(元)", "到期 due", "附言 reference"]
    )
    for item in result.instructions:
        writer.writerow(
            [
                item["index"],
                item["payer"],
                item["payee"],
                yuan(item["amount_fen"]),
                item["due"],
                item["reference"],
            ]
        )
    return out.getvalue()


def night_document(ledger: Ledger, day: date, member: str | None) -> dict[str, Any]:
    """``day``'s night as a reader sees it (ledger.access.sees_whole_night): the closing
    entry's seq and body (its totals and roots) and, for ``member=None`` (regions,
    auditors, the operator), the whole report, whose instructions anyone holding it can
    check against the body's root; for a member, its own statement, each of its
    instructions with its inclusion proof, checked before it is served."""
    night = verified_night(ledger, day)
    document: dict[str, Any] = {"day": day.isoformat(), "seq": night.seq, "body": night.body}
    if member is None:
        document["report"] = json.loads(night.report)
    else:
        document["statement"] = statement(ledger, member, day).wire()
    return document
