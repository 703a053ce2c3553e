"""Small helpers shared by every stage: atomic writes, file hashes, the TOML parser, leftovers of killed runs."""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10 (JetPack 6's Ubuntu 22.04): the same parser, as tomli
    import tomli as tomllib  # noqa: F401  (re-exported: `from edgehound.util import tomllib`)


def _umask() -> int:
    """The process's umask, read without changing it where Linux shows it (setting it, even to put it
    back at once, races with other threads creating files)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write to a temp file in the same folder, then rename: readers never see a half-written file."""
    from edgehound.runtime.errors import EdgehoundError

    path = Path(path)
    if path.is_dir():  # os.replace would fail only after the temp file was made in the folder above
        raise EdgehoundError(f"{path}: is a folder; give the name of a file to write")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as e:
        raise EdgehoundError(f"{path}: cannot write there ({e.strerror or e})") from None
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; a written file gets the usual permissions
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def atomic_write_json(path: str | Path, obj) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def read_json_object(path: str | Path, what: str, where: str | None = None) -> dict:
    """A JSON file from outside that must hold an object (a manifest, a baseline, a record): any failure to
    read or parse it is one clear error naming the file (`where`, default the path) and `what` it should be,
    not a JSONDecodeError, UnicodeDecodeError or TypeError from deep inside its reader."""
    from edgehound.runtime.errors import EdgehoundError

    where = where or str(path)
    try:
        doc = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise EdgehoundError(f"{where}: not a readable {what} ({e})") from None
    if not isinstance(doc, dict):
        raise EdgehoundError(f"{where}: not a {what} (a JSON {type(doc).__name__}, not an object)")
    return doc


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def remove_leftovers(folder: Path, pattern: str) -> None:
    """Remove what killed commands left in folder: temp files and folders matching pattern, named
    '...tmp<pid>...' after a process that is gone (a live one's are still being written)."""
    for stale in folder.glob(pattern):
        pid = stale.name.rsplit(".tmp", 1)[-1].split(".")[0]
        if pid.isdigit() and not pid_alive(int(pid)):
            shutil.rmtree(stale) if stale.is_dir() else stale.unlink(missing_ok=True)


def pid_alive(pid: int) -> bool:
    """Whether a process runs: a temp file named after a dead one is a killed command's leftover."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def is_number(x) -> bool:
    """A JSON or TOML number: int or float, not a bool (which Python counts as an int)."""
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def folder(text: str) -> Path:
    """argparse type: a folder to write into (--out), refused at once when a file already has its name or
    where nothing can be written, not after minutes of work, when the first write into it fails."""
    path = Path(text)
    for part in (path, *path.parents):
        if part.exists():
            if not part.is_dir():
                raise argparse.ArgumentTypeError(f"{part} is a file, not a folder")
            _check_writable(part)
            break
    return path


def _check_writable(folder: Path) -> None:
    """Make and drop a nameless file in `folder`: os.access answers yes for root even where a write fails (/proc)."""
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as e:
        raise argparse.ArgumentTypeError(f"{folder}: cannot write there ({e.strerror or e})") from None


def output_file(text: str) -> Path:
    """argparse type: a file to write (--json, a new model file), refused at once when it names a folder,
    lies under a file or in a folder that cannot be written, not after the work whose result it would hold."""
    path = Path(text)
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{path} is a folder; give the name of a file to write")
    folder(str(path.parent))
    return path


def at_least(low: int, high: int | None = None):
    """argparse type: an integer >= low (and <= high): a clear usage error instead of a ZeroDivisionError
    or a failed allocation later."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low}, got {value}")
        if high is not None and value > high:
            raise argparse.ArgumentTypeError(f"must be at most {high}, got {value}")
        return value

    return parse
