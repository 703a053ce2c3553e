"""Benchmark on a device reached over ssh: copy the export folder, run `edgehound bench` there, fetch results.

The device needs only the runtime extra (`pip install "edgehound[runtime-onnx]"` or tflite/tvm).
Every step is a plain ssh/scp call bounded by the profile's timeout; a device that does not
answer becomes a failure of that device alone.
"""

from __future__ import annotations

import json
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


def _run(cmd: list[str], what: str, timeout: float) -> str:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise EdgehoundError(f"{what}: no answer within {timeout:.0f} s") from None
    if proc.returncode != 0:
        last = [line for line in (proc.stderr or proc.stdout).strip().splitlines() if line.strip()][-1:]
        raise EdgehoundError(f"{what}: failed ({last[0][:300] if last else f'exit code {proc.returncode}'})")
    return proc.stdout


def bench_over_ssh(profile: dict, folder: Path, bench_args: list[str]) -> dict:
    """results.json of `edgehound bench` run on the device, for the export folder copied there."""
    reach = profile["reach"]
    host, port = reach["host"], str(reach.get("port", 22))
    timeout = float(reach.get("timeout", 300))
    remote_dir = reach.get("remote_dir", "edgehound-bench")
    remote_edgehound = reach.get("edgehound", "edgehound")
    ssh = ["ssh", "-p", port, *_ssh_options(reach), host]
    scp = ["scp", "-q", "-r", "-P", port, *_ssh_options(reach)]
    name = profile["name"]
    export_dir, out_dir = f"{remote_dir}/{folder.name}", f"{remote_dir}/results-{folder.name}"
    _run([*ssh, f"mkdir -p {shlex.quote(remote_dir)} && rm -rf {shlex.quote(export_dir)}"], f"{name}: ssh {host}", timeout)
    _run([*scp, str(folder), f"{host}:{remote_dir}/"], f"{name}: copying {folder} to {host}", timeout)
    command = " ".join([remote_edgehound, "bench", shlex.quote(export_dir), "--out", shlex.quote(out_dir),
                        "--no-progress", *map(shlex.quote, bench_args)])
    _run([*ssh, command], f"{name}: edgehound bench on {host}", timeout)
    with tempfile.TemporaryDirectory() as tmp:
        _run([*scp, f"{host}:{out_dir}/results.json", tmp], f"{name}: fetching results from {host}", timeout)
        return json.loads((Path(tmp) / "results.json").read_text())
