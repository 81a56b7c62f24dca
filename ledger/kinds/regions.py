"""Regions and the operator on the running log (issue 7 §5): a region joins, a region or
the operator rotates its keys.

Each of these changes whom the log trusts, so each is signed by everyone whose trust it
changes: a joining region by the operator, every current region and itself (its keys in
the body sign their own admission, as the genesis regions sign the genesis); a rotation
by the old key and every region. Keys follow member.keys_changed: the old keys end at
the rotation's seq, the new ones sign from the next seq. The operator's keys also sign
checkpoints: which key may sign the checkpoint of which size is
``ledger.state.operator_keys_at``.
"""

from __future__ import annotations

from ledger.kinds.members import _revoke_keys
from ledger.rows import KeyRow, RegionRow, Row
from ledger.state import OPERATOR, Context, State, region_principal, register
from schemas.bodies import (
    OperatorKeysBody,
    RegionJoinedBody,
    RegionKeysBody,
    WitnessModel,
)
from schemas.entry import KeyModel
from schemas.errors import MalformedError, PolicyError
from schemas.limits import REGIONS_MAX
from signing.keys import PublicKey, b64decode


def _every_region(state: State) -> list[str]:
    return [region_principal(code) for code in state.region_codes()]


def _joining(state: State, ctx: Context) -> list[str]:
    """The operator, every current region, and the region that joins."""
    assert isinstance(ctx.body, RegionJoinedBody)  # admit() validated it for this kind
    required = [OPERATOR, *_every_region(state)]
    joining = region_principal(ctx.body.region.code)
    # A code already in the log is refused by the handler; it is not required twice.
    return required if joining in required else [*required, joining]


def _region_and_the_others(state: State, ctx: Context) -> list[str]:
    """The region itself (its current key; it is the signer) and every other region."""
    return [ctx.signer, *(p for p in _every_region(state) if p != ctx.signer)]


def _operator_and_regions(state: State, ctx: Context) -> list[str]:
    """The operator (its current key) and every region."""
    return [OPERATOR, *_every_region(state)]


def check_new_keys(state: State, keys: list[KeyModel], field: str) -> None:
    """Keys that enter the log: each listed once, registered to nobody before (a key id
    names one principal forever), and a usable Ed25519 key (canonical, not of small
    order, its id matching: signing.keys refuses the rest)."""
    ids = [key.key for key in keys]
    if len(set(ids)) != len(ids):
        raise PolicyError("a key is listed twice", field=field)
    for index, key in enumerate(keys):
        try:
            PublicKey.from_wire(key.model_dump())
        except MalformedError as exc:
            raise MalformedError(exc.detail, field=f"{field}.{index}") from exc
        if state.key(key.key) is not None:
            raise PolicyError(f"key {key.key} is already registered", field=f"{field}.{index}")


def _check_witness(state: State, witness: WitnessModel) -> None:
    """A usable key, and a name and key no region of the log has: a witness's key name
    is how cosignatures are told apart, so two regions must never share one."""
    try:
        PublicKey(b64decode(witness.pub, size=32, what="witness key"))
    except MalformedError as exc:
        raise MalformedError(exc.detail, field="body.region.witness.pub") from exc
    for row in state.regions.rows():
        if row.witness_name == witness.name:
            raise PolicyError(
                f"witness name {witness.name} is region {row.code}'s",
                field="body.region.witness.name",
            )
        if row.witness_pub == witness.pub:
            raise PolicyError(
                f"witness key is region {row.code}'s", field="body.region.witness.pub"
            )


@register("region.joined", RegionJoinedBody, signers=_joining)
def region_joined(state: State, ctx: Context, body: RegionJoinedBody) -> list[Row]:
    """A region joins: from the next seq it enrols members, endorses the returns and
    advances that touch it, and its witness is one every checkpoint needs."""
    if ctx.signer != OPERATOR:
        raise PolicyError("a region is admitted by the operator", field="signer")
    region = body.region
    if state.region(region.code) is not None:
        raise PolicyError(f"region {region.code} is already in the log", field="body.region.code")
    if len(state.regions) >= REGIONS_MAX:
        raise PolicyError(
            f"the log already has {REGIONS_MAX} regions, the most it may have",
            field="body.region.code",
        )
    _check_witness(state, region.witness)
    check_new_keys(state, region.keys, "body.region.keys")
    principal = region_principal(region.code)
    rows: list[Row] = [
        RegionRow(region.code, region.name, region.witness.name, region.witness.pub, ctx.seq)
    ]
    rows += [KeyRow(k.key, principal, k.pub, ctx.seq + 1, None) for k in region.keys]
    return rows


@register("region.keys_changed", RegionKeysBody, signers=_region_and_the_others)
def region_keys_changed(state: State, ctx: Context, body: RegionKeysBody) -> list[Row]:
    principal = region_principal(body.region)
    if state.region(body.region) is None:
        raise PolicyError(f"region {body.region} is not in this log", field="body.region")
    if ctx.signer != principal:
        raise PolicyError(f"only {principal} rotates its own keys", field="signer")
    check_new_keys(state, body.keys, "body.keys")
    rows = _revoke_keys(state, principal, ctx.seq)
    rows += [KeyRow(k.key, principal, k.pub, ctx.seq + 1, None) for k in body.keys]
    return rows


@register("operator.keys_changed", OperatorKeysBody, signers=_operator_and_regions)
def operator_keys_changed(state: State, ctx: Context, body: OperatorKeysBody) -> list[Row]:
    if ctx.signer != OPERATOR:
        raise PolicyError("the operator rotates its own keys", field="signer")
    check_new_keys(state, body.keys, "body.keys")
    rows = _revoke_keys(state, OPERATOR, ctx.seq)
    rows += [KeyRow(k.key, OPERATOR, k.pub, ctx.seq + 1, None) for k in body.keys]
    return rows
