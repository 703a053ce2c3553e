"""Device profiles: data in devices/profiles/*.toml, one file per device a user deploys to.

Each names the CPU architecture, the formats it runs (export's format table reads this: a device
is named here once), the TVM target and cross compiler of its TVM format, and how to reach it
(local, ssh host, or RPC tracker key).
"""

from __future__ import annotations

import os
import platform
from pathlib import Path

from edgehound.runtime.errors import EdgehoundError
from edgehound.util import tomllib

PROFILE_DIR = Path(__file__).with_name("profiles")
TUNING_DIR = Path(__file__).with_name("tuning")  # committed MetaSchedule databases, one per profile and format


def all_profiles() -> dict[str, dict]:
    return {p.stem: tomllib.loads(p.read_text()) for p in sorted(PROFILE_DIR.glob("*.toml"))}


def get_profile(name: str) -> dict:
    """A profile by name, or from a .toml file path (a lab's own device)."""
    if name.endswith(".toml") and Path(name).is_file():
        return tomllib.loads(Path(name).read_text())
    profiles = all_profiles()
    if name not in profiles:
        raise EdgehoundError(f"unknown device {name!r} (known: {', '.join(profiles)})")
    return profiles[name]


def tuning_database(profile: str, fmt: str, root: Path | None = None) -> Path:
    """Where the MetaSchedule databases of one device profile and TVM format live, one folder per CPU
    they were measured on (<cpu>/, named by tvm_build.tuning_key); tuning appends to the CPU's
    database and every later compile for that CPU (any model) reuses it."""
    root = Path(root or os.environ.get("EDGEHOUND_TUNING_DIR") or TUNING_DIR)
    return root / profile / fmt


def detect() -> dict:
    """This host as a profile: its architecture and CPU flags, and the profile that fits it."""
    from edgehound.runtime.host import cpu_info

    machine = platform.machine()
    model, flags = cpu_info()
    base = "laptop-x86" if machine in ("x86_64", "AMD64") else None
    if machine == "aarch64":
        text = Path("/proc/device-tree/model").read_text(errors="ignore") if Path("/proc/device-tree/model").exists() else ""
        base = "rpi5" if "Raspberry Pi 5" in text else "rpi4" if "Raspberry Pi 4" in text else \
            "jetson-orin-nano" if "Orin" in text else "jetson-nano" if "Jetson" in text else None
    profile = dict(get_profile(base)) if base else {"name": "unknown", "formats": ["onnx", "tflite", "tflite-int8"]}
    wanted = ("avx2", "avx512f", "fma", "neon", "asimd", "asimddp", "sve")
    profile.update(detected=True, cpu=model, cores=os.cpu_count(), arch=machine,
                   cpu_flags=sorted(f for f in flags if f in wanted))
    return profile
