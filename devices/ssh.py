"""Benchmark on a device reached over ssh: copy the export folder, run `edgehound bench` there, fetch results.

The device needs only the runtime extra (`pip install "edgehound[runtime-onnx]"` or tflite/tvm).
Every step is a plain ssh/scp call bounded by the profile's timeout; a device that does not
answer becomes a failure of that device alone.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import tempfile
from pathlib import Path

from edgehound.runtime.errors import EdgehoundError


def _ssh_options(reach: dict) -> list[str]:
    opts = ["-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=accept-new", "-o",
            f"ConnectTimeout={int(reach.get('connect_timeout', 10))}"]
    if reach.get("known_hosts"):
        opts += ["-o", f"UserKnownHostsFile={reach['known_hosts']}"]
    if reach.get("identity"):
        opts += ["-i", str(Path(reach["identity"]).expanduser())]
    return opts


def _run(cmd: list[str], what: str, timeout: float, accept: tuple[int, ...] = (0,)) -> subprocess.CompletedProcess:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise EdgehoundError(f"{what}: no answer within {timeout:.0f} s") from None
    if proc.returncode not in accept:
        raise EdgehoundError(f"{what}: failed ({_last_line(proc)})")
    return proc


def _last_line(proc: subprocess.CompletedProcess) -> str:
    last = [line for line in (proc.stderr or proc.stdout).strip().splitlines() if line.strip()][-1:]
    return last[0][:300] if last else f"exit code {proc.returncode}"


# Remote names travel through a shell (ssh) and scp's path syntax: only plain characters, checked
# here, so nothing in a profile or a folder name can widen what gets removed or run.
SAFE_REMOTE = re.compile(r"[A-Za-z0-9._/~+-]+")


def _remote_paths(reach: dict, folder: Path) -> tuple[str, str, str]:
    """(remote_dir, export_dir, results_dir) on the device, refusing anything that could escape remote_dir."""
    remote_dir = str(reach.get("remote_dir", "edgehound-bench")).rstrip("/")
    name = folder.resolve().name  # `.` or a manifest.json path still names the real folder
    if not remote_dir or not SAFE_REMOTE.fullmatch(remote_dir) or ".." in remote_dir.split("/"):
        raise EdgehoundError(f"reach.remote_dir {remote_dir!r}: use a plain folder path (letters, digits, . _ - / ~)")
    if name in ("", ".", "..") or not SAFE_REMOTE.fullmatch(name) or "/" in name:
        raise EdgehoundError(f"{folder}: the export folder's name {name!r} cannot be used on the device "
                             "(letters, digits, . _ - only); copy it to a plainly named folder first")
    return remote_dir, f"{remote_dir}/{name}", f"{remote_dir}/results-{name}"


def _remote_command(program: str) -> str:
    """reach.edgehound (a program and its arguments, e.g. "python3 -m edgehound.cli") as quoted shell
    words, so it can add no shell syntax of its own; a leading ~/ still means the device user's home."""
    words = shlex.split(program)
    if not words:
        raise EdgehoundError("reach.edgehound is empty")
    quoted = [shlex.quote(w) for w in words]
    if words[0].startswith("~/"):
        quoted[0] = '"$HOME"/' + shlex.quote(words[0][2:])
    return " ".join(quoted)


def bench_over_ssh(profile: dict, folder: Path, bench_args: list[str]) -> dict:
    """results.json of `edgehound bench` run on the device, for the export folder copied there."""
    reach = profile["reach"]
    host, port = str(reach["host"]), str(reach.get("port", 22))
    if not host or host.startswith("-") or any(c.isspace() for c in host):
        raise EdgehoundError(f"reach.host {host!r}: not a host name (it would be read as an ssh option)")
    timeout = float(reach.get("timeout", 300))
    remote_dir, export_dir, out_dir = _remote_paths(reach, folder)
    ssh = ["ssh", "-p", port, *_ssh_options(reach), "--", host]
    scp = ["scp", "-q", "-r", "-P", port, *_ssh_options(reach), "--"]
    name = profile["name"]
    _run([*ssh, f"mkdir -p -- {shlex.quote(remote_dir)} && rm -rf -- {shlex.quote(export_dir)} {shlex.quote(out_dir)}"],
         f"{name}: ssh {host}", timeout)
    _run([*scp, str(folder.resolve()), f"{host}:{remote_dir}/"], f"{name}: copying {folder} to {host}", timeout)
    command = " ".join([_remote_command(str(reach.get("edgehound", "edgehound"))), "bench", shlex.quote(export_dir),
                        "--out", shlex.quote(out_dir), "--no-progress", *map(shlex.quote, bench_args)])
    # exit 1: the bench ran and wrote its rows, and some artifact could not be measured (its row says why)
    bench = _run([*ssh, command], f"{name}: edgehound bench on {host}", timeout, accept=(0, 1))
    with tempfile.TemporaryDirectory() as tmp:
        try:
            _run([*scp, f"{host}:{out_dir}/results.json", tmp], f"{name}: fetching results from {host}", timeout)
        except EdgehoundError:
            if bench.returncode:  # no results: the bench itself failed, and its own message says why
                raise EdgehoundError(f"{name}: edgehound bench on {host}: failed ({_last_line(bench)})") from None
            raise
        from edgehound.benchmarks.bench import read_results

        return read_results(Path(tmp) / "results.json", f"{name}: the results from {host}")
