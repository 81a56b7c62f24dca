"""ops/bench/child.py: a child's peak memory is its own."""

from __future__ import annotations

from ops.bench.child import run_child

BALLAST_BYTES = 400 * 1024 * 1024

_REPORT = """
import json
from ops.bench.child import peak_rss_mb
print(json.dumps({"peak_rss_mb": peak_rss_mb()}))
"""


def test_a_child_reports_its_own_peak_not_its_parents() -> None:
    """getrusage()'s ru_maxrss carries the forked parent's size over execve: a child of
    a bench holding 400 MB reported 400 MB and more. VmHWM is the child's own."""
    ballast = b"x" * BALLAST_BYTES  # resident: every page written
    reported = run_child(_REPORT, "-", 60.0, "the child")
    assert ballast[-1:] == b"x"
    assert 0 < reported["peak_rss_mb"] < BALLAST_BYTES / 1024 / 1024 / 2
