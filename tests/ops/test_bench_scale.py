"""`alliance bench scale` (`make scale`): every step on a small log, each step's figures
handed on as soon as it ends (a run of hours that is cut short keeps what it measured),
and the separate audit skipped on request (the import audits the export anyway)."""

from __future__ import annotations

from pathlib import Path

from ops.bench.append import RETURN_MERCHANTS
from ops.bench.scale import bench_scale
from tests.conftest import require_pg
from tests.dbtools import PgServer, pg_base_url

ENTRIES = RETURN_MERCHANTS + 40  # the genesis, the merchants, then returns


def test_scale_without_the_audit_reports_each_step_as_it_ends(
    tmp_path: Path, pg_server: PgServer | str
) -> None:
    require_pg(pg_server)
    steps: list[tuple[str, dict[str, object]]] = []
    report = bench_scale(
        ENTRIES,
        pg_base_url(),
        tmp_path,
        audit=False,
        progress=lambda step, figures: steps.append((step, dict(figures))),
    )
    assert [step for step, _ in steps] == ["export", "import", "submit", "proofs"]
    assert "audit" not in report
    export = report["export"]
    assert isinstance(export, dict) and export["export_reused"] is False
    assert steps[0][1] == export
    imported = report["import"]
    assert isinstance(imported, dict) and imported["size"] == ENTRIES
    assert steps[1][1] == imported
    assert steps[2][1] == {
        "one_entry_submit_s": report["one_entry_submit_s"],
        "one_entry_submit_peak_rss_mb": report["one_entry_submit_peak_rss_mb"],
    }
    proofs = report["proofs"]
    assert isinstance(proofs, dict) and steps[3][1] == proofs
    assert float(str(proofs["db_inclusion_p50_us"])) > 0
    assert float(str(report["one_entry_submit_s"])) > 0
