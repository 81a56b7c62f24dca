from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.api.support import client_for
from tests.conftest import Alliance


@pytest.fixture
def client(alliance: Alliance) -> TestClient:
    return client_for(alliance)
