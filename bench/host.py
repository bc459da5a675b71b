"""The host a benchmark ran on, named the way its timings are reported (these machines differ between sessions)."""

from __future__ import annotations

import platform
from pathlib import Path


def cpu_name() -> str:
    """/proc/cpuinfo's model name (e.g. "Intel(R) Xeon(R) Processor", "AMD EPYC 7B13"), else platform's guess."""
    info = Path("/proc/cpuinfo")
    for line in info.read_text().splitlines() if info.is_file() else []:
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()
