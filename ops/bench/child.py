"""A measurement in a child process of our own interpreter: its peak RSS and start-up
are its own, not the bench's (the audit, the restarted writer's one-entry submit)."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

from schemas.errors import ConfigError

# Defines peak_rss_mb() for the child's script. VmHWM is the high-water mark of the
# child's own process image; getrusage()'s ru_maxrss is not: Linux carries it over
# execve from the forked copy of the parent, so a child of a bench that had grown to
# 700 MB reported 700 MB whatever it used itself.
PEAK_RSS = """
def peak_rss_mb():
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0
"""


def run_child(script: str, argument: str, timeout_s: float, what: str) -> dict[str, Any]:
    """Run ``script`` (Python source, with peak_rss_mb() defined) with ``argument`` as
    sys.argv[1]; its last line of stdout is one JSON object, returned. A non-zero exit
    is a ConfigError naming ``what`` with the end of its stderr."""
    child = subprocess.run(  # noqa: S603 - our own interpreter and script
        [sys.executable, "-c", PEAK_RSS + script, argument],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    if child.returncode != 0:
        raise ConfigError(f"{what} failed: {child.stderr.strip()[-500:]}")
    result: dict[str, Any] = json.loads(child.stdout.strip().splitlines()[-1])
    return result


__all__ = ["run_child"]
