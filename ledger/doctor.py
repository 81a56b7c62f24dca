"""`alliance doctor`: compare everything derived from the leaves with the leaves.

The leaves (``log_entries``) are the truth. From them alone the doctor recomputes the
tiles and the inner nodes of full tiles, replays every entry through the rules with every
signature checked, and then names each disagreement with what is stored:

* ``leaf``: a log row whose columns disagree with its leaf bytes;
* ``rules``: a leaf the rules refuse (nothing derived can fix that: the log cannot go
  on past it; restore from an export taken before it);
* ``tile`` / ``nodes``: stored tiles or inner nodes that are not the leaves' hashes;
* ``checkpoint``: a stored checkpoint not signed by a declared operator key, or whose
  root is not the leaves' root at its size; ``unpublished`` when no valid checkpoint
  covers the head;
* ``cosignature``: a stored cosignature that does not verify under the declared witness;
* ``projection``: projection rows that differ from the replay, or (with the operator key)
  rows whose seal fails.

``repair`` (operator key, schema owner) rewrites what is derivable inside one transaction
with the guards of the derived tables lifted: tiles, nodes, projections; it drops the
checkpoint and cosignature rows that do not verify and signs a checkpoint of the head if
none verifies. It never touches a leaf.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Connection, delete, select

from ledger import merkle, projections, store
from ledger.app import Ledger, LogKeys, operator_verifier, row_verifier
from ledger.maintenance import unguarded
from ledger.publish import publish
from ledger.sequencer import lock_log
from ledger.state import State, admit, leaf_context
from ledger.tables import Checkpoint, Cosignature, MerkleTile, MerkleTileNodes
from schemas.errors import AllianceError, RejectedError, invariant
from schemas.limits import FINDINGS_MAX
from signing.checkpoint import add_cosignatures, verify_cosigned_checkpoint

DERIVED_LOG_TABLES = ("merkle_tiles", "merkle_tile_nodes", "checkpoints", "cosignatures")


@dataclass(frozen=True, slots=True)
class Finding:
    code: str
    message: str
    seq: int | None = None

    def wire(self) -> dict[str, object]:
        return {"code": self.code, "message": self.message, "seq": self.seq}


@dataclass
class Examination:
    size: int = 0
    findings: list[Finding] = field(default_factory=list)
    state: State = field(default_factory=State)
    tiles: dict[merkle.TileKey, bytes] = field(default_factory=dict)
    nodes: dict[merkle.TileKey, bytes] = field(default_factory=dict)
    refused_seq: int | None = None  # the first leaf the rules refuse
    bad_checkpoints: list[int] = field(default_factory=list)
    bad_cosignatures: list[tuple[int, str, str]] = field(default_factory=list)
    tiles_ok: bool = True
    projections_ok: bool = True
    head_checkpointed: bool = True

    @property
    def ok(self) -> bool:
        return not self.findings

    def add(self, code: str, message: str, seq: int | None = None) -> None:
        if len(self.findings) < FINDINGS_MAX:
            self.findings.append(Finding(code, message, seq))

    def wire(self) -> dict[str, object]:
        return {
            "size": self.size,
            "ok": self.ok,
            "findings": [finding.wire() for finding in self.findings],
        }


def examine(ledger: Ledger) -> Examination:
    """Every disagreement between the leaves and what is derived from them."""
    keys = ledger.log_keys()
    report = Examination()
    with ledger.engine.connect() as connection:
        report.size = store.head_size(connection)
        _replay_and_hash(connection, report)
        _compare_tiles(connection, report)
        _check_checkpoints(connection, keys, report)
        _check_projections(connection, ledger, report)
    return report


def _replay_and_hash(connection: Connection, report: Examination) -> None:
    """Replay every leaf (signatures checked) and recompute every tile from the leaves.
    Holds all recomputed tiles: a few percent of the log's size (issue 11 streams them)."""
    hashes: list[bytes] = []
    for stored in store.read_entries(connection, 0, report.size):
        leaf_hash = merkle.leaf_hash(stored.leaf)
        hashes.append(leaf_hash)
        _check_row(stored, leaf_hash, report)
        if report.refused_seq is None:
            try:
                admit(report.state, leaf_context(stored.leaf, expected_seq=stored.seq))
            except RejectedError as exc:
                report.refused_seq = stored.seq
                report.add("rules", f"the rules refuse this leaf: {exc}", stored.seq)
    if hashes:
        integration = merkle.integrate(0, {}, hashes)
        report.tiles, report.nodes = integration.tiles, integration.nodes


def _check_row(stored: store.StoredEntry, leaf_hash: bytes, report: Examination) -> None:
    if stored.leaf_hash != leaf_hash:
        report.add("leaf", "the stored leaf hash is not the hash of the leaf", stored.seq)
    try:
        ctx = leaf_context(stored.leaf, expected_seq=stored.seq)
    except AllianceError as exc:
        report.add("leaf", f"not a record: {exc}", stored.seq)
        return
    columns = (stored.entry_id, stored.kind, stored.signer)
    if columns != (str(ctx.entry.get("id")), ctx.kind, ctx.signer):
        report.add("leaf", "the row's id, kind or signer disagree with its leaf", stored.seq)


def _compare_tiles(connection: Connection, report: Examination) -> None:
    stored_tiles = _all(connection, MerkleTile.level, MerkleTile.idx, MerkleTile.hashes)
    stored_nodes = _all(
        connection, MerkleTileNodes.level, MerkleTileNodes.idx, MerkleTileNodes.nodes
    )
    for what, expected, stored in (
        ("tile", report.tiles, stored_tiles),
        ("nodes", report.nodes, stored_nodes),
    ):
        for key in sorted(set(expected) | set(stored)):
            if expected.get(key) != stored.get(key):
                report.tiles_ok = False
                state = (
                    "missing" if key not in stored else "extra" if key not in expected else "wrong"
                )
                report.add(what, f"{what} {key[0]}/{key[1]} is {state}")


def _all(connection: Connection, *columns: object) -> dict[merkle.TileKey, bytes]:
    rows = connection.execute(select(*columns))  # type: ignore[call-overload]
    return {(int(row[0]), int(row[1])): bytes(row[2]) for row in rows}


def _check_checkpoints(connection: Connection, keys: LogKeys, report: Examination) -> None:
    reader = merkle.MemoryTiles(report.tiles, report.nodes)
    newest_valid = 0
    for row in connection.execute(select(Checkpoint).order_by(Checkpoint.size)):
        size = int(row.size)
        stored = store.StoredCheckpoint(size, bytes(row.root), row.note, row.signed)
        good = row_verifier(keys, stored) is not None and size <= report.size
        good = good and merkle.root(size, reader) == stored.root
        if not good:
            report.bad_checkpoints.append(size)
            report.add("checkpoint", f"the checkpoint at size {size} does not verify", size)
            continue
        newest_valid = size
        _check_cosignatures(connection, keys, row.note, size, report)
    if newest_valid < report.size:
        report.head_checkpointed = False
        report.add(
            "unpublished", f"no valid checkpoint covers seqs {newest_valid}..{report.size - 1}"
        )


def _check_cosignatures(
    connection: Connection, keys: LogKeys, note: str, size: int, report: Examination
) -> None:
    verifier = operator_verifier(keys, note)
    invariant(verifier is not None, "cosignatures checked on a verified checkpoint only")
    assert verifier is not None
    witnesses = list(keys.witnesses.values())
    query = select(Cosignature.witness, Cosignature.line).where(Cosignature.size == size)
    # Judged line by line: a garbage line beside a genuine one condemns only itself.
    for witness, line in connection.execute(query):
        try:
            _, names = verify_cosigned_checkpoint(
                add_cosignatures(note, [line]), verifier, witnesses
            )
            good = witness in names
        except AllianceError:
            good = False
        if not good:
            report.bad_cosignatures.append((size, str(witness), str(line)))
            report.add(
                "cosignature", f"the cosignature of {witness} at size {size} does not verify"
            )


def _check_projections(connection: Connection, ledger: Ledger, report: Examination) -> None:
    if report.refused_seq is not None:
        return  # the replay stopped early: nothing to compare with
    expected = projections.state_rows(report.state)
    if ledger.operator is not None:
        sealer = ledger.writer.sealer_in(connection)
        stored = projections.read_sealed(connection, sealer)
        forged = projections.count_forged(connection, sealer)
        for name, count in sorted(forged.items()):
            report.projections_ok = False
            report.add("projection", f"{count} row(s) of {name} carry a seal that fails")
        if projections.sealed_head(connection, sealer, report.size) != report.size:
            report.projections_ok = False
            report.add("projection", f"no sealed projection head at size {report.size}")
    else:
        stored = projections.read_all(connection)
    for name in expected:
        if stored.get(name) != expected[name]:
            report.projections_ok = False
            report.add("projection", f"{name} differs from a replay of the log")


def repair(ledger: Ledger, now: datetime) -> Examination:
    """Examine, then rewrite what is derivable; returns the examination made before."""
    report = examine(ledger)
    sealer = ledger.writer.sealer  # before the repair's transaction opens
    operator = ledger.writer.operator
    with ledger.engine.begin() as connection:
        lock_log(connection)
        invariant(store.head_size(connection) == report.size, "the log grew during repair")
        with unguarded(connection, [*DERIVED_LOG_TABLES, *projections.SEALED_TABLES]):
            if not report.tiles_ok:
                connection.execute(delete(MerkleTileNodes))
                connection.execute(delete(MerkleTile))
                store.write_tiles(connection, report.tiles)
                store.write_nodes(connection, report.nodes)
            for size, witness, line in report.bad_cosignatures:
                connection.execute(
                    delete(Cosignature).where(
                        Cosignature.size == size,
                        Cosignature.witness == witness,
                        Cosignature.line == line,
                    )
                )
            for size in report.bad_checkpoints:
                connection.execute(delete(Cosignature).where(Cosignature.size == size))
                connection.execute(delete(Checkpoint).where(Checkpoint.size == size))
            if report.refused_seq is None and not report.projections_ok:
                projections.clear(connection)
                projections.write_all(connection, report.state, sealer)
        if report.refused_seq is None and not report.head_checkpointed and report.size:
            root = merkle.root(report.size, merkle.MemoryTiles(report.tiles, report.nodes))
            checkpoint = publish(report.state.origin, report.size, root, operator, now)
            store.insert_checkpoint(connection, checkpoint)
    # Committed: derived tables agree with the leaves again (the leaves were not touched).
    ledger.writer.forget()
    return report


def iter_findings(report: Examination) -> Iterator[str]:
    for finding in report.findings:
        where = f"seq {finding.seq}: " if finding.seq is not None else ""
        yield f"{where}[{finding.code}] {finding.message}"
