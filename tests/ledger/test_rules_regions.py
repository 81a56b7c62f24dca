"""Regions and the operator on the running log (issue 7 §5): a region joins with its keys
and witness, signed by the operator, every current region and itself; a region or the
operator rotates its keys, signed by its old key and every (other) region. Each rule has
a refusal (error class, message, field, state unchanged) and an acceptance at its edge."""

from __future__ import annotations

from typing import Any

import pytest

from ledger.rows import KeyRow, RegionRow
from ledger.state import OPERATOR, operator_keys_at, region_principal
from ops.world import witness_name
from schemas.errors import MalformedError, PolicyError, SignatureError, UnknownPrincipalError
from schemas.limits import REGIONS_MAX
from signing.entry import submitted
from signing.keys import PrivateKey, b64encode, key_id
from tests.ledger.builders import LedgerWorld, due_regions, refused, return_body

HUNAN = "43"
# The identity point: small order, so anyone could "sign" under it (tests/signing).
WEAK_PUB = bytes([1]) + bytes(31)
WEAK_KEY = {"key": key_id(WEAK_PUB), "pub": b64encode(WEAK_PUB)}


@pytest.fixture
def world() -> LedgerWorld:
    return LedgerWorld()


def regions(world: LedgerWorld) -> list[str]:
    return [region_principal(code) for code in world.state.region_codes()]


def joined_body(world: LedgerWorld, code: str = HUNAN, **region: Any) -> dict[str, Any]:
    key = world.ring.ensure(region_principal(code))
    witness = world.ring.ensure_witness(code)
    body = {
        "code": code,
        "name": "湖南省市场监督管理局",
        "keys": [key.public.wire()],
        "witness": {"name": witness_name(world.config.origin, code), "pub": witness.public.b64},
    }
    body.update(region)
    return {"region": body}


def join(world: LedgerWorld, body: dict[str, Any], signers: list[str] | None = None) -> Any:
    """A region.joined signed by the operator, every region and the joining one."""
    joining = region_principal(body["region"]["code"])
    if signers is None:
        signers = list(dict.fromkeys([OPERATOR, *regions(world), joining]))
    return world.sign_by("region.joined", signers, body)


def new_key(world: LedgerWorld, principal: str, generation: int = 2) -> PrivateKey:
    """A fresh key for ``principal`` in the ring (the old one is kept as ``old``)."""
    world.ring.keys[f"{principal}#old"] = world.ring.keys[principal]
    return world.ring.rotate(principal, generation)


def rotation(
    world: LedgerWorld, kind: str, signer: str, body: dict[str, Any], signers: list[str]
) -> Any:
    """``kind`` signed by the old keys of ``signers`` (``signer`` first)."""
    entry = world.factory.entry(kind, signer, body, world.now)
    keys = [world.ring.keys.get(f"{p}#old", world.ring.keys[p]) for p in signers]
    return submitted(entry, *keys)


# --- region.joined ---------------------------------------------------------------------------


def test_a_region_joins_the_running_log_and_takes_part(world: LedgerWorld) -> None:
    seller = world.enroll("31", stores=[("S1", "310101")])
    seq = world.submit(join(world, joined_body(world)))
    row = world.state.region(HUNAN)
    assert isinstance(row, RegionRow) and row.joined_seq == seq
    assert row.witness_name == witness_name(world.config.origin, HUNAN)
    key = world.ring.keys["region:43"].key_id
    assert world.state.key(key) == KeyRow(
        key, "region:43", world.ring.keys["region:43"].public.b64, seq + 1, None
    )
    hunan = world.enroll(HUNAN, stores=[("S1", "430102")], network=[seller])
    body = return_body(world, seller, purchased_days_ago=0)
    target = world.submit(world.sign("return.recorded", hunan, body))
    assert due_regions(world.state, target) == ["31", "43"]
    assert world.replay() == world.state


def test_a_region_joins_only_with_its_own_signature(world: LedgerWorld) -> None:
    sub = join(world, joined_body(world), [OPERATOR, *regions(world)])
    error = refused(world, sub, SignatureError, "must also be signed by region:43")
    assert error.field == "signatures"


def test_a_region_joins_only_with_every_current_region(world: LedgerWorld) -> None:
    signers = [OPERATOR, "region:31", "region:32", "region:33", "region:43"]
    error = refused(world, join(world, joined_body(world), signers), SignatureError, "region:34")
    assert error.field == "signatures"


def test_a_region_is_admitted_by_the_operator(world: LedgerWorld) -> None:
    body = joined_body(world)
    signers = ["region:31", OPERATOR, "region:32", "region:33", "region:34", "region:43"]
    sub = world.sign_by("region.joined", signers, body)
    error = refused(world, sub, PolicyError, "admitted by the operator")
    assert error.field == "signer"


def test_a_region_cannot_join_twice(world: LedgerWorld) -> None:
    body = joined_body(world, "31", keys=[PrivateKey.from_seed(b"another 31").public.wire()])
    body["region"]["witness"]["name"] = "another/witness"
    signers = [OPERATOR, *regions(world)]
    error = refused(world, join(world, body, signers), PolicyError, "region 31 is already")
    assert error.field == "body.region.code"


def test_a_joining_region_brings_keys_no_one_holds(world: LedgerWorld) -> None:
    member = world.enroll("31", stores=[("S1", "310101")])
    world.ring.keys["region:43"] = world.ring.keys[member]  # the member's key, reused
    body = joined_body(world)
    error = refused(world, join(world, body), PolicyError, "is already registered")
    assert error.field == "body.region.keys.0"


def test_a_joining_region_lists_a_key_once(world: LedgerWorld) -> None:
    body = joined_body(world)
    body["region"]["keys"] *= 2
    error = refused(world, join(world, body), PolicyError, "listed twice")
    assert error.field == "body.region.keys"


def test_a_joining_region_brings_no_weak_key(world: LedgerWorld) -> None:
    body = joined_body(world)
    body["region"]["keys"].append(WEAK_KEY)
    error = refused(world, join(world, body), MalformedError, "small-order")
    assert error.field == "body.region.keys.1"


def test_a_joining_witness_has_a_usable_key(world: LedgerWorld) -> None:
    body = joined_body(world)
    body["region"]["witness"]["pub"] = WEAK_KEY["pub"]
    error = refused(world, join(world, body), MalformedError, "small-order")
    assert error.field == "body.region.witness.pub"


def test_a_joining_witness_has_a_name_of_its_own(world: LedgerWorld) -> None:
    body = joined_body(world)
    body["region"]["witness"]["name"] = witness_name(world.config.origin, "32")
    error = refused(world, join(world, body), PolicyError, "region 32's")
    assert error.field == "body.region.witness.name"


def test_a_joining_witness_has_a_key_of_its_own(world: LedgerWorld) -> None:
    body = joined_body(world)
    body["region"]["witness"]["pub"] = world.ring.witnesses["33"].public.b64
    error = refused(world, join(world, body), PolicyError, "region 33's")
    assert error.field == "body.region.witness.pub"


def test_the_log_has_at_most_regions_max_regions(world: LedgerWorld) -> None:
    codes = [f"{n}" for n in range(10, 100) if f"{n}" not in world.state.region_codes()]
    while len(world.state.regions) < REGIONS_MAX:  # the last one joins: the edge
        world.submit(join(world, joined_body(world, codes.pop(0))))
    assert len(world.state.regions) == REGIONS_MAX
    error = refused(world, join(world, joined_body(world, codes.pop(0))), PolicyError, "40")
    assert error.field == "body.region.code"


# --- region.keys_changed ------------------------------------------------------------------


def region_rotation(world: LedgerWorld, code: str = "31", signers: list[str] | None = None) -> Any:
    principal = region_principal(code)
    key = new_key(world, principal)
    others = [p for p in regions(world) if p != principal]
    body = {"region": code, "keys": [key.public.wire()]}
    return rotation(world, "region.keys_changed", principal, body, signers or [principal, *others])


def test_a_region_rotates_its_keys(world: LedgerWorld) -> None:
    member = world.enroll("31", stores=[("S1", "310101")])
    seq = world.submit(region_rotation(world))
    old = world.state.key(world.ring.keys["region:31#old"].key_id)
    assert old is not None and old.until_seq == seq
    new = world.state.key(world.ring.keys["region:31"].key_id)
    assert new is not None and (new.from_seq, new.until_seq) == (seq + 1, None)
    status = {"member": member, "reason": "inspection"}
    stale = rotation(world, "member.suspended", "region:31", status, ["region:31"])
    refused(world, stale, SignatureError, "was replaced at seq")
    world.submit(world.sign("member.suspended", "region:31", status))  # the new key signs
    assert world.replay() == world.state


def test_a_region_rotates_only_with_every_other_region(world: LedgerWorld) -> None:
    sub = region_rotation(world, signers=["region:31", "region:32", "region:33"])
    error = refused(world, sub, SignatureError, "must also be signed by region:34")
    assert error.field == "signatures"


def test_a_region_rotates_only_its_own_keys(world: LedgerWorld) -> None:
    key = new_key(world, "region:31")
    body = {"region": "31", "keys": [key.public.wire()]}
    signers = ["region:32", "region:31", "region:33", "region:34"]
    sub = rotation(world, "region.keys_changed", "region:32", body, signers)
    error = refused(world, sub, PolicyError, "only region:31 rotates")
    assert error.field == "signer"


def test_an_unknown_region_rotates_nothing(world: LedgerWorld) -> None:
    key = world.ring.ensure("region:43")
    body = {"region": HUNAN, "keys": [key.public.wire()]}
    sub = world.sign_by("region.keys_changed", ["region:43"], body)
    error = refused(world, sub, UnknownPrincipalError, "region:43 is not a region")
    assert error.field == "signer"
    body = {"region": HUNAN, "keys": [key.public.wire()]}
    sub = world.sign_by("region.keys_changed", regions(world), body)
    error = refused(world, sub, PolicyError, "region 43 is not in this log")
    assert error.field == "body.region"


def test_a_region_rotates_to_keys_no_one_holds(world: LedgerWorld) -> None:
    member = world.enroll("31", stores=[("S1", "310101")])
    body = {"region": "31", "keys": [world.ring.keys[member].public.wire()]}
    sub = world.sign_by("region.keys_changed", regions(world), body)
    error = refused(world, sub, PolicyError, "is already registered")
    assert error.field == "body.keys.0"


def test_a_region_rotates_to_no_weak_key(world: LedgerWorld) -> None:
    body = {"region": "31", "keys": [WEAK_KEY]}
    sub = world.sign_by("region.keys_changed", regions(world), body)
    error = refused(world, sub, MalformedError, "small-order")
    assert error.field == "body.keys.0"


# --- operator.keys_changed ----------------------------------------------------------------


def operator_rotation(world: LedgerWorld, signers: list[str] | None = None) -> Any:
    key = new_key(world, OPERATOR)
    body = {"keys": [key.public.wire()]}
    return rotation(
        world, "operator.keys_changed", OPERATOR, body, signers or [OPERATOR, *regions(world)]
    )


def test_the_operator_rotates_its_keys_and_checkpoints_follow(world: LedgerWorld) -> None:
    seq = world.submit(operator_rotation(world))
    old = world.ring.keys["operator#old"].key_id
    new = world.ring.keys[OPERATOR].key_id

    def signers_at(size: int) -> list[str]:
        return [row.key_id for row in operator_keys_at(world.state, size)]

    assert signers_at(seq) == [old]
    # The checkpoint that first includes the rotation is the old key's last: the hand-over.
    assert sorted(signers_at(seq + 1)) == sorted([old, new])
    assert signers_at(seq + 2) == [new]
    policy = world.state.policy.model_dump()
    stale = rotation(world, "policy.adopted", OPERATOR, policy, [OPERATOR, *regions(world)])
    refused(world, stale, SignatureError, "was replaced at seq")
    world.submit(world.sign_by("policy.adopted", [OPERATOR, *regions(world)], policy))
    assert world.replay() == world.state


def test_the_operator_rotates_only_with_every_region(world: LedgerWorld) -> None:
    sub = operator_rotation(world, [OPERATOR, "region:31", "region:32", "region:33"])
    error = refused(world, sub, SignatureError, "must also be signed by region:34")
    assert error.field == "signatures"


def test_only_the_operator_rotates_the_operator_keys(world: LedgerWorld) -> None:
    key = new_key(world, OPERATOR)
    body = {"keys": [key.public.wire()]}
    signers = ["region:31", OPERATOR, "region:32", "region:33", "region:34"]
    sub = rotation(world, "operator.keys_changed", "region:31", body, signers)
    error = refused(world, sub, PolicyError, "the operator rotates its own keys")
    assert error.field == "signer"


def test_the_operator_rotates_to_keys_no_one_holds(world: LedgerWorld) -> None:
    body = {"keys": [world.ring.keys["region:32"].public.wire()]}
    sub = world.sign_by("operator.keys_changed", [OPERATOR, *regions(world)], body)
    error = refused(world, sub, PolicyError, "is already registered")
    assert error.field == "body.keys.0"


def test_the_operator_rotates_to_no_weak_key(world: LedgerWorld) -> None:
    body = {"keys": [world.ring.keys[OPERATOR].public.wire(), WEAK_KEY]}
    body["keys"][0] = PrivateKey.from_seed(b"fresh operator").public.wire()
    sub = world.sign_by("operator.keys_changed", [OPERATOR, *regions(world)], body)
    error = refused(world, sub, MalformedError, "small-order")
    assert error.field == "body.keys.1"
