"""The members of the simulated alliance: merchants (franchisees of a brand and
independents), the zone's advance fund and the platforms, with valid, unique USCCs,
realistic names, and stores in their province."""

from __future__ import annotations

import functools
import random
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from ops.demo.catalogue import (
    BRANDS,
    DEFAULT_REGION_WEIGHT,
    FUND_NAME,
    PLACES,
    PLATFORMS,
    REGION_WEIGHTS,
    TRADES,
    WORDS,
    Trade,
)
from schemas.errors import ConfigError
from schemas.identifiers import make_uscc
from signing.keys import PrivateKey

FRANCHISE_SHARE = 0.4  # of merchants, franchisees of a brand
MERCHANTS_PER_BRAND = 25
MIN_BRANDS = 2
# A brand's franchisees form franchise groups of at most this many members; each group is
# a network (issue 7 §1.8): its members honour and bill each other's receipts. The bound
# keeps an enrolment's network list far below the entry size limit at any demo size.
FRANCHISE_GROUP_MAX = 400
ZONE_OUTLET_SHARE = 0.15  # merchants of a zone region with an outlet in the zone
RETURN_DAYS = (7, 15, 30)
RETURN_DAYS_WEIGHTS = (70, 20, 10)
EXCLUDE_SHARE = 0.15  # merchants that exclude one of their own categories
ORG_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"  # GB 32100 characters


@dataclass(frozen=True, slots=True)
class Store:
    id: str
    division: str
    name: str

    def wire(self) -> dict[str, str]:
        return {"id": self.id, "division": self.division, "name": self.name}


@dataclass(frozen=True, slots=True)
class Member:
    """A simulated member: what it enrols, and what it sells."""

    id: str
    name: str
    kind: str
    region: str
    stores: tuple[Store, ...]
    return_days: int = 7
    trade: Trade | None = None
    brand: str | None = None
    excluded: tuple[str, ...] = ()
    group: str | None = None  # the franchise group (its network), for a franchisee
    zone_group: str | None = None  # the demonstration zone's network, for a zone merchant

    @property
    def categories(self) -> tuple[str, ...]:
        offered = self.trade.categories if self.trade else ()
        return tuple(c for c in offered if c not in self.excluded)

    def enrolment(self, key: PrivateKey, network: Sequence[str]) -> dict[str, Any]:
        """The member.enrolled body; ``network`` lists the members whose receipts it
        honours and bills."""
        return {
            "member": {
                "id": self.id,
                "name": self.name,
                "kind": self.kind,
                "region": self.region,
                "stores": [s.wire() for s in self.stores],
                "commitment": {"return_days": self.return_days, "excluded": list(self.excluded)},
                "keys": [key.public.wire()],
                "network": sorted(network),
            }
        }


@dataclass
class Population:
    merchants: list[Member]
    fund: Member
    platforms: list[Member]

    @property
    def members(self) -> list[Member]:
        return [*self.merchants, self.fund, *self.platforms]

    @functools.cached_property
    def franchisees(self) -> list[Member]:
        return [m for m in self.merchants if m.brand is not None]

    @functools.cached_property
    def groups(self) -> dict[str, list[str]]:
        """Each franchise group's members, by group."""
        groups: dict[str, list[str]] = {}
        for member in self.franchisees:
            if member.group is not None:
                groups.setdefault(member.group, []).append(member.id)
        return groups

    @functools.cached_property
    def zoned(self) -> list[Member]:
        """Merchants with a store in the demonstration zone (its network's members)."""
        return [m for m in self.merchants if m.zone_group is not None]

    @functools.cached_property
    def zone_groups(self) -> dict[str, list[str]]:
        groups: dict[str, list[str]] = {}
        for member in self.zoned:
            if member.zone_group is not None:
                groups.setdefault(member.zone_group, []).append(member.id)
        return groups

    def network_of(self, member: Member) -> list[str]:
        """The members whose receipts ``member`` honours: its franchise group's others and
        its zone network's others (the brands and the zone form networks)."""
        peers: set[str] = set()
        if member.group is not None:
            peers.update(self.groups[member.group])
        if member.zone_group is not None:
            peers.update(self.zone_groups[member.zone_group])
        peers.discard(member.id)
        return sorted(peers)

    @functools.cached_property
    def independents(self) -> list[Member]:
        return [m for m in self.merchants if m.brand is None]


class PopulationBuilder:
    """Members with valid, unique USCCs, realistic names and stores in their province
    (plus, for zone regions, an occasional outlet in the demonstration zone)."""

    def __init__(
        self, rng: random.Random, zone: Sequence[str], regions: Sequence[str] = tuple(PLACES)
    ) -> None:
        missing = [code for code in regions if code not in PLACES]
        if missing:
            raise ConfigError(
                f"the demo's catalogue has no places in region {', '.join(missing)}: "
                "add them to ops/demo/catalogue.py PLACES"
            )
        self.rng = rng
        self.zone = tuple(zone)
        self.regions = tuple(regions)
        self._ids: set[str] = set()
        self._names: set[str] = set()
        self._places = {p.division: p for places in PLACES.values() for p in places}

    def build(self, merchants: int) -> Population:
        brands = BRANDS[: max(MIN_BRANDS, min(len(BRANDS), merchants // MERCHANTS_PER_BRAND))]
        franchised = round(merchants * FRANCHISE_SHARE)
        regions = list(self.regions)
        members = [
            self.franchisee(
                *brands[i % len(brands)],
                regions[(i // len(brands)) % len(regions)],
                group=i // len(brands) // FRANCHISE_GROUP_MAX,
            )
            for i in range(franchised)
        ]
        weights = [REGION_WEIGHTS.get(code, DEFAULT_REGION_WEIGHT) for code in regions]
        members += [
            self.independent(self.rng.choices(regions, weights)[0])
            for _ in range(merchants - franchised)
        ]
        return Population(
            self._zone_networks(members),
            self.fund(),
            [self.platform(r, n) for r, n in PLATFORMS],
        )

    def _zone_networks(self, members: list[Member]) -> list[Member]:
        """Merchants with a store in the zone form the zone's networks, in groups of at
        most FRANCHISE_GROUP_MAX (the bound that keeps an enrolment small)."""
        zone = set(self.zone)
        out, count = [], 0
        for member in members:
            if any(store.division in zone for store in member.stores):
                group = f"zone/{count // FRANCHISE_GROUP_MAX + 1}"
                out.append(replace(member, zone_group=group))
                count += 1
            else:
                out.append(member)
        return out

    def uscc(self, department: str, division: str) -> str:
        """GB 32100: department and category, registration division, organisation code."""
        while True:
            org = "MA" + "".join(self.rng.choice(ORG_ALPHABET) for _ in range(7))
            code = make_uscc(f"{department}{division}{org}")
            if code not in self._ids:
                self._ids.add(code)
                return code

    def unique_name(self, candidates: Sequence[str]) -> str:
        for name in candidates:
            if name not in self._names:
                self._names.add(name)
                return name
        name = f"{candidates[0]}（{len(self._names) + 1}）"
        self._names.add(name)
        return name

    def stores(self, region: str, count: int, label: str) -> tuple[Store, ...]:
        places = self.rng.sample(PLACES[region], min(count, len(PLACES[region])))
        outlets = [d for d in self.zone if d[:2] != region and d in self._places]
        if region in {d[:2] for d in self.zone} and self.rng.random() < ZONE_OUTLET_SHARE:
            places.append(self._places[self.rng.choice(outlets)])
        return tuple(
            Store(f"{p.division}-{i + 1:02d}", p.division, f"{label}{p.district}店")
            for i, p in enumerate(places)
        )

    def _commitment(self, trade: Trade) -> tuple[int, tuple[str, ...]]:
        days = self.rng.choices(RETURN_DAYS, RETURN_DAYS_WEIGHTS)[0]
        excluded: tuple[str, ...] = ()
        if len(trade.categories) > 1 and self.rng.random() < EXCLUDE_SHARE:
            excluded = (self.rng.choice(trade.categories[1:]),)
        return days, excluded

    def franchisee(self, brand: str, trade_name: str, region: str, group: int) -> Member:
        trade = TRADES[trade_name]
        stores = self.stores(region, self.rng.choice((1, 1, 2)), brand)
        stores = tuple(
            Store(s.id, s.division, s.name.removesuffix("店") + "加盟店") for s in stores
        )
        city = self._places[stores[0].division].city
        words = self.rng.sample(WORDS, len(WORDS))
        name = self.unique_name([f"{city}{w}商贸有限公司" for w in words])
        days, excluded = self._commitment(trade)
        member_id = self.uscc("91", stores[0].division)
        return Member(
            member_id,
            name,
            "merchant",
            region,
            stores,
            days,
            trade,
            brand,
            excluded,
            group=f"{brand}/{group + 1}",
        )

    def independent(self, region: str) -> Member:
        trade = self.rng.choice(list(TRADES.values()))
        word = self.rng.choice(WORDS)
        stores = self.stores(region, self.rng.choice((1, 1, 1, 2, 2, 3)), f"{word}{trade.name}")
        place = self._places[stores[0].division]
        words = [word, *self.rng.sample(WORDS, len(WORDS))]
        name = self.unique_name(
            [f"{place.city}{w}{trade.name}有限公司" for w in words]
            + [f"{place.city}{place.district}{w}{trade.name}有限公司" for w in words]
        )
        days, excluded = self._commitment(trade)
        member_id = self.uscc("91", stores[0].division)
        return Member(member_id, name, "merchant", region, stores, days, trade, None, excluded)

    def fund(self) -> Member:
        """The zone's pooled advance fund: region 31, a service desk in each zone division."""
        stores = tuple(
            Store(f"{d}-FUND", d, f"{self._places[d].district}先行垫付服务点")
            for d in self.zone
            if d in self._places
        )
        return Member(self.uscc("12", self.zone[0]), FUND_NAME, "fund", "31", stores)

    def platform(self, region: str, name: str) -> Member:
        return Member(self.uscc("91", PLACES[region][0].division), name, "platform", region, ())
