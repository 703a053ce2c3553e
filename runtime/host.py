"""Facts about this host and its processes: the CPU (from Linux's /proc/cpuinfo), the memory in use
(from /proc/self/status) and a process's CPU time (/proc/PID/stat); the one place that reads them."""

from __future__ import annotations

import os
import platform
import time
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


def rss_mb() -> float | None:
    """This process's resident memory now, in MiB."""
    return _memory_mb("VmRSS")


def peak_rss_mb() -> float | None:
    """This process's peak resident memory (Linux's VmHWM: unlike getrusage's maxrss it does not count
    what a parent held before the exec that started this process), in MiB."""
    return _memory_mb("VmHWM")


def _memory_mb(field: str) -> float | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024.0
    except (OSError, ValueError, IndexError):
        pass
    try:  # no /proc (macOS, Windows): psutil's current RSS where it is installed, the peak unknown
        import psutil
    except ImportError:
        return None
    return psutil.Process().memory_info().rss / 2**20


def cpu_seconds(pid: int) -> float | None:
    """The CPU time (user and system, all threads) process `pid` has used so far, in seconds, to the
    kernel's clock tick (10 ms); None where /proc is not there or the process is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()  # after "(name)", which may hold spaces
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime
    except (OSError, ValueError, IndexError):
        return None


def busy_cores(seconds: float = 0.5) -> float | None:
    """How many cores the whole machine kept busy over the next `seconds` (from /proc/stat: all but idle
    and I/O wait time); None where /proc is not there."""
    def busy_and_total() -> tuple[int, int]:
        # user nice system idle iowait irq softirq steal (guest time is counted in user already)
        ticks = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
        return sum(ticks) - ticks[3] - ticks[4], sum(ticks)

    try:
        busy0, total0 = busy_and_total()
        time.sleep(seconds)
        busy1, total1 = busy_and_total()
    except (OSError, ValueError, IndexError):
        return None
    return (busy1 - busy0) / max(total1 - total0, 1) * (os.cpu_count() or 1)


def runnable_threads(pid: int) -> int | None:
    """How many of process `pid`'s threads are running or waiting for a core (state R in
    /proc/PID/task/TID/stat) now; None where /proc is not there or the process is gone. A thread that
    spins while other work holds the cores is R but gets little CPU time: its state tells it apart."""
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return None
    running = 0
    for task in tasks:
        try:
            state = (task / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue  # the thread ended between the listing and the read
        running += state == "R"
    return running


def package_versions(dists: tuple[str, ...]) -> dict[str, str]:
    """{distribution: version} of those installed here (what manifests and bench results record)."""
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for dist in dists:
        try:
            found[dist] = version(dist)
        except PackageNotFoundError:
            pass
    return found
