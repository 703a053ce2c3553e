"""`edgehound bench`: which artifact should run on this device, how fast, in how much memory, how accurately.

Every artifact (and PyTorch eager) is measured in its own process: load time, first inference,
steady-state latency (mean, p50/p90/p99, min, max, std, 95% CI of the median), FPS, peak RSS and
RSS growth, file size, accuracy and drop. The models are timed in interleaved rounds (see
`interleaved`), and each row's speed is a paired ratio to the baseline row with its interval, the
figure that survives a machine whose speed drifts. Artifacts that cannot run here are rows with
their reason, never left out. Results: a terminal table, results.json, report.html.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import math
import os
import platform
import queue
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgehound.runtime.errors import EdgehoundError
from edgehound.runtime.host import busy_cores
from edgehound.runtime.jobs import run_job
from edgehound.runtime.manifest import MANIFEST, read_manifest
from edgehound.util import atomic_write_json, atomic_write_text, is_number, read_json_object

RESULTS_SCHEMA = "edgehound.bench/1"
NOISE_FLOOR = 0.05  # latency changes under 5% are never flagged


@dataclass
class BenchOptions:
    source: Path
    out: Path
    artifacts: list[str] | None = None
    data: Path | None = None
    threads: int | None = None
    warmup: int = 10
    runs: int = 100
    duration: float | None = None
    profile: bool = False
    compare: Path | None = None
    merge: list[Path] | None = None  # earlier results.json files (other devices) to show in one report
    pick: bool = False
    max_drop: float = 1.0
    device: str = "local"  # a device profile name; rpc profiles run TVM artifacts remotely
    progress: bool = True
    sequential: bool = False  # each model timed at once in turn (the old mode), not in interleaved rounds
    rounds: int = 20  # interleaved rounds: each model gets runs/rounds runs (or duration/rounds s) per round
    baseline: str = "onnx"  # the row every ratio is to
    also: list[Path] | None = None  # more export folders measured in the same run (rows named <folder>/<artifact>)


def latency_stats(ms: list[float]) -> dict:
    a = np.sort(np.asarray(ms, float))
    n = len(a)
    # 95% CI of the median from order statistics (Conover): the 1-based ranks floor(n/2 - 1.96 sqrt(n)/2)
    # and ceil(1 + n/2 + 1.96 sqrt(n)/2), here as 0-based indices
    half = 1.96 * math.sqrt(n) / 2
    lo, hi = max(0, math.floor(n / 2 - half) - 1), min(n - 1, math.ceil(1 + n / 2 + half) - 1)
    return {"n": n, "mean": float(a.mean()), "p50": float(np.percentile(a, 50)), "p90": float(np.percentile(a, 90)),
            "p99": float(np.percentile(a, 99)), "min": float(a[0]), "max": float(a[-1]), "std": float(a.std()),
            "median_ci95": [float(a[lo]), float(a[hi])], "fps": 1000.0 / float(a.mean())}


def peak_gflops(threads: int | None, seconds: float = 1.0) -> float:
    """The CPU's practical peak: a large float32 matrix multiply, best of a second of repeats."""
    n = 1024
    a = np.random.default_rng(0).standard_normal((n, n)).astype(np.float32)
    b = a.T.copy()
    a @ b
    best = float("inf")
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        t0 = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best / 1e9


def host_info() -> dict:
    from edgehound.runtime.host import cpu_info

    cpu, _ = cpu_info()
    return {"hostname": platform.node(), "cpu": cpu, "cores": os.cpu_count(), "machine": platform.machine(),
            "system": f"{platform.system()} {platform.release()}", "python": platform.python_version()}


def backend_versions() -> dict:
    from edgehound.runtime.host import package_versions

    out = package_versions(("onnxruntime", "ai-edge-litert", "tflite-runtime", "torch", "numpy", "opencv-python-headless"))
    try:
        from edgehound.export.tvm_env import tvm_python

        out.update(run_job(tvm_python(), "edgehound.runtime.host:package_versions", {"dists": ["apache-tvm"]}, 60))
    except EdgehoundError:  # no TVM environment here
        pass
    return out


def _python_for(backend: str) -> str:
    if backend == "tvm":
        from edgehound.export.tvm_env import tvm_python

        return tvm_python()
    return sys.executable


def _run_worker(job: dict, python: str, timeout: float) -> dict:
    """The sequential mode: one model measured in a fresh process (runtime/jobs.py), or its failure."""
    try:
        return {"ok": True, **run_job(python, "edgehound.benchmarks.worker:measure", {"job": job}, timeout,
                                      what="benchmark worker")}
    except EdgehoundError as e:  # reported as the row's status; the benchmark goes on with the others
        return {"ok": False, "error": str(e)}


def bench(opts: BenchOptions) -> dict:
    manifest, folder = read_manifest(opts.source)
    # earlier results are read and checked first: a bad one found after minutes of timing would cost them
    merged = [read_results(Path(p), "--merge") for p in opts.merge or []]
    earlier_run = read_results(Path(opts.compare), "--compare") if opts.compare else None
    profile = None
    if opts.device != "local":
        from edgehound.devices.profiles import get_profile

        profile = get_profile(opts.device)
    over_ssh = profile is not None and profile["reach"]["kind"] == "ssh"
    if opts.also and (opts.pick or over_ssh):
        raise EdgehoundError("several export folders: --pick and ssh devices take one folder at a time")
    sources = [opts.source, *(opts.also or [])]
    labels = folder_labels(sources)  # row-name prefixes, worked out once (each call reads every manifest)
    if over_ssh:
        results = _bench_over_ssh(profile, folder, opts)
    else:  # every folder's artifacts timed in the same rounds, so their times share the machine's state
        plans = [_plan_here(manifest, folder, profile, opts)]
        plans += [_plan_here(*read_manifest(other), profile, opts) for other in opts.also or []]
        if "/" in opts.baseline:  # one row for every folder's ratios: checked before any timing
            if not opts.also:
                raise EdgehoundError(f"--baseline {opts.baseline}: FOLDER/ARTIFACT sets several folders against one "
                                     "row; with one folder, name the artifact alone")
            timed = [f"{label}/{row['name']}" for label, plan in zip(labels, plans) for row, _, _ in plan.runnable]
            if opts.baseline not in timed:
                raise EdgehoundError(f"--baseline {opts.baseline}: no such row is timed here ({', '.join(timed)})")
        busy_before = busy_cores()  # the bench's own processes are idle then: what else runs on this machine
        _time_together([item for plan in plans for item in plan.runnable], opts)
        busy_after = busy_cores()
        for plan in plans:
            _complete(plan, opts)
        results = plans[0].results
        _note_other_load(results, busy_before, busy_after)
    if opts.also:  # rows named <folder>/<artifact>
        first, *others = labels
        results["models"] = {first: results["model"]}
        for row in results["rows"]:
            row["name"] = f"{first}/{row['name']}"
        for plan, label in zip(plans[1:], others):
            results["models"][label] = plan.results["model"]
            results["rows"] += [{**r, "name": f"{label}/{r['name']}"} for r in plan.results["rows"]]
    cards = [read_manifest(src)[1] / "CARD.md" for src in sources]  # the report links each model's card
    results["cards"] = {label: str(card) for label, card in zip(labels, cards) if card.is_file()}
    _ratios(results, opts.baseline)  # before merging: only rows timed in the same rounds are paired
    for old in merged:  # rows of other devices, so one report covers them all, and what was wrong when they ran
        results["rows"] += [{**r, "device": r.get("device", old.get("device", "local"))} for r in old["rows"]]
        results.setdefault("warnings", []).extend(_merged_warnings(old))
    if earlier_run:
        results["compare"] = compare(results, earlier_run)
    if opts.pick:
        results["pick"] = pick(results, folder / MANIFEST, opts.max_drop)
    opts.out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(opts.out / "results.json", results)
    from edgehound.benchmarks.report import write_report

    write_report(results, opts.out)
    return results


OTHER_LOAD_CORES = 0.5  # more cores than this busy with other work, before or after the timing: the figures may not hold


def _merged_warnings(old: dict) -> list[str]:
    """A merged run's warnings, each naming the device it was about: a warning of a run merged into that one
    already names its own."""
    device = old.get("device", "local")
    devices = {device, *(r.get("device") for r in old["rows"])}
    return [w if any(w.startswith(f"{d}: ") for d in devices if d) else f"{device}: {w}" for w in old.get("warnings", [])]


def _note_other_load(results: dict, before: float | None, after: float | None) -> None:
    """Record how busy the machine was without the bench, and warn where it was busy: on a machine loaded
    beyond the bench, runtimes' threads get a share of the cores that differs by runtime (TVM's pool ran at
    over 100x its quiet time beside two busy loops on 2 cores, onnxruntime at about 1x: train/STUDY.md,
    "The bench on a busy machine"), so neither latencies nor ratios hold."""
    results["settings"]["other_load_cores"] = [None if v is None else round(v, 2) for v in (before, after)]
    busy = max((v for v in (before, after) if v is not None), default=0.0)
    if busy > OTHER_LOAD_CORES:
        results.setdefault("warnings", []).append(
            f"the machine was busy with other work ({busy:.1f} of {os.cpu_count()} cores, measured before and after the "
            "timing): latencies and ratios may not hold; rerun on a quiet machine")


@dataclass
class _Plan:
    """One export folder's rows (from its manifest) and the artifacts of them that are timed here."""
    results: dict
    jobs: list  # (manifest entry, worker job), one per row
    runnable: list  # (row, entry, job) of the artifacts this host times


def _plan_here(manifest: dict, folder: Path, profile: dict | None, opts: BenchOptions) -> _Plan:
    """Every artifact's row, measured from this host: here (timed by _time_together), or TVM ones on an
    RPC device (measured now)."""
    from edgehound.runtime.evaluation import select_samples

    model = manifest["model"]
    # the eager reference (the pytorch row) always comes along, as the baseline of the accuracy drops
    entries = [e for e in manifest["artifacts"]
               if not opts.artifacts or e["name"] in opts.artifacts or e["backend"] == "pytorch"]
    if opts.artifacts and not opts.also:  # with several folders, each runs the names it has
        unknown = set(opts.artifacts) - {e["name"] for e in entries}
        if unknown:
            raise EdgehoundError(f"{folder / MANIFEST}: no artifact {', '.join(sorted(unknown))}")
    classes = model["classes"]
    samples = None
    if opts.data:
        samples = [s.to_dict() for s in select_samples(classes, opts.data)]
    photo = _a_photo(samples)

    results = {
        "schema": RESULTS_SCHEMA, "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "device": opts.device, "host": host_info(), "versions": backend_versions(), "manifest": str(folder / MANIFEST),
        "model": {k: model.get(k) for k in ("config", "macs", "params", "checkpoint_sha256")},
        "settings": {"threads": opts.threads, "warmup": opts.warmup, "runs": opts.runs, "duration": opts.duration,
                     "data": str(opts.data) if opts.data else None, "batch": 1},
        "rows": [],
    }
    results["peak_gflops"] = peak_gflops(opts.threads)
    if profile is not None:  # eager PyTorch, the reference, runs on this host only
        entries = [e for e in entries if e["backend"] != "pytorch"]
    has_torch = importlib.util.find_spec("torch") is not None
    jobs = [(e, {"manifest": str(folder / MANIFEST), "artifact": e["name"], "backend": e["backend"]}) for e in entries]
    runnable = []
    for entry, job in jobs:
        row = _row_base(entry)
        row["device"] = opts.device
        if entry.get("status") == "failed":
            row.update(status="failed", reason=entry.get("reason"))
        elif profile is not None:
            row.update(_remote_row(entry, folder, profile, opts))
        elif not entry.get("runs_here", True) or entry["backend"] == "vela":
            row.update(status="not run", reason=f"built for {entry.get('target')}: needs that device")
        elif entry["backend"] == "pytorch" and not has_torch:  # a device with a runtime extra only
            row.update(status="not run", reason="the eager reference needs torch (the train extra)")
        else:
            job.update(photo=photo, threads=opts.threads, warmup=opts.warmup, runs=opts.runs, duration=opts.duration,
                       samples=samples, profile=opts.profile)
            runnable.append((row, entry, job))
        results["rows"].append(row)
    return _Plan(results, jobs, runnable)


def _time_together(runnable: list, opts: BenchOptions) -> None:
    """Time the artifacts (of one folder or several) in the same interleaved rounds, or one after the
    other with --sequential, and fill in their rows."""
    from tqdm import tqdm

    timeout = 600 + (opts.duration or 0)
    if opts.sequential:
        measured = [_run_worker(job, _python_for(entry["backend"]), timeout)
                    for _, entry, job in tqdm(runnable, desc="benchmarking", unit="model", disable=not opts.progress,
                                              leave=False)]
    else:
        measured = interleaved([([_python_for(entry["backend"]), "-m", "edgehound.benchmarks.worker", "--serve"], job)
                                for _, entry, job in runnable], opts.rounds, opts.runs, opts.duration, timeout,
                               opts.progress)
    for (row, entry, _), m in zip(runnable, measured):
        if not m["ok"]:
            row.update(status="error", reason=m["error"])
            continue
        row.update(_figures(m))
        if entry.get("status") == "rejected":  # the export's reason first, then any note of the timing
            row["status"] = "rejected"
            row["reason"] = "; ".join(r for r in (entry.get("reason"), row.get("reason")) if r)


def _complete(plan: _Plan, opts: BenchOptions) -> None:
    """A folder's figures that need its timed rows: accuracies the manifest measured, drops, roofline."""
    results = plan.results
    for row, (entry, _) in zip(results["rows"], plan.jobs):
        if row.get("accuracy") is None and entry.get("accuracy", {}).get("accuracy") is not None:
            row["accuracy"] = entry["accuracy"]["accuracy"]
            row["accuracy_source"] = "export manifest"
    results["settings"]["mode"] = "sequential" if opts.sequential else \
        f"interleaved, {opts.rounds} rounds, each burst once the other models' threads are idle"
    _drops(results)
    macs = results["model"].get("macs")
    if macs:
        results["roofline_ms"] = macs * 2 / (results["peak_gflops"] * 1e9) * 1000
        for row in results["rows"]:
            if row.get("latency"):
                row["roofline_ratio"] = row["latency"]["p50"] / results["roofline_ms"]


class ServedWorker:
    """A worker process that keeps its model loaded and times bursts on request (worker.serve)."""

    def __init__(self, cmd: list[str], job: dict, timeout: float):
        self.timeout = timeout
        self.tmp = tempfile.TemporaryDirectory()
        job_path = Path(self.tmp.name) / "job.json"
        job_path.write_text(json.dumps(job))
        self.stderr = open(Path(self.tmp.name) / "stderr.txt", "w+")
        self.proc = subprocess.Popen([*cmd, str(job_path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self.stderr, text=True)
        self.lines: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put(None)  # end of file: the worker is gone

    def ask(self, request: dict | None = None) -> dict:
        """Send a request (None: wait for the load report) and return the worker's answer."""
        try:
            if request is not None:
                self.proc.stdin.write(json.dumps(request) + "\n")
                self.proc.stdin.flush()
            line = self.lines.get(timeout=self.timeout)
        except queue.Empty:
            self.close()
            return {"ok": False, "error": f"timed out after {self.timeout:.0f} s"}
        except OSError:
            line = None
        if line is None:
            self.proc.wait()
            self.stderr.seek(0)
            tail = self.stderr.read().strip().splitlines()[-1:] or [f"exit code {self.proc.returncode}"]
            return {"ok": False, "error": f"worker died: {tail[0][:300]}"}
        return json.loads(line)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.stderr.close()
        self.tmp.cleanup()


def interleaved(starts: list[tuple[list[str], dict]], rounds: int, runs: int, duration: float | None,
                timeout: float, progress: bool = False, seed: int = 0, burst_warmup: int = 2) -> list[dict]:
    """Measure several models under the same machine state: load each in its own process (one after
    the other, so load times do not compete), then time them in rounds, each round giving every
    model a burst in a fresh random order. A drift of the machine's speed then lands in every model's
    bursts of that round alike, and per-round ratios cancel it. Each burst starts with `burst_warmup`
    untimed runs: the model was idle while the others ran, and its first run pays for cold caches and
    sleeping threads (a bias against the fast models, whose bursts are short). Returns
    worker.measure's figures per model plus its per-round medians (round_p50_ms)."""
    from tqdm import tqdm

    workers, answers = [], []
    for cmd, job in starts:
        worker = ServedWorker(cmd, job, timeout)
        workers.append(worker)
        answers.append(worker.ask())
    if not duration:
        rounds = max(1, min(rounds, runs))  # exactly `runs` in all: the first runs % rounds rounds get one more
    latencies = [[] for _ in workers]
    round_p50 = [[] for _ in workers]
    waits = [[] for _ in workers]  # seconds each burst waited for idle threads
    rng = np.random.default_rng(seed)
    for k in tqdm(range(rounds), desc="benchmarking (interleaved rounds)", disable=not progress, leave=False):
        burst = {"seconds": duration / rounds} if duration else {"runs": runs // rounds + (k < runs % rounds)}
        burst["warmup"] = burst_warmup
        for i in rng.permutation(len(workers)):
            if not answers[i]["ok"]:
                continue
            waits[i].append(wait_until_idle([w.proc.pid for w, a in zip(workers, answers) if a["ok"]]))
            reply = workers[i].ask(burst)
            if not reply["ok"]:
                answers[i] = reply
                continue
            latencies[i] += reply["latencies_ms"]
            round_p50[i].append(float(np.median(reply["latencies_ms"])))
    out = []
    for worker, answer, lat, p50, waited in zip(workers, answers, latencies, round_p50, waits):
        finished = worker.ask({"finish": True}) if answer["ok"] else answer
        worker.close()
        if not finished["ok"]:
            out.append(finished)
            continue
        out.append({"ok": True, **answer["loaded"], "latencies_ms": lat, "round_p50_ms": p50, "idle_waits_s": waited,
                    **finished["finished"]})
    return out


IDLE_CAP_S = 2.0  # the longest a burst waits for the other models' threads to go idle


def wait_until_idle(pids: list[int], window: float = 0.05, busy: float = 0.01, cap: float = IDLE_CAP_S) -> float:
    """Wait until the processes together use less than `busy` s of CPU in one `window` and none of their
    threads is runnable (at most `cap` s), and return the seconds waited. Runtimes keep their threads
    spinning for a while after a burst (onnxruntime's intra-op pool, OpenMP, TVM's pool), and on a 2-core
    machine that spin took the cores from the next model's burst: edge's tflite ran at 1.85x of onnxruntime
    in a bench with every row, and at 1.05x with this wait (train/STUDY.md, "The bench waits for idle
    threads"). CPU time alone misses a spinning thread that gets little of a core on a machine loaded
    beyond the bench; its run state (R) does not. Where /proc cannot be read, a fixed pause of `cap` / 4."""
    from edgehound.runtime.host import cpu_seconds, runnable_threads

    def busy_now() -> tuple[list[float | None], list[int | None]]:
        return [cpu_seconds(pid) for pid in pids], [runnable_threads(pid) for pid in pids]

    start = time.perf_counter()
    used = [cpu_seconds(pid) for pid in pids]  # the run state counts at the end of a window, not here
    if None in used:
        time.sleep(cap / 4)
        return time.perf_counter() - start
    while time.perf_counter() - start < cap:
        time.sleep(window)
        now, running = busy_now()
        if None in now or None in running or (sum(now) - sum(used) < busy and sum(running) == 0):
            break
        used = now
    return time.perf_counter() - start


def paired_ratio(a: list[float], b: list[float], resamples: int = 2000, seed: int = 0) -> dict:
    """a / b from per-round medians of two models timed in the same rounds: the median of the per-round
    ratios, and its 95% bootstrap interval over rounds. "no difference" when the interval holds 1."""
    r = np.asarray(a, float) / np.asarray(b, float)
    rng = np.random.default_rng(seed)
    boots = np.median(r[rng.integers(0, len(r), (resamples, len(r)))], axis=1)
    lo, hi = (float(v) for v in np.percentile(boots, [2.5, 97.5]))
    verdict = "no difference" if lo <= 1 <= hi else ("faster" if hi < 1 else "slower")
    return {"value": float(np.median(r)), "ci95": [lo, hi], "rounds": len(r), "verdict": verdict}


def _ratios(results: dict, baseline: str) -> None:
    """Each timed row's paired ratio to the baseline row: its own model's (default onnx), or with
    several folders one row for all (FOLDER/ARTIFACT), since every folder is timed in the same rounds."""
    rows = results["rows"]
    for row in rows:
        folder = row["name"].rsplit("/", 1)[0] + "/" if "/" in row["name"] else ""
        name = baseline if "/" in baseline else folder + baseline
        base = next((b for b in rows if b["name"] == name and b.get("round_p50_ms")), None)
        if base is None or not row.get("round_p50_ms") or len(row["round_p50_ms"]) != len(base["round_p50_ms"]):
            continue
        row["ratio"] = {"to": base["name"], **paired_ratio(row["round_p50_ms"], base["round_p50_ms"])}


def _bench_over_ssh(profile: dict, folder: Path, opts: BenchOptions) -> dict:
    """The whole benchmark run on the device by its own edgehound; a failure is that device's row."""
    from edgehound.devices.ssh import bench_over_ssh

    args = ["--runs", str(opts.runs), "--warmup", str(opts.warmup)]
    if opts.artifacts:
        args += ["--artifacts", *opts.artifacts]
    if opts.threads:
        args += ["--threads", str(opts.threads)]
    if opts.duration:
        args += ["--duration", str(opts.duration)]
    try:
        results = bench_over_ssh(profile, folder, args)
        for row in results["rows"]:
            row["device"] = profile["name"]
    except EdgehoundError as e:
        results = {"schema": RESULTS_SCHEMA, "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                   "host": {"cpu": profile["reach"]["host"], "cores": None}, "versions": {}, "model": {},
                   "peak_gflops": 0.0, "settings": {},
                   "rows": [{"name": "*", "device": profile["name"], "format": "-", "backend": "-", "precision": "-",
                             "size_bytes": None, "status": "error", "reason": str(e), "accuracy": None}]}
    results["device"] = profile["name"]
    return results


def _remote_row(entry: dict, folder: Path, profile: dict, opts: BenchOptions) -> dict:
    """Measure one artifact on the profile's device; every remote call is bounded in time."""
    reach = profile["reach"]
    if entry["name"] not in profile["formats"]:
        return {"status": "not run", "reason": f"{profile['name']} does not run {entry['name']}"}
    if reach["kind"] != "rpc" or entry["backend"] != "tvm":
        return {"status": "not run", "reason": f"{reach['kind']} reach for {entry['backend']} artifacts is not built yet"}
    from edgehound.runtime.manifest import select_artifact, verify

    try:  # the same checks as a local load: inside the folder, the recorded size and sha256
        artifact = select_artifact(folder / MANIFEST, entry["name"])
        verify(artifact, runs_here=False)  # the device loads it, not this host
    except EdgehoundError as e:
        return {"status": "error", "reason": str(e)}
    shape = entry["input"]["shape"]
    session_timeout = reach.get("timeout", 60)
    limit = session_timeout + 10  # the RPC session's own bound, plus starting TVM's interpreter
    job = {"tracker": reach["tracker"], "key": reach["key"], "lib": str(artifact.path), "shape": shape,
           "device": "cuda" if "cuda" in entry["name"] else "cpu", "repeat": opts.runs, "number": 1,
           "timeout": session_timeout}
    try:
        lat = run_job(_python_for("tvm"), "edgehound.devices.rpc_bench:run", job, limit,
                      what=f"{profile['name']} via RPC {reach['tracker']}")["latencies_ms"]
    except EdgehoundError as e:
        return {"status": "error", "reason": str(e)[:400]}
    return {"latency": latency_stats(lat), "latencies_ms": lat, "status": "ok", "measured_by": "tvm time_evaluator over RPC",
            "peak_rss_mb": None}


def folder_labels(sources: list[Path]) -> list[str]:
    """Row-name prefixes for several export folders: their names, or their paths as given when two
    share a name (two folders called "efficient" must not share a baseline row)."""
    folders = [read_manifest(s)[1] for s in sources]
    names = [f.name for f in folders]
    if len(set(names)) == len(names):
        return names
    return [str(s).rstrip("/").removesuffix("/" + MANIFEST) for s in sources]


def _a_photo(samples) -> str:
    if samples:
        return samples[0]["path"]
    here = Path(__file__).resolve().parents[1] / "tests" / "sample"
    for p in sorted(here.rglob("*.JPEG")):
        return str(p)
    raise EdgehoundError("no photo to time with: pass --data DIR")


def _row_base(entry: dict) -> dict:
    tuned = entry.get("tvm", {}).get("tuned") if entry.get("backend") == "tvm" else None
    return {"name": entry["name"], "format": entry["format"], "backend": entry["backend"],
            "precision": entry["precision"], "size_bytes": entry.get("size_bytes"),
            "sha256": entry.get("sha256"), "status": "ok", "reason": None,  # which build was timed (model cards check)
            "untuned": isinstance(tuned, str) and tuned.startswith("untuned"),
            "tuned_on": tuned["cpu"] if isinstance(tuned, dict) and tuned.get("other_cpu") else None, "accuracy": None}


def _figures(m: dict) -> dict:
    row = {"load_s": m["load_s"], "first_inference_ms": m["first_inference_ms"], "latency": latency_stats(m["latencies_ms"]),
           "latencies_ms": [round(v, 4) for v in m["latencies_ms"]],
           "peak_rss_mb": m["peak_rss_mb"], "rss_delta_mb": m["peak_rss_mb"] - m["rss_before_mb"],
           "rss_loaded_mb": m["rss_loaded_mb"]}
    if "accuracy" in m:
        row.update(accuracy=m["accuracy"]["accuracy"], accuracy_n=m["accuracy"]["n"], accuracy_source="measured")
    if m.get("top_operators"):
        row["top_operators"] = m["top_operators"]
    if m.get("round_p50_ms"):
        row["round_p50_ms"] = [round(v, 4) for v in m["round_p50_ms"]]
    if m.get("idle_waits_s"):
        waits = m["idle_waits_s"]
        row["idle_wait"] = {"bursts": len(waits), "waited_s": round(sum(waits), 3),
                            "at_cap": sum(w >= IDLE_CAP_S for w in waits)}
        if row["idle_wait"]["at_cap"]:  # a note beside the table: these bursts shared the cores
            row["reason"] = (f"{row['idle_wait']['at_cap']} of {len(waits)} bursts started after {IDLE_CAP_S:g} s with "
                             "another process's threads still busy: its latency may read high")
    return row


def _drops(results: dict) -> None:
    """Accuracy drop in percentage points against the fp32 reference (PyTorch, else ONNX fp32)."""
    rows = {r["name"]: r for r in results["rows"]}
    ref = next((rows[n] for n in ("pytorch", "onnx") if n in rows and rows[n].get("accuracy") is not None), None)
    for r in results["rows"]:
        if ref is not None and r.get("accuracy") is not None:
            r["drop_pp"] = (ref["accuracy"] - r["accuracy"]) * 100
    results["accuracy_reference"] = ref["name"] if ref else None


def _pair(x) -> bool:
    return isinstance(x, list) and len(x) == 2 and all(is_number(v) for v in x)


# What the report and compare read of a results.json row: each field's check (absent or null is allowed
# for all but name and status: a row that was not run has no figures).
ROW_FIELDS = {
    "name": lambda v: isinstance(v, str), "status": lambda v: isinstance(v, str),
    **{k: lambda v: isinstance(v, str) for k in ("precision", "backend", "device", "reason", "tuned_on", "sha256")},
    **{k: is_number for k in ("size_bytes", "accuracy", "peak_rss_mb")},
    "top_operators": lambda v: isinstance(v, list) and all(
        isinstance(o, dict) and isinstance(o.get("op"), str) and is_number(o.get("ms")) and is_number(o.get("share")) for o in v),
    "latencies_ms": lambda v: isinstance(v, list) and len(v) > 0 and all(is_number(x) for x in v),  # the report plots them
    "latency": lambda v: isinstance(v, dict) and all(is_number(v.get(k)) for k in ("p50", "p90")) and _pair(v.get("median_ci95"))
    and all(v.get(k) is None or is_number(v[k]) for k in ("fps", "mean")),
    "ratio": lambda v: isinstance(v, dict) and isinstance(v.get("to"), str) and is_number(v.get("value")) and _pair(v.get("ci95"))
    and isinstance(v.get("verdict"), str),
}


def read_results(path: Path, option: str) -> dict:
    """An earlier results.json (--merge, --compare), checked where the report and compare read it."""
    doc = read_json_object(path, "results.json", where=f"{option} {path}")
    if doc.get("schema") != RESULTS_SCHEMA:
        raise EdgehoundError(f"{option} {path}: not an edgehound results.json (schema {doc.get('schema')!r}, "
                             f"expected {RESULTS_SCHEMA})")
    if not isinstance(doc.get("rows"), list) or not all(isinstance(r, dict) for r in doc["rows"]):
        raise EdgehoundError(f"{option} {path}: its rows are not a list of objects")
    if not isinstance(doc.get("warnings", []), list) or not all(isinstance(w, str) for w in doc.get("warnings", [])):
        raise EdgehoundError(f"{option} {path}: its warnings are not a list of texts")
    if not isinstance(doc.get("device", ""), str):
        raise EdgehoundError(f"{option} {path}: its device {doc['device']!r} is not a name")
    for i, row in enumerate(doc["rows"]):
        # what the report reads of every row, and of a timed row its times
        required = {"name", "status", "precision", "backend", *(["latencies_ms"] if row.get("latency") is not None else [])}
        bad = [k for k, ok in ROW_FIELDS.items() if (k in required or row.get(k) is not None) and not ok(row.get(k))]
        if bad:
            raise EdgehoundError(f"{option} {path}: row {i + 1} ({row.get('name')!r}) has an unusable {bad[0]} "
                                 f"{row.get(bad[0])!r}")
    return doc


def compare(new: dict, old: dict) -> list[dict]:
    """Ratios new/old per artifact and metric; latency flagged when beyond both runs' noise; with
    interleaved rounds in both runs, each artifact's ratio to the baseline, flagged when the two
    runs' intervals do not overlap (the figure that holds across a noisy machine)."""
    old_rows = {r["name"]: r for r in old["rows"]}
    out = []
    for r in new["rows"]:
        o = old_rows.get(r["name"])
        if not o or not r.get("latency") or not o.get("latency"):
            continue
        noise = max(NOISE_FLOOR, _rel_halfwidth(r["latency"]) + _rel_halfwidth(o["latency"]))
        item = {"name": r["name"], "noise": noise}
        for key, new_v, old_v in (("p50", r["latency"]["p50"], o["latency"]["p50"]),
                                  ("p90", r["latency"]["p90"], o["latency"]["p90"]),
                                  ("peak_rss", r.get("peak_rss_mb"), o.get("peak_rss_mb")),
                                  ("size", r.get("size_bytes"), o.get("size_bytes"))):
            if new_v and old_v:
                ratio = new_v / old_v
                item[key] = {"new": new_v, "old": old_v, "ratio": ratio,
                             "flag": (abs(ratio - 1) > noise) if key in ("p50", "p90") else abs(ratio - 1) > NOISE_FLOOR}
        if r.get("ratio") and o.get("ratio") and r["ratio"]["to"] == o["ratio"]["to"]:
            # ratios to the same baseline travel across runs and machines, absolute times do not
            (lo, hi), (old_lo, old_hi) = r["ratio"]["ci95"], o["ratio"]["ci95"]
            item["ratio"] = {"to": r["ratio"]["to"], "new": r["ratio"]["value"], "old": o["ratio"]["value"],
                             "change": r["ratio"]["value"] / o["ratio"]["value"], "flag": hi < old_lo or lo > old_hi}
        if r.get("accuracy") is not None and o.get("accuracy") is not None:
            item["accuracy"] = {"new": r["accuracy"], "old": o["accuracy"],
                                "delta_pp": (r["accuracy"] - o["accuracy"]) * 100}
        out.append(item)
    return out


def _rel_halfwidth(lat: dict) -> float:
    lo, hi = lat["median_ci95"]
    return (hi - lo) / 2 / lat["p50"] if lat["p50"] else 0.0


def pick(results: dict, manifest_path: Path, max_drop: float) -> dict:
    """The fastest artifact within the accuracy budget, written into the manifest as its default (the
    manifest as it was is kept beside it, manifest.before-pick.json, to undo it by hand). With
    interleaved rounds, "fastest" is by paired ratio, and the pick says when the runner-up cannot be
    told apart from it (their own paired ratio's interval holds 1)."""
    candidates = [r for r in results["rows"] if r["status"] == "ok" and r["name"] != "pytorch" and r.get("latency")
                  and r.get("drop_pp") is not None and r["drop_pp"] <= max_drop]
    if not candidates:
        raise EdgehoundError(f"no artifact ran within --max-drop {max_drop} pp")
    candidates.sort(key=lambda r: r["ratio"]["value"] if r.get("ratio") else r["latency"]["p50"])
    best = candidates[0]
    choice = {"artifact": best["name"], "p50_ms": best["latency"]["p50"], "drop_pp": best["drop_pp"],
              "max_drop": max_drop, "device": results["device"], "host": results["host"]["cpu"],
              "at": results["created"]}
    if len(candidates) > 1 and best.get("round_p50_ms") and candidates[1].get("round_p50_ms"):
        versus = paired_ratio(best["round_p50_ms"], candidates[1]["round_p50_ms"])
        choice["runner_up"] = {"artifact": candidates[1]["name"], "ratio": versus["value"], "ci95": versus["ci95"],
                               "told_apart": versus["verdict"] != "no difference"}
    before = manifest_path.read_text()
    manifest = json.loads(before)
    atomic_write_text(manifest_path.with_name("manifest.before-pick.json"), before)
    manifest["default"] = best["name"]
    manifest["pick"] = choice
    atomic_write_json(manifest_path, manifest)
    return choice
