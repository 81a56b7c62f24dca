"""The witness's side of C2SP tlog-witness: the add-checkpoint body byte for byte
against the spec's own example, every refusal the spec names (in-process), and the
exchange over HTTP with `alliance witness --listen` in its own process."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from ledger.audit import Trust
from nodes.tlog import SIZE_MEDIA_TYPE, AddCheckpoint, TlogWitness
from ops.process import alliance_server
from ops.service import trust_from_ledger, trust_of
from schemas.errors import (
    ConflictError,
    ForbiddenError,
    MalformedError,
    NotFoundError,
    StaleSizeError,
    VerificationError,
)
from signing.checkpoint import (
    COSIGNATURE_SIZE,
    Checkpoint,
    CosignatureVerifier,
    open_checkpoint,
    sign_checkpoint,
    verify_cosignature,
)
from signing.keys import PrivateKey
from signing.note import NoteSigner, parse_note, parse_signature_line
from tests.conftest import Alliance

EXAMPLE = Path(__file__).resolve().parents[1] / "fixtures" / "c2sp-tlog-witness-example.txt"
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
# The grammar of a response line: "— <name> <base64 of key hash, timestamp, signature>".
RESPONSE_LINE = re.compile(r"\u2014 [^ +\n]+ [A-Za-z0-9+/]{102}==\n")


def _example() -> tuple[bytes, bytes]:
    text = EXAMPLE.read_text(encoding="utf-8")
    body = "".join(line for line in text.splitlines(keepends=True) if not line.startswith("#"))
    _, request, response = body.split("=== ")
    return (
        request.removeprefix("request\n").encode("utf-8"),
        response.removeprefix("response\n").encode("utf-8"),
    )


def test_the_spec_example_request_is_read_and_written_byte_for_byte() -> None:
    request, _ = _example()
    parsed = AddCheckpoint.parse(request)
    assert parsed.old_size == 20852014
    assert len(parsed.proof) == 4
    text, signatures = parse_note(parsed.note)
    assert Checkpoint.parse(text).size == 20852163
    assert [s.name for s in signatures] == ["example.com/behind-the-sofa"] * 2
    assert parsed.body() == request


def test_the_spec_example_response_lines_are_cosignatures_shaped_as_ours(
    alliance: Alliance, tmp_path: Path
) -> None:
    _, response = _example()
    lines = response.decode("utf-8").splitlines(keepends=True)
    assert len(lines) == 3
    for line in lines:
        assert RESPONSE_LINE.fullmatch(line)
        # A key hash, then 8 + 64 bytes (the example's bytes are not a real timestamp and
        # signature: only their shape is the spec's).
        assert len(parse_signature_line(line[:-1]).signature) == COSIGNATURE_SIZE
    witness, _ = _witness(alliance, tmp_path)
    ours = witness.add_checkpoint(_request(alliance, 0), NOW)
    assert RESPONSE_LINE.fullmatch(ours)


def _witness(alliance: Alliance, tmp_path: Path, region: str = "31") -> tuple[TlogWitness, Trust]:
    trust = trust_from_ledger(alliance.ledger)
    state = tmp_path / f"region-{region}.witness.state.json"
    return TlogWitness(region, alliance.ring.witnesses[region], trust, state), trust


def _request(alliance: Alliance, old: int, note: str | None = None) -> AddCheckpoint:
    ledger = alliance.ledger
    note = note or ledger.signed_checkpoint().note
    size = Checkpoint.parse(parse_note(note)[0]).size
    proof = ledger.consistency(old, size).hashes if 0 < old < size else []
    return AddCheckpoint(old, tuple(proof), note)


def _grow(alliance: Alliance) -> None:
    result = alliance.ledger.submit(alliance.enroll_doc("31"))
    assert result.seq > 0


def test_the_witness_cosigns_from_its_last_size_and_keeps_it(
    alliance: Alliance, tmp_path: Path
) -> None:
    witness, trust = _witness(alliance, tmp_path)
    line = witness.add_checkpoint(_request(alliance, 0), NOW)
    first = open_checkpoint(alliance.ledger.signed_checkpoint().note, trust.log)
    own = trust.witnesses["31"]
    assert verify_cosignature(first, parse_signature_line(line[:-1]), own) == int(NOW.timestamp())
    _grow(alliance)
    with pytest.raises(StaleSizeError) as stale:
        witness.add_checkpoint(_request(alliance, 0), NOW)
    assert stale.value.size == first.size
    witness.add_checkpoint(_request(alliance, first.size), NOW)
    # A restarted witness reads what it cosigned from its state file.
    again, _ = _witness(alliance, tmp_path)
    assert again.last is not None
    assert again.last.size == alliance.ledger.signed_checkpoint().size


def test_the_witness_refuses_what_the_spec_refuses(alliance: Alliance, tmp_path: Path) -> None:
    witness, trust = _witness(alliance, tmp_path)
    witness.add_checkpoint(_request(alliance, 0), NOW)
    size = witness.last.size if witness.last else 0
    _grow(alliance)
    _grow(alliance)
    good = _request(alliance, size)
    new = Checkpoint.parse(parse_note(good.note)[0])
    operator = NoteSigner(trust.origin, alliance.ring.keys["operator"])
    forked = sign_checkpoint(Checkpoint(trust.origin, new.size, bytes(32)), operator)
    with pytest.raises(VerificationError):  # 422: the proof does not lead to this root
        witness.add_checkpoint(AddCheckpoint(size, good.proof, forked), NOW)
    other = NoteSigner("example.com/other-log", PrivateKey.generate())
    with pytest.raises(NotFoundError):  # 404: a log this witness does not know
        witness.add_checkpoint(
            AddCheckpoint(0, (), sign_checkpoint(Checkpoint(other.name, 1, bytes(32)), other)),
            NOW,
        )
    impostor = NoteSigner(trust.origin, PrivateKey.generate())
    with pytest.raises(ForbiddenError):  # 403: not signed by the trusted log key
        witness.add_checkpoint(AddCheckpoint(size, good.proof, sign_checkpoint(new, impostor)), NOW)
    with pytest.raises(MalformedError):  # 400: an old size above the checkpoint's
        witness.add_checkpoint(AddCheckpoint(new.size + 1, (), good.note), NOW)
    same = sign_checkpoint(Checkpoint(trust.origin, size, bytes(32)), operator)
    with pytest.raises(ConflictError):  # 409: another root for the size it cosigned
        witness.add_checkpoint(AddCheckpoint(size, (), same), NOW)
    assert witness.last is not None and witness.last.size == size  # nothing was cosigned
    witness.add_checkpoint(good, NOW)
    assert witness.last.size == new.size


@pytest.mark.parametrize(
    "body",
    [b"", b"old 01\n\nx", b"old 1\nnot-base64\n\nx", b"new 1\n\nx", b"old 1\nx"],
)
def test_malformed_bodies_are_refused(body: bytes) -> None:
    with pytest.raises(MalformedError):
        AddCheckpoint.parse(body)


def test_the_exchange_over_http_with_a_witness_in_its_own_process(
    alliance: Alliance, tmp_path: Path
) -> None:
    keys = tmp_path / "keys"
    alliance.ring.witnesses["31"].save(keys / "region-31.witness.pem")
    trust = trust_from_ledger(alliance.ledger)
    (keys / "trust.json").write_text(
        __import__("json").dumps(trust_of(alliance.ledger.log_keys(), trust.log.vkey))
    )
    command = ["witness", "--region", "31", "--key", str(keys / "region-31.witness.pem")]
    with alliance_server(command, ready_path="/add-checkpoint") as url:
        first = _request(alliance, 0)
        answer = httpx.post(f"{url}/add-checkpoint", content=first.body())
        assert answer.status_code == 200, answer.text
        checkpoint = open_checkpoint(first.note, trust.log)
        own = CosignatureVerifier.from_vkey(trust.witnesses["31"].vkey)
        assert RESPONSE_LINE.fullmatch(answer.text)
        verify_cosignature(checkpoint, parse_signature_line(answer.text[:-1]), own)
        _grow(alliance)
        stale = httpx.post(f"{url}/add-checkpoint", content=_request(alliance, 0).body())
        assert stale.status_code == 409
        assert stale.headers["content-type"] == SIZE_MEDIA_TYPE
        assert stale.content == f"{checkpoint.size}\n".encode()
        good = _request(alliance, checkpoint.size)
        bad = AddCheckpoint(good.old_size, tuple(bytes(32) for _ in good.proof), good.note)
        refused = httpx.post(f"{url}/add-checkpoint", content=bad.body())
        assert refused.status_code == 422
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert httpx.post(f"{url}/add-checkpoint", content=good.body()).status_code == 200
