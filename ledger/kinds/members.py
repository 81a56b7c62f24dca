"""Genesis, policy and membership kinds."""

from __future__ import annotations

from bisect import bisect_right
from datetime import date, timedelta

from ledger.calendar import day_bounds, local_date
from ledger.rows import (
    CommitmentRow,
    CreditRow,
    ExclusionRow,
    KeyRow,
    MemberRow,
    MetaRow,
    NetworkRow,
    RegionRow,
    Row,
    StatusRow,
    StoreRow,
)
from ledger.state import (
    NETWORKS,
    OPERATOR,
    Context,
    State,
    genesis_keys,
    page_hint,
    region_principal,
    register,
)
from schemas.bodies import (
    CommitmentModel,
    GenesisBody,
    MemberCommitmentBody,
    MemberEnrolledBody,
    MemberKeysBody,
    MemberModel,
    MemberNetworkBody,
    MemberStatusBody,
    MemberStoresBody,
    PolicyModel,
    StoreModel,
)
from schemas.canonical import canonical_text
from schemas.entry import KeyModel, parse_time
from schemas.errors import PolicyError, invariant
from schemas.identifiers import division_region, validate_uscc
from schemas.limits import COMMITMENT_LEAD_DAYS_MAX, STORES_PER_MEMBER_MAX
from signing.keys import PublicKey

ACTIVE = "active"
WITHDRAWN = "withdrawn"


def _all_regions(state: State, ctx: Context) -> list[str]:
    """The operator and every region must sign log-wide entries themselves."""
    if ctx.kind == "region.genesis":
        assert isinstance(ctx.body, GenesisBody)
        codes = [region.code for region in ctx.body.regions]
    else:
        codes = state.region_codes()
    return [OPERATOR, *(region_principal(code) for code in codes)]


def _check_policy(policy: PolicyModel, region_codes: set[str]) -> None:
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
        # The key id must match the public key (the two fields, not model_dump(): this
        # runs for every enrolment).
        PublicKey.from_wire({"key": key.key, "pub": key.pub})


def _zone_divisions(state: State, region: str) -> set[str]:
    allowed: set[str] = set()
    for zone in state.policy.zones:
        if any(division_region(d) == region for d in zone.divisions):
            allowed.update(zone.divisions)
    return allowed


def _check_store_places(
    state: State, region: str, stores: list[StoreModel], known: set[str], field: str
) -> None:
    """New store ids (never one of ``known``, never reused) in the member's region, or
    in a zone that region belongs to."""
    ids = [store.id for store in stores]
    if len(set(ids)) != len(ids):
        raise PolicyError("a store id appears twice", field=field)
    zone: set[str] | None = None  # computed only if a store lies outside the region
    for store in stores:
        if store.id in known:
            raise PolicyError(
                f"store id {store.id} is already taken (ids are never reused)", field=field
            )
        if division_region(store.division) == region:
            continue
        if zone is None:
            zone = _zone_divisions(state, region)
        if store.division not in zone:
            raise PolicyError(
                f"store {store.id} division {store.division} is outside region {region}",
                field=field,
            )


def _check_commitment(state: State, commitment: CommitmentModel, field: str) -> None:
    if commitment.return_days < state.policy.return_days_min:
        raise PolicyError(
            f"return commitment {commitment.return_days} days is below the "
            f"policy floor of {state.policy.return_days_min}",
            field=f"{field}.return_days",
        )


def _check_network(member_id: str, network: list[str], field: str) -> None:
    """Peers are valid USCCs, each listed once, never the member itself (its own receipts
    need no network). A peer need not be enrolled yet: a brand's franchisees list each
    other as they join, and an unenrolled seller's receipts are refused anyway."""
    if len(set(network)) != len(network):
        raise PolicyError("a member is listed twice in the network", field=field)
    for index, peer in enumerate(network):
        where = f"{field}.{index}"
        validate_uscc(peer, field=where)
        if peer == member_id:
            raise PolicyError("a member does not list itself in its network", field=where)


def _check_member(state: State, ctx: Context, member: MemberModel) -> MemberRow | None:
    """Check an enrolment; returns the member's earlier row when it re-enrols."""
    validate_uscc(member.id, field="body.member.id")
    if ctx.signer != region_principal(member.region):
        raise PolicyError(
            f"member of region {member.region} must be enrolled by region:{member.region}",
            field="signer",
        )
    earlier = state.member(member.id)
    if earlier is not None:
        _check_reenrolment(earlier, member)
    _check_commitment(state, member.commitment, "body.member.commitment")
    if member.kind == "merchant" and not member.stores:
        raise PolicyError("a merchant enrols at least one store", field="body.member.stores")
    known = state.stores_of.get(member.id, set())  # a re-enrolment never reuses a store id
    _check_store_places(state, member.region, member.stores, known, "body.member.stores")
    _check_network(member.id, member.network, "body.member.network")
    _check_keys_unused(state, member.keys)
    return earlier


def _check_reenrolment(earlier: MemberRow, member: MemberModel) -> None:
    """Only a withdrawn member enrols again, as the same kind under the same region: its
    history (obligations, penalties, credit, closed stores) stays where it was."""
    if earlier.status != WITHDRAWN:
        raise PolicyError(f"member {member.id} is already enrolled", field="body.member.id")
    if member.kind != earlier.kind:
        raise PolicyError(
            f"member {member.id} was a {earlier.kind}: it re-enrols as one",
            field="body.member.kind",
        )
    if member.region != earlier.region:
        raise PolicyError(
            f"member {member.id} was enrolled by region {earlier.region}: it re-enrols there",
            field="body.member.region",
        )


def _commitment_rows(
    member_id: str, seq: int, effective: date, commitment: CommitmentModel
) -> list[Row]:
    rows: list[Row] = [CommitmentRow(member_id, seq, effective.isoformat(), commitment.return_days)]
    rows += [ExclusionRow(member_id, seq, c) for c in sorted(set(commitment.excluded))]
    return rows


def _network_rows(
    state: State, member_id: str, network: list[str], seq: int, *, enrolled_before: bool = True
) -> list[Row]:
    """Rows that make ``network`` the member's network from ``seq`` on. A member never
    enrolled before has no links (only its own enrolment and network changes make them),
    so its current network is not read."""
    current = state.network_peers(member_id) if enrolled_before else set()
    rows: list[Row] = []
    for peer in sorted(current - set(network)):
        link = state.networks.get(member_id, peer)
        invariant(link is not None, f"network index names a missing link {member_id}/{peer}")
        assert link is not None
        rows.append(link._replace(until_seq=seq))
    rows += [NetworkRow(member_id, peer, seq, None) for peer in sorted(set(network) - current)]
    return rows


Pages = list[tuple[str, tuple[object, ...]]]


@page_hint("member.enrolled")
def _enrolment_pages(_signer: str, body: MemberEnrolledBody) -> Pages:
    return [(NETWORKS, (body.member.id,))]  # _network_rows: a batch's links read at once


@page_hint("member.network_changed")
def _network_pages(_signer: str, body: MemberNetworkBody) -> Pages:
    return [(NETWORKS, (body.member,))]


@register("member.enrolled", MemberEnrolledBody)
def member_enrolled(state: State, ctx: Context, body: MemberEnrolledBody) -> list[Row]:
    """Enrol a member, or re-enrol a withdrawn one: then its row, status history, credit
    and old stores carry on, and the new commitment, network, stores and keys start."""
    member = body.member
    if state.region(member.region) is None:
        raise PolicyError(f"region {member.region} is not in this log", field="body.member.region")
    earlier = _check_member(state, ctx, member)
    enrolled_seq = ctx.seq if earlier is None else earlier.enrolled_seq
    rows: list[Row] = [
        MemberRow(
            member.id,
            member.name,
            member.kind,
            member.region,
            ACTIVE,
            enrolled_seq,
            ctx.seq,
        ),
        StatusRow(member.id, ctx.seq, ACTIVE, ctx.logged_text),
    ]
    rows += _commitment_rows(member.id, ctx.seq, local_date(ctx.logged), member.commitment)
    rows += _network_rows(
        state, member.id, member.network, ctx.seq, enrolled_before=earlier is not None
    )
    rows += [
        StoreRow(member.id, s.id, s.division, s.name, ctx.logged_text, None) for s in member.stores
    ]
    rows += [KeyRow(k.key, member.id, k.pub, ctx.seq + 1, None) for k in member.keys]
    if earlier is None:  # a re-enrolled member keeps its credit record
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
# Which policy.reasons list a status change's reason code comes from.
_REASON_LISTS = {
    "member.suspended": "suspension",
    "member.reinstated": "reinstatement",
    "member.withdrawn": "withdrawal",
}


def _status_change(state: State, ctx: Context, body: MemberStatusBody) -> list[Row]:
    member = _member_of_region(state, ctx, body.member)
    allowed, new_status = _TRANSITIONS[ctx.kind]
    purpose = _REASON_LISTS[ctx.kind]
    codes: list[str] = getattr(state.policy.reasons, purpose)
    if body.reason not in codes:
        raise PolicyError(
            f"{purpose} reason {body.reason} is not one of {', '.join(codes)}",
            field="body.reason",
        )
    if member.status not in allowed:
        raise PolicyError(
            f"member {member.id} is {member.status}: cannot apply {ctx.kind}", field="body.member"
        )
    rows: list[Row] = [
        member._replace(status=new_status, changed_seq=ctx.seq),
        StatusRow(member.id, ctx.seq, new_status, ctx.logged_text),
    ]
    if new_status == WITHDRAWN:
        rows += _revoke_keys(state, member.id, ctx.seq)
        rows += _close_stores(state, member.id, ctx.logged_text)
    return rows


def _close_stores(state: State, member_id: str, logged: str) -> list[Row]:
    """A withdrawn member has no open store: each closes at the withdrawal (its ids stay
    taken, and goods it sold while open stay judged by the days it was open)."""
    rows: list[Row] = []
    for store_id in sorted(state.stores_of.get(member_id, set())):
        store = state.stores.get(member_id, store_id)
        if store is not None and store.closed is None:
            rows.append(store._replace(closed=logged))
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


# --- changes a member and its region make together ---------------------------------------


def _member_and_region(state: State, ctx: Context) -> list[str]:
    """The member's region signs (it is the signer) and the member co-signs: the stores,
    commitment and network are the member's own, under its region's supervision."""
    member_id = getattr(ctx.body, "member", None)
    row = state.member(member_id) if isinstance(member_id, str) else None
    if row is None:
        return [ctx.signer]  # the handler names the unknown member
    return [region_principal(row.region), row.id]


def _changeable(state: State, ctx: Context, member_id: str) -> MemberRow:
    member = _member_of_region(state, ctx, member_id)
    if member.status == WITHDRAWN:
        raise PolicyError(f"member {member.id} has withdrawn", field="body.member")
    return member


@register("member.stores_changed", MemberStoresBody, signers=_member_and_region)
def member_stores_changed(state: State, ctx: Context, body: MemberStoresBody) -> list[Row]:
    """Open new stores and close open ones. A merchant keeps at least one open store (to
    close its last one it withdraws)."""
    member = _changeable(state, ctx, body.member)
    if not body.opened and not body.closed:
        raise PolicyError("the change opens and closes no store", field="body")
    if member.kind != "merchant" and body.opened:
        raise PolicyError(f"a {member.kind} has no stores", field="body.opened")
    known = state.stores_of.get(member.id, set())
    _check_store_places(state, member.region, body.opened, known, "body.opened")
    if len(known) + len(body.opened) > STORES_PER_MEMBER_MAX:
        raise PolicyError(
            f"a member has at most {STORES_PER_MEMBER_MAX} stores, open or closed",
            field="body.opened",
        )
    if len(set(body.closed)) != len(body.closed):
        raise PolicyError("a store is closed twice", field="body.closed")
    rows: list[Row] = []
    for index, store_id in enumerate(body.closed):
        store = state.stores.get(member.id, store_id)
        if store is None or store.closed is not None:
            raise PolicyError(
                f"store {store_id} is not an open store of {member.id}",
                field=f"body.closed.{index}",
            )
        rows.append(store._replace(closed=ctx.logged_text))
    still_open = sum(1 for store_id in known if _is_open(state, member.id, store_id))
    if member.kind == "merchant" and still_open - len(body.closed) + len(body.opened) < 1:
        raise PolicyError(
            "a merchant keeps at least one open store: to close them all it withdraws",
            field="body.closed",
        )
    rows += [
        StoreRow(member.id, s.id, s.division, s.name, ctx.logged_text, None) for s in body.opened
    ]
    return rows


def _is_open(state: State, member_id: str, store_id: str) -> bool:
    store = state.stores.get(member_id, store_id)
    return store is not None and store.closed is None


@register("member.commitment_changed", MemberCommitmentBody, signers=_member_and_region)
def member_commitment_changed(state: State, ctx: Context, body: MemberCommitmentBody) -> list[Row]:
    """A new commitment for purchases from ``effective`` on. It is never retroactive, and a
    narrower one (fewer days, or a category newly excluded) takes effect tomorrow at the
    earliest: the purchases already made keep the commitment they were made under."""
    member = _changeable(state, ctx, body.member)
    _check_commitment(state, body.commitment, "body.commitment")
    effective = date.fromisoformat(body.effective)
    today = local_date(ctx.logged)
    if effective < today:
        raise PolicyError(
            f"a commitment cannot take effect on {body.effective}, before the day it is "
            f"logged ({today.isoformat()})",
            field="body.effective",
        )
    if effective > today + timedelta(days=COMMITMENT_LEAD_DAYS_MAX):
        raise PolicyError(
            f"a commitment takes effect within {COMMITMENT_LEAD_DAYS_MAX} days",
            field="body.effective",
        )
    current = commitment_for(state, member.id, today)
    invariant(current is not None, f"member {member.id} has no commitment in force")
    assert current is not None
    newly_excluded = [c for c in body.commitment.excluded if not excludes(state, current, c)]
    narrower = body.commitment.return_days < current.return_days or bool(newly_excluded)
    if narrower and effective <= today:
        raise PolicyError(
            "a narrower commitment takes effect from tomorrow at the earliest: purchases "
            "already made keep the commitment they were made under",
            field="body.effective",
        )
    return _commitment_rows(member.id, ctx.seq, effective, body.commitment)


@register("member.network_changed", MemberNetworkBody, signers=_member_and_region)
def member_network_changed(state: State, ctx: Context, body: MemberNetworkBody) -> list[Row]:
    """The member's whole network (whose receipts it honours and bills) from now on."""
    member = _changeable(state, ctx, body.member)
    _check_network(member.id, body.network, "body.network")
    rows = _network_rows(state, member.id, body.network, ctx.seq)
    if not rows:
        raise PolicyError("the network is unchanged", field="body.network")
    return rows


# --- what a purchase was made under ------------------------------------------------------


def commitment_for(state: State, member_id: str, purchased: date) -> CommitmentRow | None:
    """The commitment that binds a purchase on ``purchased``: the newest one in force
    that day (None before the member's first)."""
    versions = state.commitments_of.get(member_id, [])
    position = bisect_right(versions, (purchased.isoformat(), 2**63), key=_effective_key)
    return versions[position - 1] if position else None


def _effective_key(row: CommitmentRow) -> tuple[str, int]:
    return row.effective, row.seq


def excludes(state: State, commitment: CommitmentRow, category: str) -> bool:
    """Whether ``commitment`` excludes ``category``."""
    return state.exclusions.get(commitment.member, commitment.seq, category) is not None


def active_on(state: State, member_id: str, day: date) -> bool:
    """Whether the member was active (committed) at some moment of the local ``day``:
    a consumer cannot know the hour a suspension took effect, so a purchase that day
    counts as made under the commitment."""
    start, end = day_bounds(day)
    status_at_start: str | None = None  # None: not yet enrolled
    for row in state.statuses_of.get(member_id, []):
        logged = parse_time(row.logged)
        if logged < start:
            status_at_start = row.status
        elif logged < end and row.status == ACTIVE:
            return True  # it became active (enrolled or reinstated) that day
    return status_at_start == ACTIVE


def open_on(store: StoreRow, day: date) -> bool:
    """Whether ``store`` was open at some moment of the local ``day``."""
    start, end = day_bounds(day)
    if parse_time(store.opened) >= end:
        return False
    return store.closed is None or parse_time(store.closed) > start


def honours(state: State, acceptor: str, seller: str) -> bool:
    """Whether ``acceptor`` honours and bills ``seller``'s receipts (its network): one
    link read (the writer pages the links; a batch's are read at once, _return_pages)."""
    link = state.networks.get(acceptor, seller)
    return link is not None and link.until_seq is None
