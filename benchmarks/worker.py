"""Measure one model in a fresh process, so its memory figures are its own.

    measure(job), as a job of runtime/jobs.py                      (sequential: every run at once)
    python -m edgehound.benchmarks.worker --serve JOB.json         (interleaved: bursts on request, see serve;
                                                                    a conversation, so a line protocol of its own)

JOB: {"manifest", "artifact", "backend", "photo", "threads", "warmup", "runs", "duration",
      "samples": [...] | null, "profile": bool}
RESULT: load time, first inference, every steady-state latency (ms), RSS before loading, after
loading and at peak (VmHWM), accuracy on the samples, the top operators when profiled.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from edgehound.runtime.host import peak_rss_mb, rss_mb


def _load(job: dict):
    """The job's artifact as a Classifier: eager PyTorch is one more row."""
    from edgehound.runtime.classifier import Classifier

    options = {"threads": job.get("threads")}
    if job.get("profile") and job.get("backend") == "onnxruntime":
        options["profile"] = True
    return Classifier.load(job["manifest"], job["artifact"], **options)


class Measured:
    """One loaded model: timed on demand, then finished with its accuracy and peak memory."""

    def __init__(self, job: dict):
        self.job = job
        self.rss_before = rss_mb()
        t0 = time.perf_counter()
        clf = _load(job)
        self.predict, self.spec, self.classes, self.top_operators = clf.predict, clf.spec, clf.classes, \
            clf.backend.top_operators
        self.load_s = time.perf_counter() - t0
        self.rss_loaded = rss_mb()
        # A real photo, batch 1, as classify and the camera give it to the model: the integers of a model with
        # integer input (tflite-int8), not floats its backend would quantize in NumPy on every timed run.
        self.x = clf.to_input(clf.prepare(job["photo"])[None])
        t0 = time.perf_counter()
        self.predict(self.x)
        self.first_ms = (time.perf_counter() - t0) * 1000
        for _ in range(job["warmup"]):
            self.predict(self.x)

    def loaded(self) -> dict:
        return {"load_s": self.load_s, "first_inference_ms": self.first_ms, "rss_before_mb": self.rss_before,
                "rss_loaded_mb": self.rss_loaded}

    def time_runs(self, runs: int | None = None, seconds: float | None = None, warmup: int = 0) -> list[float]:
        """Latencies (ms) of `runs` inferences, or of as many as fit in `seconds`, after `warmup` untimed ones."""
        for _ in range(warmup):
            self.predict(self.x)
        latencies = []
        deadline = time.perf_counter() + seconds if seconds else None
        while (len(latencies) < runs) if deadline is None else (time.perf_counter() < deadline):
            t0 = time.perf_counter()
            self.predict(self.x)
            latencies.append((time.perf_counter() - t0) * 1000)
        return latencies

    def finish(self) -> dict:
        from edgehound.runtime.evaluation import evaluate_samples
        from edgehound.runtime.datasets import Sample

        result = {}
        if self.job.get("samples"):
            samples = [Sample.from_dict(s) for s in self.job["samples"]]
            report = evaluate_samples(self.predict, self.classes, self.spec, samples, progress=False)
            result["accuracy"] = {"accuracy": report["accuracy"], "n": report["n"], "skipped": report["skipped"]}
        operators = self.top_operators()  # None unless the backend was loaded with profiling
        if operators:
            result["top_operators"] = operators
        result["peak_rss_mb"] = peak_rss_mb()
        return result


def measure(job: dict) -> dict:
    """The sequential mode: load, time every run at once, finish."""
    m = Measured(job)
    latencies = m.time_runs(job["runs"], job.get("duration"))
    return {**m.loaded(), "latencies_ms": latencies, **m.finish()}


def serve(job: dict) -> int:
    """The interleaved mode: load, say so, then time bursts on request until told to finish.

    Protocol (one JSON object per line): out {"ok": true, "loaded": {...}}; in {"runs": N} or
    {"seconds": S}, optionally with "warmup": W untimed runs first, out {"ok": true, "latencies_ms": [...]}; in {"finish": true}, out {"ok": true,
    "finished": {...}}. Any failure: {"ok": false, "error": "..."} and exit. The protocol has stdout
    to itself: whatever a library prints goes to stderr.
    """
    protocol = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)

    def say(obj: dict) -> None:
        protocol.write(json.dumps(obj) + "\n")

    try:
        m = Measured(job)
        say({"ok": True, "loaded": m.loaded()})
        for line in sys.stdin:
            request = json.loads(line)
            if request.get("finish"):
                say({"ok": True, "finished": m.finish()})
                return 0
            say({"ok": True, "latencies_ms": m.time_runs(request.get("runs"), request.get("seconds"),
                                                         request.get("warmup", 0))})
    except Exception as e:  # reported as the row's status; the benchmark goes on with the others
        say({"ok": False, "error": f"{type(e).__name__}: {e}".strip()[:1000]})
    return 0


def main(argv=None) -> int:
    argv = argv or sys.argv[1:]
    return serve(json.loads(Path(argv[1]).read_text())) if argv[:1] == ["--serve"] else 2


if __name__ == "__main__":
    sys.exit(main())
