"""Runtime settings, read from the environment once, at the edge (the CLI, later the
server). Nothing under ledger/ reads an environment variable: it is handed these values."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from schemas.errors import ConfigError
from schemas.limits import WAIT_DEADLINE_S

DEFAULT_DB_URL = "sqlite:///alliance.db"
DEFAULT_KEYS_DIR = Path("keys")


@dataclass(frozen=True, slots=True)
class Settings:
    db_url: str = DEFAULT_DB_URL
    keys_dir: Path = DEFAULT_KEYS_DIR
    wait_deadline_s: float = WAIT_DEADLINE_S

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """ALLIANCE_DB, ALLIANCE_KEYS and ALLIANCE_WAIT_DEADLINE_S, each optional."""
        env = os.environ if environ is None else environ
        deadline_text = env.get("ALLIANCE_WAIT_DEADLINE_S")
        try:
            deadline_s = WAIT_DEADLINE_S if deadline_text is None else float(deadline_text)
        except ValueError as exc:
            raise ConfigError(f"ALLIANCE_WAIT_DEADLINE_S is not a number: {deadline_text}") from exc
        if not 0 < deadline_s <= WAIT_DEADLINE_S * 10:
            raise ConfigError(f"ALLIANCE_WAIT_DEADLINE_S must be in (0, {WAIT_DEADLINE_S * 10}]")
        return cls(
            db_url=env.get("ALLIANCE_DB") or DEFAULT_DB_URL,
            keys_dir=Path(env.get("ALLIANCE_KEYS") or DEFAULT_KEYS_DIR),
            wait_deadline_s=deadline_s,
        )

    def with_db(self, explicit: str | None) -> str:
        return explicit or self.db_url
