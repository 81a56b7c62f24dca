"""Genesis, policy and membership kinds."""

from __future__ import annotations

from dataclasses import replace

from ledger.rows import (
    CreditRow,
    ExclusionRow,
    KeyRow,
    MemberRow,
    MetaRow,
    RegionRow,
    Row,
    StoreRow,
)
from ledger.state import OPERATOR, Context, State, genesis_keys, region_principal, register
from schemas.bodies import (
    GenesisBody,
    MemberEnrolledBody,
    MemberKeysBody,
    MemberModel,
    MemberStatusBody,
    PolicyModel,
)
from schemas.canonical import canonical_text
from schemas.entry import KeyModel
from schemas.errors import PolicyError
from schemas.identifiers import division_region, validate_uscc
from signing.keys import PublicKey


def _all_regions(state: State, ctx: Context) -> list[str]:
    """The operator and every region must sign log-wide entries themselves."""
    if ctx.kind == "region.genesis":
        assert isinstance(ctx.body, GenesisBody)
        codes = [region.code for region in ctx.body.regions]
    else:
        codes = state.region_codes()
    return [OPERATOR, *(region_principal(code) for code in codes)]


def _check_policy(policy: PolicyModel, region_codes: set[str]) -> None:
    grades = policy.grades
    if not grades.B < grades.C < grades.D:
        raise PolicyError("policy grades must rise: B < C < D points", field="body.grades")
    unknown = set(policy.local_excluded_categories) - region_codes
    if unknown:
        raise PolicyError(f"local exclusions name unknown regions {sorted(unknown)}")
    for zone in policy.zones:
        outside = {division_region(d) for d in zone.divisions} - region_codes
        if outside:
            raise PolicyError(f"zone {zone.name} has divisions outside the log's regions")


@register("region.genesis", GenesisBody, signers=_all_regions)
def genesis(state: State, ctx: Context, body: GenesisBody) -> list[Row]:
    if ctx.signer != OPERATOR:
        raise PolicyError("the genesis is signed by the operator", field="signer")
    codes = [region.code for region in body.regions]
    if len(set(codes)) != len(codes):
        raise PolicyError("a region appears twice in the genesis", field="body.regions")
    key_count = len(body.operator_keys) + sum(len(region.keys) for region in body.regions)
    if len(genesis_keys(body)) != key_count:
        raise PolicyError("a key is declared twice in the genesis")
    _check_policy(body.policy, set(codes))
    rows: list[Row] = [
        MetaRow("origin", canonical_text(body.origin), ctx.seq),
        MetaRow("policy", canonical_text(body.policy.model_dump()), ctx.seq),
    ]
    for region in body.regions:
        rows.append(
            RegionRow(region.code, region.name, region.witness.name, region.witness.pub, ctx.seq)
        )
    for key_id, (principal, public) in sorted(genesis_keys(body).items()):
        rows.append(KeyRow(key_id, principal, public.b64, ctx.seq + 1, None))
    return rows


@register("policy.adopted", PolicyModel, signers=_all_regions)
def policy_adopted(state: State, ctx: Context, body: PolicyModel) -> list[Row]:
    if ctx.signer != OPERATOR:
        raise PolicyError("a policy is adopted by the operator", field="signer")
    _check_policy(body, set(state.region_codes()))
    return [MetaRow("policy", canonical_text(body.model_dump()), ctx.seq)]


def _check_keys_unused(state: State, keys: list[KeyModel]) -> None:
    ids = [key.key for key in keys]
    if len(set(ids)) != len(ids):
        raise PolicyError("a key is listed twice", field="body.keys")
    for key in keys:
        if state.key(key.key) is not None:
            raise PolicyError(f"key {key.key} is already registered", field="body.keys")
        PublicKey.from_wire(key.model_dump())  # the key id must match the public key


def _zone_divisions(state: State, region: str) -> set[str]:
    allowed: set[str] = set()
    for zone in state.policy.zones:
        if any(division_region(d) == region for d in zone.divisions):
            allowed.update(zone.divisions)
    return allowed


def _check_member(state: State, ctx: Context, member: MemberModel) -> None:
    validate_uscc(member.id, field="body.member.id")
    if ctx.signer != region_principal(member.region):
        raise PolicyError(
            f"member of region {member.region} must be enrolled by region:{member.region}",
            field="signer",
        )
    if state.member(member.id) is not None:
        raise PolicyError(f"member {member.id} is already enrolled", field="body.member.id")
    if member.commitment.return_days < state.policy.return_days_min:
        raise PolicyError(
            f"return commitment {member.commitment.return_days} days is below the "
            f"policy floor of {state.policy.return_days_min}",
            field="body.member.commitment.return_days",
        )
    if member.kind == "merchant" and not member.stores:
        raise PolicyError("a merchant enrols at least one store", field="body.member.stores")
    store_ids = [store.id for store in member.stores]
    if len(set(store_ids)) != len(store_ids):
        raise PolicyError("a store id appears twice", field="body.member.stores")
    zone: set[str] | None = None  # computed only if a store lies outside the region
    for store in member.stores:
        if division_region(store.division) == member.region:
            continue
        if zone is None:
            zone = _zone_divisions(state, member.region)
        if store.division not in zone:
            raise PolicyError(
                f"store {store.id} division {store.division} is outside region {member.region}",
                field="body.member.stores",
            )
    _check_keys_unused(state, member.keys)


@register("member.enrolled", MemberEnrolledBody)
def member_enrolled(state: State, ctx: Context, body: MemberEnrolledBody) -> list[Row]:
    member = body.member
    if state.region(member.region) is None:
        raise PolicyError(f"region {member.region} is not in this log", field="body.member.region")
    _check_member(state, ctx, member)
    rows: list[Row] = [
        MemberRow(
            member.id,
            member.name,
            member.kind,
            member.region,
            "active",
            member.commitment.return_days,
            ctx.seq,
            ctx.seq,
        )
    ]
    rows += [ExclusionRow(member.id, c) for c in sorted(set(member.commitment.excluded))]
    rows += [StoreRow(member.id, s.id, s.division, s.name) for s in member.stores]
    rows += [KeyRow(k.key, member.id, k.pub, ctx.seq + 1, None) for k in member.keys]
    rows.append(CreditRow(member.id, ctx.logged_text, 0, "none", 5, 0, 0))
    return rows


def _member_of_region(state: State, ctx: Context, member_id: str) -> MemberRow:
    member = state.member(member_id)
    if member is None:
        raise PolicyError(f"{member_id} is not an enrolled member", field="body.member")
    if ctx.signer != region_principal(member.region):
        raise PolicyError(
            f"only region:{member.region} may act on member {member_id}", field="signer"
        )
    return member


_TRANSITIONS = {
    "member.suspended": ({"active"}, "suspended"),
    "member.reinstated": ({"suspended"}, "active"),
    "member.withdrawn": ({"active", "suspended"}, "withdrawn"),
}


def _status_change(state: State, ctx: Context, body: MemberStatusBody) -> list[Row]:
    member = _member_of_region(state, ctx, body.member)
    allowed, new_status = _TRANSITIONS[ctx.kind]
    if member.status not in allowed:
        raise PolicyError(
            f"member {member.id} is {member.status}: cannot apply {ctx.kind}", field="body.member"
        )
    rows: list[Row] = [replace(member, status=new_status, changed_seq=ctx.seq)]
    if new_status == "withdrawn":
        rows += _revoke_keys(state, member.id, ctx.seq)
    return rows


for _kind in _TRANSITIONS:
    register(_kind, MemberStatusBody)(_status_change)


def _revoke_keys(state: State, principal: str, seq: int) -> list[Row]:
    rows: list[Row] = []
    for key_id in sorted(state.current_keys.get(principal, set())):
        key = state.key(key_id)
        assert key is not None
        rows.append(KeyRow(key.key_id, key.principal, key.pub, key.from_seq, seq))
    return rows


@register("member.keys_changed", MemberKeysBody)
def member_keys_changed(state: State, ctx: Context, body: MemberKeysBody) -> list[Row]:
    member = _member_of_region(state, ctx, body.member)
    if member.status == "withdrawn":
        raise PolicyError(f"member {member.id} has withdrawn", field="body.member")
    _check_keys_unused(state, body.keys)
    rows = _revoke_keys(state, member.id, ctx.seq)
    rows += [KeyRow(k.key, member.id, k.pub, ctx.seq + 1, None) for k in body.keys]
    return rows
