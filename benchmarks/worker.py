"""Measure one model in a fresh process, so its memory figures are its own.

    python -m edgehound.benchmarks.worker JOB.json RESULT.json

JOB: {"kind": "artifact" | "pytorch", "manifest", "artifact", "checkpoint", "photo", "threads",
      "warmup", "runs", "duration", "samples": [...] | null, "profile": bool}
RESULT: load time, first inference, every steady-state latency (ms), RSS before loading, after
loading and at peak (VmHWM), accuracy on the samples, the top operators when profiled.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path



def rss_mb() -> float:
    return _proc_status("VmRSS") or _psutil_rss()


def peak_rss_mb() -> float:
    return _proc_status("VmHWM") or _psutil_rss()


def _proc_status(field: str) -> float | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        return None
    return None


def _psutil_rss() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def _load(job: dict):
    """(predict, spec, classes, extra) for the job's model."""
    from edgehound.runtime.preprocess import PreprocessSpec

    if job["kind"] == "pytorch":
        import torch

        from edgehound.train.checkpoint import load_model, predictor

        if job.get("threads"):
            torch.set_num_threads(job["threads"])
        model, meta = load_model(job["checkpoint"])
        return predictor(model), PreprocessSpec.from_dict(meta["preprocess"]), meta["classes"], None
    from edgehound.runtime.classifier import Classifier

    options = {"threads": job.get("threads")}
    if job.get("profile") and job.get("backend") == "onnxruntime":
        options["profile"] = True
    clf = Classifier.load(job["manifest"], job["artifact"], **options)
    return clf.predict, clf.spec, clf.classes, getattr(clf._predict, "top_operators", None)


def measure(job: dict) -> dict:
    from edgehound.runtime.evaluation import evaluate_samples
    from edgehound.runtime.preprocess import preprocess
    from edgehound.train.datasets import Sample

    rss_before = rss_mb()
    t0 = time.perf_counter()
    predict, spec, classes, top_operators = _load(job)
    load_s = time.perf_counter() - t0
    rss_loaded = rss_mb()
    x = preprocess(job["photo"], spec)[None]  # a real photo, batch 1

    t0 = time.perf_counter()
    predict(x)
    first_ms = (time.perf_counter() - t0) * 1000
    for _ in range(job["warmup"]):
        predict(x)
    latencies = []
    deadline = time.perf_counter() + job["duration"] if job.get("duration") else None
    while (len(latencies) < job["runs"]) if deadline is None else (time.perf_counter() < deadline):
        t0 = time.perf_counter()
        predict(x)
        latencies.append((time.perf_counter() - t0) * 1000)
    result = {"load_s": load_s, "first_inference_ms": first_ms, "latencies_ms": latencies,
              "rss_before_mb": rss_before, "rss_loaded_mb": rss_loaded}
    if job.get("samples"):
        samples = [Sample.from_dict(s) for s in job["samples"]]
        report = evaluate_samples(predict, classes, spec, samples, progress=False)
        result["accuracy"] = {"accuracy": report["accuracy"], "n": report["n"], "skipped": report["skipped"]}
    if top_operators is not None:
        result["top_operators"] = top_operators()
    result["peak_rss_mb"] = peak_rss_mb()
    return result


def main(argv=None) -> int:
    job_path, result_path = (argv or sys.argv[1:])[:2]
    job = json.loads(Path(job_path).read_text())
    try:
        result = {"ok": True, **measure(job)}
    except Exception as e:  # reported as the row's status; the benchmark goes on with the others
        result = {"ok": False, "error": f"{type(e).__name__}: {e}".strip()[:1000]}
    tmp = Path(result_path).with_suffix(".tmp")
    tmp.write_text(json.dumps(result))
    os.replace(tmp, result_path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
