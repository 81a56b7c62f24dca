"""`alliance serve` after `make demo`: with nothing said, it serves demo.db and its keys."""

from __future__ import annotations

from pathlib import Path

import pytest

from ops import cli


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ALLIANCE_DB", raising=False)
    monkeypatch.delenv("ALLIANCE_KEYS", raising=False)
    monkeypatch.setattr(cli, "SETTINGS", None)
    return tmp_path


def test_after_a_demo_serve_takes_the_demo_database_and_keys(here: Path) -> None:
    (here / "demo.db").touch()
    (here / "demo-keys").mkdir()
    assert cli._demo_defaults(None, None) == ("sqlite:///demo.db", Path("demo-keys"))
    assert cli._demo_defaults(None, Path("k")) == ("sqlite:///demo.db", Path("k"))


def test_anything_said_wins_over_the_demo(here: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (here / "demo.db").touch()
    assert cli._demo_defaults("sqlite:///x.db", None) == ("sqlite:///x.db", None)
    (here / "alliance.db").touch()  # the real default exists: it is served
    assert cli._demo_defaults(None, None) == (None, None)
    (here / "alliance.db").unlink()
    monkeypatch.setenv("ALLIANCE_DB", "sqlite:///y.db")
    assert cli._demo_defaults(None, None) == (None, None)


def test_without_a_demo_nothing_changes(here: Path) -> None:
    assert cli._demo_defaults(None, None) == (None, None)
