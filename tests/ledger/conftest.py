"""Fixtures shared by the ledger's export, audit, checking and import tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import Alliance
from tests.ledger.test_export_audit import build_log

EXPORTED_SIZE = 12  # leaves of build_log()
EXPORTED_COSIGNATURES = 4  # every region's witness cosigned its checkpoint


@pytest.fixture
def exported(alliance: Alliance, tmp_path: Path) -> Path:
    """The log of ``build_log`` exported to a fresh directory, cosigned by all four."""
    build_log(alliance)
    directory = tmp_path / "export"
    result = alliance.ledger.export(directory)
    assert result.size == EXPORTED_SIZE and result.cosignatures == EXPORTED_COSIGNATURES
    return directory
