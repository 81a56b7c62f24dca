"""A new region joins by configuration, not code: 湖南 (43) from docs/hunan.json takes
part like the YRD regions — its regulator enrols members, a return between Hunan and
Shanghai needs both regions' decisions, and the audit checks its witness."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from ledger.app import Ledger
from ledger.audit import audit_directory, load_trust
from ops.service import initialize, run_endorse, run_witness
from ops.world import EntryFactory, Keyring, entry_time, member_body
from tests.ledger.builders import one_item_return

HUNAN_CONFIG = Path(__file__).resolve().parents[2] / "docs" / "hunan.json"


def test_hunan_joins_by_configuration(db_url: str, tmp_path: Path) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    keys = tmp_path / "keys"
    result = initialize(db_url, keys, HUNAN_CONFIG, now)
    assert result["regions"] == ["31", "32", "33", "34", "43"]
    ring = Keyring.load(keys)
    assert "region:43" in ring.keys and "43" in ring.witnesses
    factory = EntryFactory()
    ledger = Ledger.open(db_url, ring.keys["operator"], clock=lambda: now)
    writer = ledger.writer
    seller, buyer = "91430100MA4L00001J", "91310000MA1FL1234Q"
    enrolments = ((seller, "43", "430102", []), (buyer, "31", "310101", [seller]))
    for member, region, division, network in enrolments:
        key = ring.ensure(member).public.wire()
        body = member_body(member, region, key, stores=[("S1", division)], network=network)
        writer.submit(factory.signed(ring, "member.enrolled", f"region:{region}", body, now))
    purchased = entry_time(now)
    refund = one_item_return(
        seller, purchased, number="HN-0001", amount_fen=12_800, refund_fen=12_800, sku="XJ-1"
    )
    target = writer.submit(factory.signed(ring, "return.recorded", buyer, refund, now)).seq
    trust = load_trust(keys / "trust.json")
    decided = {
        region: run_endorse(ledger, region, ring.keys[f"region:{region}"], trust, now)["approved"]
        for region in ("31", "32", "43")
    }
    assert decided == {"31": 1, "32": 0, "43": 1}  # only the regions the return touches
    for code in ("31", "32", "33", "34", "43"):
        run_witness(ledger, code, ring.witnesses[code], trust, now)
    report = audit_directory(ledger.export(tmp_path / "export").directory)
    assert report.ok, report.findings
    assert report.cosigned_by == ["31", "32", "33", "34", "43"]
    obligation = report.state.obligations.get(target)
    assert obligation is not None and obligation.status == "effective"
    ledger.close()
