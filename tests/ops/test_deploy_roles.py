"""ops/deploy/postgres-roles.sql, applied for real: the application role holds SELECT and
INSERT only, and with that alone the writer appends, the witnesses cosign and the
readers read; it can neither rewrite a projection row nor touch a leaf."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from ledger.app import Ledger
from ledger.db import make_engine
from tests.conftest import Alliance
from tests.dbtools import snapshot

ROLES_SQL = Path(__file__).resolve().parents[2] / "ops" / "deploy" / "postgres-roles.sql"
pytestmark = pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)


def _app_grants(role: str) -> list[str]:
    """The file's GRANT statements to alliance_app, for ``role``."""
    lines = ROLES_SQL.read_text(encoding="utf-8").splitlines()
    code = "\n".join(line for line in lines if not line.startswith("--"))
    statements = [statement.strip() for statement in code.split(";")]
    grants = [s for s in statements if s.startswith("GRANT") and s.endswith("alliance_app")]
    return [re.sub(r"\balliance_app\b", f'"{role}"', grant) for grant in grants]


@pytest.fixture
def app_url(alliance: Alliance) -> Iterator[str]:
    """A URL of the same schema as a fresh role with only the file's grants."""
    url = make_url(alliance.url)
    schema = str(url.query["options"]).removeprefix("-csearch_path=")
    role = f"app_{uuid.uuid4().hex[:12]}"
    with alliance.engine.begin() as connection:
        connection.execute(text(f'CREATE ROLE "{role}" LOGIN'))
        connection.execute(text(f'GRANT USAGE ON SCHEMA "{schema}" TO "{role}"'))
        for grant in _app_grants(role):
            connection.execute(text(grant))
    try:
        yield url.set(username=role).render_as_string(hide_password=False)
    finally:
        with alliance.engine.begin() as connection:
            connection.execute(text(f'DROP OWNED BY "{role}"'))
            connection.execute(text(f'DROP ROLE "{role}"'))


def test_the_application_role_appends_with_select_and_insert_only(
    alliance: Alliance, app_url: str
) -> None:
    ledger = Ledger.open(app_url, alliance.ring.keys["operator"], alliance.clock)
    try:
        seq = ledger.submit(alliance.enroll_doc()).seq
        assert ledger.inclusion(seq).seq == seq
        alliance.ledger = ledger
        alliance.cosign()
        assert len(ledger.signed_checkpoint().cosigned_by) == 4
    finally:
        ledger.close()
    before = snapshot(alliance.engine)
    engine = make_engine(app_url)
    try:
        for sql in (
            "UPDATE members SET status = 'active'",
            "DELETE FROM receipts",
            "UPDATE log_entries SET kind = kind",
            "DELETE FROM merkle_tiles",
        ):
            with pytest.raises(DBAPIError, match="permission denied"), engine.begin() as c:
                c.execute(text(sql))
    finally:
        engine.dispose()
    assert snapshot(alliance.engine) == before
