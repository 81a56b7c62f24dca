"""Export, then audit as an outsider: an honest export passes; every kind of tampering
is found, and named by its seq where it has one. Proofs from the store verify against
checkpoint roots; witnesses refuse what is inconsistent with what they cosigned."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ledger import merkle, store
from ledger.audit import AuditReport, audit_directory
from ledger.export import CHECKPOINT_FILE, ENTRIES_FILE, TRUST_FILE
from ledger.publish import publish
from nodes.client import LocalClient
from nodes.witness import WitnessNode
from ops.service import trust_from_ledger
from ops.world import entry_time, witness_name
from schemas.canonical import canonical
from schemas.errors import NotFoundError, TamperedError, VerificationError
from signing.checkpoint import Checkpoint, add_cosignatures, sign_checkpoint
from signing.keys import PrivateKey
from signing.note import NoteSigner
from tests.conftest import Alliance
from tests.dbtools import snapshot
from tests.ledger.builders import one_item_return

EDITED = 5  # the enrolment whose line the edits change
RETURN_SEQ = 9  # a return.recorded (an amount to change)


def build_log(alliance: Alliance) -> None:
    """Seqs 1..8 enrolments (two batches), 9 a return, 10..11 its endorsements."""
    members = []
    for _ in range(2):
        alliance.clock.advance(minutes=5)
        documents = [
            alliance.enroll_doc(region=code, name=f"长三角联盟商户 {code}-{len(members)}")
            for code in ("31", "32", "33", "34")
        ]
        members += [document["entry"]["body"]["member"]["id"] for document in documents]
        for result in alliance.sequencer.submit_many(documents):
            assert not isinstance(result, Exception), result
    now = alliance.clock.advance(minutes=5)
    seller, buyer = members[0], members[1]  # regions 31 and 32
    purchased = entry_time(now)
    body = one_item_return(
        seller, purchased, number="POS-000123", amount_fen=25_800, refund_fen=12_900, sku="SKU-9"
    )
    ring, factory = alliance.ring, alliance.factory
    seq = alliance.sequencer.submit(factory.signed(ring, "return.recorded", buyer, body, now)).seq
    assert seq == RETURN_SEQ
    for code in ("31", "32"):
        approve = {"targets": [seq], "decision": "approve", "reason": ""}
        alliance.sequencer.submit(
            factory.signed(ring, "endorsement", f"region:{code}", approve, now)
        )
    alliance.cosign()


def read_lines(directory: Path) -> list[bytes]:
    return (directory / ENTRIES_FILE).read_bytes().split(b"\n")[:-1]


def write_lines(directory: Path, lines: list[bytes]) -> None:
    (directory / ENTRIES_FILE).write_bytes(b"".join(line + b"\n" for line in lines))


def edit_record(directory: Path, seq: int, change: Callable[[dict[str, Any]], None]) -> None:
    lines = read_lines(directory)
    record = json.loads(lines[seq])
    change(record)
    lines[seq] = canonical(record)  # still canonical: only the signature can tell
    write_lines(directory, lines)


def codes(report: AuditReport) -> set[tuple[int | None, str]]:
    return {(finding.seq, finding.code) for finding in report.findings}


def seqs(report: AuditReport) -> set[int | None]:
    return {finding.seq for finding in report.findings}


# --- the honest export ----------------------------------------------------------------------


def test_an_honest_export_passes_the_audit(alliance: Alliance, exported: Path) -> None:
    report = audit_directory(exported)
    assert report.ok, [str(f) for f in report.findings]
    assert report.size == report.checkpoint_size == 12
    assert sorted(report.cosigned_by) == ["31", "32", "33", "34"]
    snap = snapshot(alliance.engine)
    assert report.root == snap.latest.root
    assert read_lines(exported) == [entry.leaf for entry in snap.entries]
    trust = json.loads((exported / TRUST_FILE).read_text())
    assert trust["origin"] == alliance.config.origin
    assert set(trust["witness_keys"]) == {"31", "32", "33", "34"}
    # The export is the stored checkpoint and its stored cosignatures, never re-signed.
    with alliance.engine.connect() as connection:
        lines = store.cosignature_lines(connection, snap.latest.size)
    note = (exported / CHECKPOINT_FILE).read_text()
    assert note == add_cosignatures(snap.latest.note, lines)
    assert note.startswith(snap.latest.note)


def test_an_export_of_an_uncosigned_checkpoint_is_flagged(
    alliance: Alliance, tmp_path: Path
) -> None:
    alliance.sequencer.submit(alliance.enroll_doc())  # checkpoint 2, nobody cosigned it
    alliance.ledger.export(tmp_path)
    report = audit_directory(tmp_path)
    assert {code for _, code in codes(report)} == {"witness"}
    assert len(report.findings) == 4


# --- tampered entries --------------------------------------------------------------------------


def test_an_edited_name_is_found_at_its_seq(exported: Path) -> None:
    def rename(record: dict[str, Any]) -> None:
        record["entry"]["body"]["member"]["name"] = "上海某某商贸有限公司"

    edit_record(exported, EDITED, rename)
    report = audit_directory(exported)
    assert (EDITED, "bad-signature") in codes(report)
    assert (None, "root") in codes(report)
    assert seqs(report) == {EDITED, None}


def test_an_edited_amount_is_found_at_its_seq(exported: Path) -> None:
    def inflate(record: dict[str, Any]) -> None:
        record["entry"]["body"]["refund_fen"] = 1_290_000
        record["entry"]["body"]["items"][0]["refund_fen"] = 1_290_000
        record["entry"]["body"]["receipt"]["amount_fen"] = 2_580_000

    edit_record(exported, RETURN_SEQ, inflate)
    report = audit_directory(exported)
    assert (RETURN_SEQ, "bad-signature") in codes(report)
    assert RETURN_SEQ in seqs(report)


def test_an_edited_logged_time_is_found_by_the_root(exported: Path) -> None:
    def retime(record: dict[str, Any]) -> None:
        record["logged"] = record["logged"].replace("02:", "03:")

    edit_record(exported, EDITED, retime)
    report = audit_directory(exported)
    assert (None, "root") in codes(report)


def test_a_dropped_line_is_found_at_its_seq(exported: Path) -> None:
    lines = read_lines(exported)
    write_lines(exported, lines[:EDITED] + lines[EDITED + 1 :])
    report = audit_directory(exported)
    assert (EDITED, "gap") in codes(report)
    assert min(s for s in seqs(report) if s is not None) == EDITED


def test_a_dropped_last_line_is_found_at_its_seq(exported: Path) -> None:
    lines = read_lines(exported)
    write_lines(exported, lines[:-1])
    report = audit_directory(exported)
    assert (len(lines) - 1, "size") in codes(report)


def test_an_extra_line_is_found(exported: Path) -> None:
    lines = read_lines(exported)
    write_lines(exported, [*lines, lines[-1]])
    report = audit_directory(exported)
    assert (len(lines), "gap") in codes(report)
    assert any(code == "size" for _, code in codes(report))


def test_swapped_lines_are_found_at_both_seqs(exported: Path) -> None:
    lines = read_lines(exported)
    lines[3], lines[7] = lines[7], lines[3]
    write_lines(exported, lines)
    report = audit_directory(exported)
    assert {(3, "gap"), (7, "gap")} <= codes(report)


@pytest.mark.parametrize("how", ["reordered keys", "whitespace", "escaped unicode"])
def test_a_non_canonical_line_is_found_at_its_seq(exported: Path, how: str) -> None:
    lines = read_lines(exported)
    record = json.loads(lines[EDITED])
    if how == "reordered keys":
        reordered = {key: record[key] for key in reversed(sorted(record))}
        lines[EDITED] = json.dumps(reordered, ensure_ascii=False, separators=(",", ":")).encode()
    elif how == "whitespace":
        lines[EDITED] = json.dumps(record, ensure_ascii=False, sort_keys=True).encode()
    else:
        lines[EDITED] = json.dumps(record, sort_keys=True, separators=(",", ":")).encode()
    assert lines[EDITED] != canonical(record) and json.loads(lines[EDITED]) == record
    write_lines(exported, lines)
    report = audit_directory(exported)
    assert (EDITED, "canonical") in codes(report)
    assert seqs(report) <= {EDITED, None}


def test_a_line_that_is_not_a_record_is_found_at_its_seq(exported: Path) -> None:
    lines = read_lines(exported)
    lines[EDITED] = b'{"seq": 5, "oops"'
    write_lines(exported, lines)
    assert (EDITED, "malformed") in codes(audit_directory(exported))


# --- tampered checkpoint, cosignatures, trust root ----------------------------------------------


def _note_parts(directory: Path) -> tuple[str, list[str]]:
    note = (directory / CHECKPOINT_FILE).read_text()
    text, _, signatures = note.rpartition("\n\n")
    return text + "\n", [line + "\n" for line in signatures.splitlines()]


def test_a_checkpoint_resigned_with_another_key_is_found(
    alliance: Alliance, exported: Path
) -> None:
    text, cosignatures = _note_parts(exported)
    forger = NoteSigner(alliance.config.origin, PrivateKey.from_seed(b"forger"))
    forged = sign_checkpoint(Checkpoint.parse(text), forger)
    (exported / CHECKPOINT_FILE).write_text(forged + "".join(cosignatures[1:]))
    report = audit_directory(exported)
    assert (None, "checkpoint") in codes(report)
    assert report.checkpoint_size is None


def test_a_checkpoint_with_a_changed_root_is_found(exported: Path) -> None:
    text, signatures = _note_parts(exported)
    checkpoint = Checkpoint.parse(text)
    changed = Checkpoint(checkpoint.origin, checkpoint.size, bytes(32)).body()
    (exported / CHECKPOINT_FILE).write_text(changed + "\n" + "".join(signatures))
    assert (None, "checkpoint") in codes(audit_directory(exported))


def test_a_checkpoint_of_another_tree_signed_by_the_log_key_is_found(
    alliance: Alliance, exported: Path
) -> None:
    """Even the operator's own key cannot vouch for a root the entries do not have, and
    the witnesses' cosignatures do not carry over."""
    text, _ = _note_parts(exported)
    checkpoint = Checkpoint.parse(text)
    other = Checkpoint(checkpoint.origin, checkpoint.size, bytes(range(32)))
    signer = NoteSigner(alliance.config.origin, alliance.ring.keys["operator"])
    (exported / CHECKPOINT_FILE).write_text(sign_checkpoint(other, signer))
    report = audit_directory(exported)
    assert (None, "root") in codes(report)
    assert len([f for f in report.findings if f.code == "witness"]) == 4


def test_a_removed_cosignature_is_found(alliance: Alliance, exported: Path) -> None:
    text, signatures = _note_parts(exported)
    name = witness_name(alliance.config.origin, "32")
    kept = [line for line in signatures if not line.startswith(f"— {name} ")]
    assert len(kept) == len(signatures) - 1
    (exported / CHECKPOINT_FILE).write_text(text + "\n" + "".join(kept))
    report = audit_directory(exported)
    assert codes(report) == {(None, "witness")}
    assert "32" in report.findings[0].message
    assert sorted(report.cosigned_by) == ["31", "33", "34"]


def test_a_cosignature_of_another_checkpoint_is_found(alliance: Alliance, exported: Path) -> None:
    with alliance.engine.connect() as connection:
        old_lines = store.cosignature_lines(connection, 1)  # cosigned the genesis checkpoint
    text, signatures = _note_parts(exported)
    name = witness_name(alliance.config.origin, "33")
    swapped = [line for line in signatures if not line.startswith(f"— {name} ")]
    swapped += [line for line in old_lines if line.startswith(f"— {name} ")]
    (exported / CHECKPOINT_FILE).write_text(text + "\n" + "".join(swapped))
    report = audit_directory(exported)
    assert not report.ok
    assert {code for _, code in codes(report)} <= {"checkpoint", "witness"}


def test_a_swapped_trust_root_is_found(exported: Path) -> None:
    trust = json.loads((exported / TRUST_FILE).read_text())
    signer = NoteSigner(trust["origin"], PrivateKey.from_seed(b"impostor"))
    trust["log_key"] = signer.vkey
    (exported / TRUST_FILE).write_text(json.dumps(trust))
    report = audit_directory(exported)
    assert (None, "checkpoint") in codes(report)
    assert (0, "trust") in codes(report)


# --- proofs --------------------------------------------------------------------------------------


def test_store_proofs_verify_against_every_checkpoint_root(alliance: Alliance) -> None:
    build_log(alliance)
    alliance.sequencer.submit_many([alliance.enroll_doc() for _ in range(300)])
    snap = snapshot(alliance.engine)
    sizes = [checkpoint.size for checkpoint in snap.checkpoints]
    roots = {checkpoint.size: checkpoint.root for checkpoint in snap.checkpoints}
    with alliance.engine.connect() as connection:
        tiles = store.DbTiles(connection)
        for size in sizes:
            for seq in sorted({0, size // 2, size - 1, min(size - 1, 256)}):
                proof = merkle.inclusion_proof(seq, size, tiles)
                leaf_hash = snap.entries[seq].leaf_hash
                merkle.verify_inclusion(leaf_hash, seq, size, proof, roots[size])
                with pytest.raises(VerificationError):
                    other = snap.entries[(seq + 1) % size].leaf_hash
                    if other == leaf_hash:
                        raise VerificationError("a tree of one leaf proves nothing else")
                    merkle.verify_inclusion(other, seq, size, proof, roots[size])
        for old in sizes:
            for new in sizes:
                if old > new:
                    continue
                proof = merkle.consistency_proof(old, new, tiles)
                merkle.verify_consistency(old, new, roots[old], roots[new], proof)
                if 0 < old < new:
                    with pytest.raises(VerificationError):
                        merkle.verify_consistency(old, new, roots[new], roots[new], proof)
        with pytest.raises(NotFoundError):
            merkle.inclusion_proof(0, snap.head + 1, tiles)


# --- witnesses -----------------------------------------------------------------------------------


def _witness(alliance: Alliance, region: str = "31", key: PrivateKey | None = None) -> Any:
    node = WitnessNode(
        region, key or alliance.ring.witnesses[region], trust_from_ledger(alliance.ledger)
    )
    return node.cosign(LocalClient(alliance.ledger), alliance.clock())


def test_cosigning_is_idempotent_per_size(alliance: Alliance) -> None:
    alliance.sequencer.submit(alliance.enroll_doc())
    first = _witness(alliance)
    assert (first.old_size, first.size) == (1, 2)
    before = snapshot(alliance.engine).cosignatures
    again = _witness(alliance)
    assert (again.old_size, again.size) == (2, 2)
    assert snapshot(alliance.engine).cosignatures == before


def test_cosigning_requires_the_regions_witness_key(alliance: Alliance) -> None:
    alliance.sequencer.submit(alliance.enroll_doc())
    before = snapshot(alliance.engine).cosignatures
    with pytest.raises(VerificationError):
        _witness(alliance, "31", alliance.ring.witnesses["32"])
    with pytest.raises(VerificationError):
        _witness(alliance, "31", alliance.ring.keys["region:31"])
    with pytest.raises(NotFoundError):
        _witness(alliance, "43", alliance.ring.witnesses["31"])
    assert snapshot(alliance.engine).cosignatures == before


@pytest.mark.parametrize("honest", [True, False])
def test_a_witness_refuses_a_checkpoint_inconsistent_with_its_last(
    alliance: Alliance, honest: bool
) -> None:
    """The operator appends a leaf and signs a checkpoint for it; a witness cosigns it
    only if it extends the checkpoint the witness cosigned before."""
    alliance.sequencer.submit_many([alliance.enroll_doc() for _ in range(3)])
    alliance.cosign()
    before = snapshot(alliance.engine)
    size = before.head
    entry_id = "00000000-0000-4000-8000-000000000004"
    # Not a record the sequencer wrote, but its columns match it (the log's insert guard).
    fake = {"entry": {"id": entry_id, "kind": "member.enrolled", "signer": "region:31"}}
    leaf = canonical({**fake, "seq": size})
    with alliance.engine.begin() as connection:
        tiles = store.DbTiles(connection).read_tiles(merkle.frontier_tile_keys(size))
        integration = merkle.integrate(size, tiles, [merkle.leaf_hash(leaf)])
        entry = store.StoredEntry(
            size, entry_id, bytes(32), "member.enrolled",
            "region:31", before.latest.signed, leaf, merkle.leaf_hash(leaf),
        )  # fmt: skip
        store.insert_entries(connection, [entry])
        store.write_tiles(connection, integration.tiles)
        root = integration.root if honest else merkle.leaf_hash(b"a forked tree")
        operator = alliance.ring.keys["operator"]
        checkpoint = publish(alliance.config.origin, size + 1, root, operator, alliance.clock())
        store.insert_checkpoint(connection, checkpoint)

    if honest:
        cosigned = _witness(alliance)
        assert (cosigned.old_size, cosigned.size) == (size, size + 1)
    else:
        # The log's own server refuses to hand out a proof that does not verify
        # (TamperedError); a witness given one anyway refuses it (VerificationError).
        with pytest.raises((VerificationError, TamperedError)):
            _witness(alliance)
        with alliance.engine.connect() as connection:
            assert store.last_cosigned_size(connection, cosigned_name(alliance)) == size
            assert store.cosignature_lines(connection, size + 1) == []


def cosigned_name(alliance: Alliance, region: str = "31") -> str:
    return witness_name(alliance.config.origin, region)
