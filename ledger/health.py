"""What an operator watches (issue 9, /healthz and /metrics), read through the front
door: whether this process's writer holds the log, each witness's last verified
cosignature, and what each region still has to endorse."""

from __future__ import annotations

from ledger.app import Ledger, operator_verifier
from signing.checkpoint import verify_cosigned_checkpoint


def writer_ready(ledger: Ledger) -> int:
    """The log size once this process's writer has taken the log's lock and synced its
    verified state to the head (raises whatever stops it: no key, no database, a halted
    writer, a tampered log)."""
    return ledger.state().size


def last_cosignatures(ledger: Ledger) -> dict[str, int | None]:
    """Per region, the time (Unix seconds) of its witness's newest cosignature that
    verifies under the witness key the log declared; None if it has cosigned none."""
    keys = ledger.log_keys()
    times: dict[str, int | None] = {}
    for region, witness in sorted(keys.witnesses.items()):
        checkpoint = ledger.last_cosigned(region)
        times[region] = None
        if checkpoint is None:
            continue
        verifier = operator_verifier(keys, checkpoint.note)
        if verifier is None:
            continue
        _, cosigned = verify_cosigned_checkpoint(checkpoint.note, verifier, [witness])
        times[region] = cosigned.get(witness.name)
    return times


def endorsement_backlog(ledger: Ledger) -> dict[str, int]:
    """Per region, the pending entries it must still decide."""
    reads = ledger.reads()
    return {region: len(reads.awaiting(region)) for region in sorted(ledger.log_keys().witnesses)}
