"""One way across a process boundary: a JSON job file in, a JSON result file out.

    python -m edgehound.runtime.jobs JOB.json RESULT.json

JOB: {"call": "edgehound.<module>:<function>", "args": {...}}. The function takes the args as keywords
and returns a JSON-able dict. RESULT: {"ok": true, "result": {...}} or {"ok": false, "error": "..."}.
The caller (`run_job`) gives every job one timeout and turns every failure (an error, a crash that
left no result, a timeout) into one EdgehoundError naming the job.

Why processes at all: TVM's compiler and runtime live in their own environment (.venv-tvm), a
runtime that crashes must not take an export down, and each benchmarked model needs a process of its
own for its memory figures. The worker lives in runtime/ so a device runs the same code.
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
import tempfile
import traceback
from pathlib import Path

from edgehound.runtime.errors import EdgehoundError


def run_job(python: str, call: str, args: dict, timeout: float | None = None, cwd: str | Path | None = None,
            what: str | None = None) -> dict:
    """Run `call(**args)` in a fresh `python` and return its dict, or raise one EdgehoundError."""
    what = what or call.rpartition(":")[2]
    with tempfile.TemporaryDirectory(prefix="edgehound-job-") as tmp:
        job_path, result_path = Path(tmp) / "job.json", Path(tmp) / "result.json"
        job_path.write_text(json.dumps({"call": call, "args": args}))
        try:
            proc = subprocess.run([python, "-m", "edgehound.runtime.jobs", str(job_path), str(result_path)],
                                  capture_output=True, text=True, timeout=timeout, cwd=cwd)
        except subprocess.TimeoutExpired:
            raise EdgehoundError(f"{what}: timed out after {timeout:.0f} s") from None
        if not result_path.is_file():  # killed or crashed before it could answer
            tail = [line for line in (proc.stderr or proc.stdout).strip().splitlines() if line.strip()][-3:]
            raise EdgehoundError(f"{what}: the worker died (exit code {proc.returncode}): "
                                 + (" | ".join(tail)[-500:] or "no output"))
        result = json.loads(result_path.read_text())
    if not result.get("ok"):
        raise EdgehoundError(f"{what}: {result.get('error', 'failed without saying why')}")
    return result["result"]


def _resolve(call: str):
    module, _, name = call.partition(":")
    if not module.startswith("edgehound.") or not name:  # a job file names edgehound's own functions only
        raise EdgehoundError(f"job call {call!r}: expected edgehound.<module>:<function>")
    return getattr(importlib.import_module(module), name)


def main(argv: list[str] | None = None) -> int:
    job_path, result_path = (argv or sys.argv[1:])[:2]
    try:
        job = json.loads(Path(job_path).read_text())
        result = {"ok": True, "result": _resolve(job["call"])(**job.get("args", {}))}
    except EdgehoundError as e:  # our own errors are already one clear line
        result = {"ok": False, "error": str(e)}
    except Exception as e:  # a library's: its type and message, the traceback's last frame on stderr
        traceback.print_exc()
        result = {"ok": False, "error": f"{type(e).__name__}: {str(e).strip()[:1000]}"}
    from edgehound.util import atomic_write_json

    atomic_write_json(result_path, result)
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
