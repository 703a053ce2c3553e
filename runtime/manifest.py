"""manifest.json: what an export folder holds, and the checks made before any artifact is loaded.

One entry per artifact: format, backend, precision, target, file, size and sha256, input/output
tensors (shape, layout, dtype, quantization), preprocessing, class labels, measured accuracy and
status. The runtime trusts nothing it has not checked: the file must exist, have the recorded size
and hash, its backend must be known, a TVM library must be built for this host's architecture, and an
x86 one's vector extensions (AVX2, AVX-512...) must be present on this CPU.
"""

from __future__ import annotations

import platform
from dataclasses import dataclass
from pathlib import Path

from edgehound.runtime.breeds import check_classes
from edgehound.runtime.errors import EdgehoundError
from edgehound.runtime.host import cpu_info
from edgehound.runtime.preprocess import PreprocessSpec
from edgehound.util import read_json_object, sha256_file

SCHEMA_VERSION = 1
MANIFEST = "manifest.json"


@dataclass
class Artifact:
    entry: dict  # the manifest entry
    path: Path  # the artifact file
    note: str = ""  # why this one, where it is not the one the manifest picks

    @property
    def name(self) -> str:
        return self.entry["name"]

    @property
    def backend(self) -> str:
        return self.entry["backend"]


def read_manifest(path: str | Path) -> tuple[dict, Path]:
    """(manifest, folder) for a manifest.json, an export folder, or an artifact file beside its manifest."""
    given = path = Path(path)
    if not path.exists():
        raise EdgehoundError(f"{path}: no such export folder, manifest or artifact file")
    if path.is_dir():
        path = path / MANIFEST
    elif path.name != MANIFEST:
        path = path.parent / MANIFEST
    if not path.is_file():
        where = "in this folder" if given.is_dir() else f"beside this file (looked for {path})"
        raise EdgehoundError(f"{given}: no manifest.json {where}; give an export folder (`edgehound export` makes one)")
    manifest = read_json_object(path, "manifest")
    if manifest.get("schema") != SCHEMA_VERSION or not isinstance(manifest.get("artifacts"), list):
        raise EdgehoundError(f"{path}: not an edgehound manifest (schema {manifest.get('schema')!r})")
    for i, entry in enumerate(manifest["artifacts"]):
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise EdgehoundError(f"{path}: artifacts[{i}] is not an artifact entry (an object with a name)")
    return manifest, path.parent


# What the runtime reads from an entry before it loads the file: (key, type).
REQUIRED = (("file", str), ("backend", str), ("size_bytes", int), ("sha256", str), ("input", dict),
            ("preprocess", dict), ("classes", list))


def _checked_entry(entry: dict, folder: Path) -> Artifact:
    """The entry's artifact, once its fields have the right types and its file lies inside the folder."""
    where = f"{folder / MANIFEST}: artifact {entry['name']!r}"
    for key, kind in REQUIRED:
        if not isinstance(entry.get(key), kind):
            raise EdgehoundError(f"{where}: {key!r} is missing or not a {kind.__name__}")
    shape = entry["input"].get("shape")
    if not isinstance(shape, list) or len(shape) < 2:
        raise EdgehoundError(f"{where}: input.shape {shape!r} is not a tensor shape")
    check_classes(entry["classes"], where)
    PreprocessSpec.from_dict(entry["preprocess"], where)
    file = entry["file"]
    path = (folder / file).resolve()
    # An artifact is a file of its own export folder: never an absolute path, '..' or a link out of it.
    if Path(file).is_absolute() or ".." in Path(file).parts or not path.is_relative_to(folder.resolve()):
        raise EdgehoundError(f"{where}: file {file!r} is outside the export folder; refusing to read it")
    return Artifact(entry, folder / file)


def select_artifact(source: str | Path, name: str | None = None) -> Artifact:
    """The artifact named (or, for a file path, that file; else the manifest's default choice, or, where this
    host cannot run that one, the first in the manifest's order that it can, with a note saying so)."""
    source = Path(source)
    manifest, folder = read_manifest(source)
    entries = {e["name"]: e for e in manifest["artifacts"]}
    note = ""
    if name is None and source.is_file() and source.name != MANIFEST:
        matching = [e for e in manifest["artifacts"] if e.get("file") == source.name]
        if not matching:
            raise EdgehoundError(f"{source}: not listed in {folder / MANIFEST}")
        entry = matching[0]
    else:
        picked = manifest.get("default") or _first_usable(manifest)
        if not isinstance(picked, str):
            raise EdgehoundError(f"{folder / MANIFEST}: 'default' is {picked!r}, not an artifact's name")
        if name is None and picked in entries and not _runs_here(entries[picked], folder):
            # a Pi with only the runtime-tflite extra, say: the model still runs, and says with what
            name = next((e["name"] for e in manifest["artifacts"] if e.get("status") == "ok"
                         and e.get("backend") != "pytorch" and _runs_here(e, folder)), None)
            if name:
                note = (f"{picked} ({entries[picked].get('backend')}), the manifest's pick, cannot run here: using "
                        f"{name} ({entries[name]['backend']}), the first of its artifacts that can (--artifact chooses)")
        name = name or picked
        if name not in entries:
            raise EdgehoundError(f"{folder / MANIFEST}: no artifact {name!r} (has: {', '.join(entries)})")
        entry = entries[name]
    if entry.get("status") == "failed":
        raise EdgehoundError(f"artifact {entry['name']!r} failed to build: {entry.get('reason', 'no reason recorded')}")
    artifact = _checked_entry(entry, folder)
    artifact.note = note
    return artifact


def _first_usable(manifest: dict) -> str:
    for e in manifest["artifacts"]:
        if e.get("status") == "ok" and e.get("backend") != "pytorch":  # the reference needs torch: no device default
            return e["name"]
    raise EdgehoundError("the manifest lists no usable artifact")


def _runs_here(entry: dict, folder: Path) -> bool:
    """Whether this host has the entry's backend and, for a compiled library, its architecture and CPU
    features. A missing or altered file is not judged here: verify refuses it by name when it is loaded."""
    from edgehound.runtime.backends import installed

    if not isinstance(entry.get("backend"), str) or not installed(entry["backend"]):
        return False
    path = (folder / str(entry.get("file", ""))).resolve()
    readable = path.is_relative_to(folder.resolve()) and path.is_file()  # never a file outside the folder
    return _cpu_mismatch(entry, path if readable else None) is None


def _cpu_mismatch(entry: dict, path: Path | None) -> str | None:
    """Why this host's CPU cannot run the entry's file: a library built for another architecture (read from
    the file, when there is one to read) or one that uses CPU features this CPU lacks; None when it can."""
    machine = library_machine(path) if path else None
    if machine and machine != host_machine():  # dlopen's own error says "No such file" of a file that is there
        devices = ", ".join(map(str, entry.get("devices") or [])) or "its target"
        return (f"{path}: built for {machine} ({entry.get('target', 'another target')}); this host is "
                f"{host_machine()}: run it on {devices}, or pick another --artifact")
    missing = missing_cpu_features(_cpu_features(entry))
    if missing:
        compiled_for = entry["tvm"].get("compiled_for")
        cpu = (compiled_for.get("mcpu") if isinstance(compiled_for, dict) else None) or "another CPU"
        return (f"{path or entry.get('file')}: compiled for {cpu}, it uses {', '.join(missing)}, which this CPU "
                f"lacks (it would die of an illegal instruction). Re-export it on this machine: "
                f"edgehound export CHECKPOINT --targets {entry['name']}")
    return None


def _cpu_features(entry: dict) -> list[str]:
    """The x86 flags a TVM library's entry says it needs (none for other artifacts, or a malformed field)."""
    tvm = entry.get("tvm")
    features = tvm.get("cpu_features") if isinstance(tvm, dict) else None
    return [f for f in features if isinstance(f, str)] if isinstance(features, list) else []


def verify(artifact: Artifact, runs_here: bool = True) -> None:
    """Refuse a missing, truncated or altered artifact before any backend touches it, and (runs_here: to
    be loaded on this host, not sent to a device) one this host's CPU cannot run."""
    path, entry = artifact.path, artifact.entry
    if not path.is_file():
        raise EdgehoundError(f"{path}: artifact file missing")
    size = path.stat().st_size
    if size != entry["size_bytes"]:
        raise EdgehoundError(f"{path}: {size} bytes, the manifest says {entry['size_bytes']}: truncated or "
                             f"replaced; re-copy the export folder")
    digest = sha256_file(path)
    if digest != entry["sha256"]:
        raise EdgehoundError(f"{path}: sha256 {digest[:16]}... does not match the manifest's "
                             f"{entry['sha256'][:16]}...: the file is corrupt or altered")
    reason = _cpu_mismatch(entry, path) if runs_here else None
    if reason:
        raise EdgehoundError(reason)


ELF_MACHINES = {62: "x86_64", 183: "aarch64"}  # e_machine of the ELF header


def library_machine(path: Path) -> str | None:
    """The architecture a shared library (a TVM .so) is built for; None for files that are not ELF."""
    with open(path, "rb") as f:
        header = f.read(20)
    if header[:4] != b"\x7fELF" or len(header) < 20:
        return None
    code = int.from_bytes(header[18:20], "little" if header[5] == 1 else "big")
    return ELF_MACHINES.get(code, f"ELF machine {code}")


def host_machine() -> str:
    """This host's architecture in the ELF names (x86_64, aarch64)."""
    return {"amd64": "x86_64", "arm64": "aarch64"}.get(platform.machine().lower(), platform.machine().lower())


def missing_cpu_features(needed: list[str], cpuinfo: str = "/proc/cpuinfo") -> list[str]:
    """Which of the x86 flags a TVM library needs this CPU lacks (none known off Linux x86: no check)."""
    if not needed or platform.machine() not in ("x86_64", "AMD64") or not Path(cpuinfo).is_file():
        return []
    _, flags = cpu_info(cpuinfo)
    return [f for f in needed if f not in flags]
