"""Device profiles: data in devices/profiles/*.toml, one file per device a user deploys to.

Each names the CPU architecture, the formats it runs (export's format table reads this: a device
is named here once), the TVM target and cross compiler of its TVM format, and how to reach it
(local, ssh host, or RPC tracker key).
"""

from __future__ import annotations

import os
import platform
import re
from pathlib import Path

from edgehound.runtime.errors import EdgehoundError
from edgehound.util import tomllib

PROFILE_DIR = Path(__file__).with_name("profiles")
TUNING_DIR = Path(__file__).with_name("tuning")  # committed MetaSchedule databases, one per profile and format


# A profile's fields and their types; description, tvm_target, cross_compiler and tuning may be left out.
# tuning names the profile whose tuning databases its TVM builds read and extend (default: its own name):
# a profile that differs from another only in what it compiles for (devices/shipping/laptop-x86-avx2.toml)
# reuses that one's records, kernel by kernel.
FIELDS = {"name": str, "description": str, "arch": str, "formats": list, "tvm_target": dict, "cross_compiler": str,
          "tuning": str, "reach": dict}
OPTIONAL = {"description": "", "tvm_target": {}, "cross_compiler": ""}
PLAIN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")  # name and tuning become folder names under devices/tuning
# How each kind of reach is made, with the type of each of its fields (those marked * are required).
REACH = {"local": {"note": str},
         "ssh": {"host*": str, "port": int, "timeout": (int, float), "connect_timeout": (int, float), "edgehound": str,
                 "remote_dir": str, "known_hosts": str, "identity": str},
         "rpc": {"tracker*": str, "key*": str, "timeout": (int, float)}}


def read_profile(path: Path) -> dict:
    """A profile file, checked: a lab's own .toml is input from outside, and a wrong field would
    otherwise end in a KeyError in the middle of a bench or an export."""
    try:
        profile = tomllib.loads(path.read_text())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise EdgehoundError(f"{path}: not a readable device profile ({e})") from None
    return check_profile(profile, str(path))


def check_profile(profile: dict, where: str) -> dict:
    """The profile with its optional fields filled in, or an error naming `where` and the field."""
    from edgehound.export.formats import FORMATS

    unknown = set(profile) - set(FIELDS)
    if unknown:
        raise EdgehoundError(f"{where}: unknown profile field(s) {', '.join(sorted(unknown))}")
    profile = {**OPTIONAL, "tuning": profile.get("name"), **profile}
    for key, kind in FIELDS.items():
        if key not in profile:
            raise EdgehoundError(f"{where}: the profile has no {key}")
        if not isinstance(profile[key], kind):
            raise EdgehoundError(f"{where}: {key} must be a {kind.__name__}, got {profile[key]!r}")
    for key in ("name", "tuning"):  # a name like "../x" would put tuning records outside devices/tuning
        if not PLAIN_NAME.fullmatch(profile[key]):
            raise EdgehoundError(f"{where}: {key} must be a plain name (letters, digits, '.', '_', '-'), "
                                 f"got {profile[key]!r}")
    wrong = [f for f in profile["formats"] if f not in FORMATS]
    if not profile["formats"] or wrong:
        raise EdgehoundError(f"{where}: formats must name one or more of {', '.join(FORMATS)}"
                             + (f" (not {', '.join(map(repr, wrong))})" if wrong else ""))
    if any(FORMATS[f].backend == "tvm" for f in profile["formats"]) and not profile["tvm_target"]:
        raise EdgehoundError(f"{where}: it runs a TVM format, so it needs a tvm_target")
    reach = profile["reach"]
    if reach.get("kind") not in REACH:
        raise EdgehoundError(f"{where}: reach.kind must be one of {', '.join(REACH)}, got {reach.get('kind')!r}")
    fields = {k.rstrip("*"): (t, k.endswith("*")) for k, t in REACH[reach["kind"]].items()}
    for key, value in reach.items():
        if key != "kind" and (key not in fields or not isinstance(value, fields[key][0]) or isinstance(value, bool)):
            raise EdgehoundError(f"{where}: reach.{key} = {value!r} is not a field of a {reach['kind']} reach "
                                 f"of the right type (fields: {', '.join(fields)})")
    missing = [k for k, (_, required) in fields.items() if required and not reach.get(k)]
    if missing:
        raise EdgehoundError(f"{where}: a {reach['kind']} reach needs {', '.join(missing)}")
    return profile


def all_profiles() -> dict[str, dict]:
    return {p.stem: read_profile(p) for p in sorted(PROFILE_DIR.glob("*.toml"))}


def get_profile(name: str) -> dict:
    """A profile by name, or from a .toml file path (a lab's own device)."""
    if name.endswith(".toml"):
        if not Path(name).is_file():
            raise EdgehoundError(f"{name}: no such device profile file")
        return read_profile(Path(name))
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
