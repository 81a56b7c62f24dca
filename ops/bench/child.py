"""A measurement in a child process of our own interpreter: its peak RSS and start-up
are its own, not the bench's (the audit, the restarted writer's one-entry submit)."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

from schemas.errors import ConfigError

KIB_PER_MIB = 1024


def status_mib(field: str) -> float:
    """A memory line of /proc/self/status (``VmRSS``, ``VmHWM``, …) in MiB; 0 if absent."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / KIB_PER_MIB
    return 0.0


def peak_rss_mb() -> float:
    """This process image's own peak resident memory (VmHWM). Not getrusage()'s
    ru_maxrss: Linux carries that over execve from the forked copy of the parent, so a
    child of a bench that had grown to 700 MB reported 700 MB whatever it used itself."""
    return status_mib("VmHWM")


def run_child(script: str, argument: str, timeout_s: float, what: str) -> dict[str, Any]:
    """Run ``script`` (Python source; it may import peak_rss_mb from here) with
    ``argument`` as sys.argv[1]; its last line of stdout is one JSON object, returned.
    A non-zero exit is a ConfigError naming ``what`` with the end of its stderr."""
    child = subprocess.run(  # noqa: S603 - our own interpreter and script
        [sys.executable, "-c", script, argument],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    if child.returncode != 0:
        raise ConfigError(f"{what} failed: {child.stderr.strip()[-500:]}")
    result: dict[str, Any] = json.loads(child.stdout.strip().splitlines()[-1])
    return result


__all__ = ["peak_rss_mb", "run_child", "status_mib"]
