"""Alliance configuration: which regions a new log has, and its first policy.

Regions are data: adding 湖南 (43) is one more object in the `regions` list of a config
file passed to `alliance init --config FILE` (see docs/hunan.json), and no code change.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from schemas.bodies import PolicyModel
from schemas.errors import ConfigError

DEFAULT_CONFIG = Path(__file__).parent / "yrd.json"


@dataclass(frozen=True, slots=True)
class RegionConfig:
    code: str
    name: str


@dataclass(frozen=True, slots=True)
class AllianceConfig:
    origin: str
    regions: tuple[RegionConfig, ...]
    policy: dict[str, Any]


def load_config(path: Path | None = None) -> AllianceConfig:
    source = path or DEFAULT_CONFIG
    try:
        raw = json.loads(source.read_text(encoding="utf-8"))
        regions = tuple(RegionConfig(str(r["code"]), str(r["name"])) for r in raw["regions"])
        policy = PolicyModel.model_validate(raw["policy"]).model_dump()
        origin = str(raw["origin"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"cannot read alliance config {source}: {exc}") from exc
    except ValidationError as exc:
        raise ConfigError(f"alliance config {source} has an invalid policy: {exc}") from exc
    if not regions:
        raise ConfigError(f"alliance config {source} names no region")
    return AllianceConfig(origin, regions, policy)
