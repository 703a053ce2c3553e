"""What this host's CPU is, from Linux's /proc/cpuinfo (the one place that reads it)."""

from __future__ import annotations

import platform
from pathlib import Path


def cpu_info(path: str | Path = "/proc/cpuinfo") -> tuple[str, set[str]]:
    """(model name, feature flags) of the first CPU; the platform's names and no flags where there is
    no /proc/cpuinfo. x86 says "model name" and "flags", Arm "Model" and "Features"."""
    model, flags = platform.processor() or platform.machine(), set()
    try:
        text = Path(path).read_text(errors="replace")
    except OSError:
        return model, flags
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key in ("flags", "Features") and not flags:
            flags = set(value.split())
        elif key in ("model name", "Model") and value.strip():
            model = value.strip()
    return model, flags
