"""`alliance demo`: a simulated 满意消费长三角 alliance, end to end, then an audit.

The demo is the project's main job (DESIGN §7): it puts every party to work on one real
log (merchants and franchisees recording cross-store returns, the demonstration zone's
advance fund and platforms paying consumers first, each region's endorsement node,
disputes, the nightly reconciliation (the operator closes each day, the regions approve
it, payers pay and payees confirm; one instruction is left overdue), credit due process
(notice, objection, decision) and 信用修复 from real causes, member suspension and key
rotation, witnesses)
and then proves from the export alone, as an outside auditor would, that it all holds.

Deterministic under ``seed``: one ``random.Random(seed)`` drives every choice, keys come
from ``Keyring(seed=seed)``, entry ids from ``EntryFactory(seed)``, and time is a
simulated clock that is both the sequencer's log clock and every entry's time. The same
seed therefore gives the same entries, byte for byte, and the same root in any database.

Some submissions are bad on purpose. What the log itself must refuse (a return outside
the seller's window, an over-refund, a suspended member, a replaced key, …) is submitted
and counted as *refused*; it consumes no seq. What only a regulator can know (a
fabricated receipt, an advance without a complaint on file) passes the log's rules and is
*rejected* by the region's judge in its endorsement, which voids the obligation.
"""

from __future__ import annotations

from ops.demo.catalogue import yuan
from ops.demo.simulation import DemoOutcome, run_demo, simulate
from ops.demo.stage import Schedule
from ops.demo.summary import Summary

__all__ = ["DemoOutcome", "Schedule", "Summary", "run_demo", "simulate", "yuan"]
