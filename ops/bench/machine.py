"""The machine and date a bench ran on, printed with its figures: rates differ from machine
to machine and from day to day (a shared machine's load), so a figure without them cannot
be compared."""

from __future__ import annotations

import os
import platform
from datetime import UTC, datetime

CPUINFO = "/proc/cpuinfo"
UNKNOWN = "unknown"


def cpu_model() -> str:
    """The first "model name" of /proc/cpuinfo (Linux), else what ``platform`` knows."""
    try:
        with open(CPUINFO, encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or UNKNOWN


def machine() -> dict[str, object]:
    """Cores, CPU model, Python version and the UTC date and time of the run (ISO 8601)."""
    return {
        "cores": os.cpu_count() or 0,
        "cpu_model": cpu_model(),
        "python": platform.python_version(),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
    }
