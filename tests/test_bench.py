"""The benchmark CLI end to end on the tiny export, and the regression gates."""

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from conftest import SAMPLE, edgehound_cmd
from edgehound.benchmarks import gates
from edgehound.benchmarks.bench import latency_stats
from edgehound.benchmarks.report import pareto_front
from edgehound.runtime.errors import EdgehoundError
from edgehound.util import atomic_write_json, sha256_file

REPO_BASELINES = sorted((SAMPLE.parents[1] / "benchmarks" / "baselines").glob("*.json"))


@pytest.fixture
def export_copy(tiny_export, tmp_path):
    copy = tmp_path / "export"
    shutil.copytree(tiny_export, copy)
    return copy


def run_bench(source, out, *extra, exit_code=0):
    sources = [str(s) for s in source] if isinstance(source, list) else [str(source)]
    result = subprocess.run([*edgehound_cmd(), "bench", *sources, "--out", str(out), "--runs", "20", "--warmup", "2",
                             "--no-progress", *extra], capture_output=True, text=True, timeout=600)
    assert result.returncode == exit_code, result.stdout[-2000:] + result.stderr[-2000:]
    return result, json.loads((out / "results.json").read_text())


def test_several_models_side_by_side_in_one_run(tiny_export, tmp_path):
    other = tmp_path / "shipped"
    shutil.copytree(SAMPLE.parents[1] / "runtime" / "models" / "efficient", other)
    _, res = run_bench([tiny_export, other], tmp_path / "b", "--artifacts", "onnx")
    rows = {r["name"]: r for r in res["rows"]}
    assert set(rows) == {f"{tiny_export.name}/onnx", "shipped/onnx", f"{tiny_export.name}/pytorch", "shipped/pytorch"}
    assert all(r["status"] == "ok" and r["latency"]["n"] == 20 for r in rows.values())
    assert res["models"]["shipped"]["config"] == "efficient" and res["models"][tiny_export.name]["config"] == "tiny"
    assert rows["shipped/onnx"]["roofline_ratio"] > 0  # each row against its own model's MACs
    assert all(r["idle_wait"]["bursts"] == len(r["round_p50_ms"]) for r in rows.values())  # one wait per burst


def test_a_row_whose_bursts_waited_to_the_cap_says_its_latency_may_read_high():
    from edgehound.benchmarks.bench import IDLE_CAP_S, _figures

    measured = {"load_s": 0.1, "first_inference_ms": 2.0, "latencies_ms": [1.0, 1.1, 0.9], "peak_rss_mb": 90.0,
                "rss_before_mb": 20.0, "rss_loaded_mb": 80.0, "round_p50_ms": [1.0, 1.1, 0.9]}
    quiet = _figures({**measured, "idle_waits_s": [0.05, 0.1, 0.05]})
    assert quiet["idle_wait"] == {"bursts": 3, "waited_s": 0.2, "at_cap": 0} and "reason" not in quiet
    loaded = _figures({**measured, "idle_waits_s": [0.05, IDLE_CAP_S + 0.01, IDLE_CAP_S]})
    assert loaded["idle_wait"]["at_cap"] == 2 and loaded["reason"].startswith("2 of 3 bursts started after 2 s")


def test_a_bench_on_a_busy_machine_says_its_figures_may_not_hold(capsys):
    """Other work on the machine changes each runtime's share of the cores differently (TVM's pool far more
    than onnxruntime's), so no ratio holds: the bench measures the load before and after its timing, records
    it, and warns above half a core, in the table and in the report."""
    import sys

    from edgehound.benchmarks.bench import _note_other_load
    from edgehound.benchmarks.report import print_table
    from edgehound.runtime.host import busy_cores

    loop = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        assert busy_cores(0.5) > 0.6  # one busy loop: most of a core
    finally:
        loop.kill()
    quiet = {"settings": {}}
    _note_other_load(quiet, 0.1, 0.2)
    assert quiet["settings"]["other_load_cores"] == [0.1, 0.2] and "warnings" not in quiet
    busy = {"settings": {}, "rows": [], "model": {"config": "edge"}, "host": {"cpu": "x"}, "device": "local"}
    _note_other_load(busy, 1.9, None)
    assert busy["settings"]["other_load_cores"] == [1.9, None] and "1.9 of" in busy["warnings"][0]
    print_table(busy)
    assert "warning: the machine was busy with other work (1.9 of" in " ".join(capsys.readouterr().out.split())


def test_a_rejected_row_keeps_the_export_s_reason_and_the_timing_s_note(monkeypatch, tmp_path):
    from edgehound.benchmarks import bench

    measured = {"ok": True, "load_s": 0.1, "first_inference_ms": 2.0, "latencies_ms": [1.0], "peak_rss_mb": 90.0,
                "rss_before_mb": 20.0, "rss_loaded_mb": 80.0, "round_p50_ms": [1.0], "idle_waits_s": [bench.IDLE_CAP_S]}
    monkeypatch.setattr(bench, "interleaved", lambda starts, *a, **k: [measured for _ in starts])
    row = {"name": "onnx-int8", "status": "ok"}
    entry = {"backend": "onnxruntime", "status": "rejected", "reason": "accuracy drop 2.00 pp > --max-drop 1.0 pp"}
    bench._time_together([(row, entry, {})], bench.BenchOptions(source=tmp_path, out=tmp_path, progress=False))
    assert row["status"] == "rejected" and row["reason"].startswith("accuracy drop 2.00 pp")
    assert "1 of 1 bursts started after 2 s" in row["reason"]


def test_several_folders_are_timed_in_the_same_rounds(tiny_export, tmp_path, monkeypatch):
    """One set of interleaved rounds for every folder's artifacts, not one per folder after another:
    the machine's drift then lands on all of them alike, and their times can be set side by side."""
    from edgehound.benchmarks import bench as bench_module

    calls, real = [], bench_module.interleaved
    monkeypatch.setattr(bench_module, "interleaved", lambda starts, *args, **kw: calls.append(
        sorted((Path(job["manifest"]).parent.name, job["artifact"]) for _, job in starts)) or real(starts, *args, **kw))
    other = tmp_path / "other"
    shutil.copytree(tiny_export, other)
    res = bench_module.bench(bench_module.BenchOptions(source=tiny_export, also=[other], out=tmp_path / "b",
                                                       artifacts=["onnx"], runs=6, warmup=1, rounds=3, progress=False))
    assert calls == [sorted((folder, name) for folder in (tiny_export.name, "other") for name in ("onnx", "pytorch"))]
    rows = {r["name"]: r for r in res["rows"]}
    assert rows["other/onnx"]["latency"]["n"] == 6 and rows["other/onnx"]["ratio"]["to"] == "other/onnx"
    # paired in the same rounds, every folder can be set against one row; a row not timed is refused first
    one = f"{tiny_export.name}/onnx"
    res = bench_module.bench(bench_module.BenchOptions(source=tiny_export, also=[other], out=tmp_path / "c", baseline=one,
                                                       artifacts=["onnx"], runs=6, warmup=1, rounds=3, progress=False))
    rows = {r["name"]: r for r in res["rows"]}
    assert rows["other/onnx"]["ratio"]["to"] == one and rows["other/pytorch"]["ratio"]["to"] == one
    assert rows[one]["ratio"]["value"] == 1.0 and len(calls) == 2
    for bad in ("other/tflite", "onnx/onnx"):
        with pytest.raises(EdgehoundError, match=f"--baseline {bad}: no such row is timed here"):
            bench_module.bench(bench_module.BenchOptions(source=tiny_export, also=[other], out=tmp_path / "d",
                                                         baseline=bad, artifacts=["onnx"], runs=6, progress=False))
    with pytest.raises(EdgehoundError, match="with one folder, name the artifact alone"):
        bench_module.bench(bench_module.BenchOptions(source=tiny_export, out=tmp_path / "d", baseline=one, progress=False))
    assert len(calls) == 2 and not (tmp_path / "d").exists()  # refused before any timing


def test_bench_measures_every_artifact_and_picks(export_copy, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # profiling must leave no files in the working folder
    result, res = run_bench(export_copy, tmp_path / "b1", "--artifacts", "onnx", "tflite-int8", "tvm-aarch64",
                            "--data", str(SAMPLE), "--profile", "--pick", "--max-drop", "5")
    assert res["schema"] == "edgehound.bench/1" and res["host"]["cores"] >= 1 and res["peak_gflops"] > 0
    assert "onnxruntime" in res["versions"]
    rows = {r["name"]: r for r in res["rows"]}
    assert set(rows) == {"pytorch", "onnx", "tflite-int8", "tvm-aarch64"}
    for name in ("pytorch", "onnx", "tflite-int8"):
        r = rows[name]
        lat = r["latency"]
        assert r["status"] == "ok" and lat["n"] == 20 and lat["min"] <= lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["max"]
        assert lat["median_ci95"][0] <= lat["p50"] <= lat["median_ci95"][1]
        assert r["peak_rss_mb"] > 0 and r["first_inference_ms"] > 0 and r["load_s"] > 0
        assert r["accuracy_n"] == 100 and r["accuracy_source"] == "measured"  # the pair's 100 sample photos
        assert r["roofline_ratio"] > 0
    assert rows["onnx"]["drop_pp"] == pytest.approx(0, abs=1e-9)  # fp32 ONNX == PyTorch on every photo
    assert rows["tvm-aarch64"]["status"] == "not run" and "needs that device" in rows["tvm-aarch64"]["reason"]
    assert rows["tvm-aarch64"]["untuned"]
    assert rows["onnx"]["top_operators"] and rows["onnx"]["top_operators"][0]["ms"] > 0
    assert not list(tmp_path.glob("onnxruntime_profile*"))
    report = (tmp_path / "b1" / "report.html").read_text()
    assert "latency.png" in report and "accuracy_latency.png" in report and "Top operators" in report
    assert all((tmp_path / "b1" / png).stat().st_size > 1000 for png in ("latency.png", "accuracy_latency.png", "memory_size.png"))
    manifest = json.loads((export_copy / "manifest.json").read_text())
    assert manifest["default"] == res["pick"]["artifact"] in ("onnx", "tflite-int8")
    assert "picked" in result.stdout

    _, res2 = run_bench(export_copy, tmp_path / "b2", "--artifacts", "onnx", "--compare", str(tmp_path / "b1" / "results.json"))
    cmp = {c["name"]: c for c in res2["compare"]}
    assert cmp["onnx"]["p50"]["ratio"] > 0 and cmp["onnx"]["size"]["ratio"] == 1.0 and not cmp["onnx"]["size"]["flag"]


def test_a_broken_artifact_is_a_row_with_its_reason(export_copy, tmp_path):
    """The other rows are measured and written; the command exits 1 and names the artifact it could not measure."""
    (export_copy / "model.tflite").write_bytes(b"not a model")
    result, res = run_bench(export_copy, tmp_path / "b", "--artifacts", "onnx", "tflite", exit_code=1)
    rows = {r["name"]: r for r in res["rows"]}
    assert rows["tflite"]["status"] == "error" and "truncated or replaced" in rows["tflite"]["reason"]
    assert rows["onnx"]["status"] == "ok"
    assert "1 artifact(s) could not be measured: tflite (" in result.stderr and "Traceback" not in result.stderr


def test_latency_stats_and_pareto():
    import math

    n = 100
    s = latency_stats(list(np.arange(1, n + 1, dtype=float)))  # the value at 1-based rank r is r itself
    half = 1.96 * math.sqrt(n) / 2  # the textbook ranks of the median's 95% interval (Conover)
    assert s["median_ci95"] == [float(math.floor(n / 2 - half)), float(math.ceil(1 + n / 2 + half))] == [40.0, 61.0]
    assert s["p50"] == 50.5 and s["min"] == 1 and s["max"] == 100
    assert pareto_front([(1, 90), (2, 95), (3, 94), (0.5, 80)]) == [3, 0, 1]


def test_median_interval_covers_the_true_median_95_percent_of_the_time():
    rng = np.random.default_rng(0)
    true_median = np.log(2)  # of the exponential distribution with rate 1
    covered = [lo <= true_median <= hi for lo, hi in
               (latency_stats(list(rng.exponential(size=100)))["median_ci95"] for _ in range(2000))]
    assert 0.93 <= np.mean(covered) <= 0.975


def _row(name, p50, drop, status="ok", halfwidth=0.01):
    return {"name": name, "status": status, "precision": "fp32", "backend": "onnxruntime", "drop_pp": drop,
            "size_bytes": 1000, "peak_rss_mb": 50.0,
            "latency": {"p50": p50, "p90": p50 * 1.1, "median_ci95": [p50 * (1 - halfwidth), p50 * (1 + halfwidth)]},
            "latencies_ms": [p50 * 0.95, p50, p50 * 1.1]}


def test_pick_is_the_fastest_ok_row_within_the_budget(tmp_path):
    from edgehound.benchmarks.bench import pick

    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({"schema": 1, "default": "onnx", "artifacts": []}))
    rows = [_row("pytorch", 1.0, 0.0), _row("onnx", 10.0, 0.0), _row("tflite-int8", 6.0, 0.8),
            _row("onnx-int8", 4.0, 1.5), _row("tvm-x86", 3.0, 0.0, status="error")]
    results = {"rows": rows, "device": "local", "host": {"cpu": "test"}, "created": "now"}
    before = manifest.read_text()
    choice = pick(results, manifest, max_drop=1.0)  # pytorch, over budget and broken rows never win
    assert choice["artifact"] == "tflite-int8" and json.loads(manifest.read_text())["default"] == "tflite-int8"
    assert (tmp_path / "manifest.before-pick.json").read_text() == before  # the pick can be undone
    assert pick(results, manifest, max_drop=2.0)["artifact"] == "onnx-int8"
    with pytest.raises(Exception, match="no artifact ran within"):
        pick({**results, "rows": [_row("onnx", 10.0, 5.0)]}, manifest, max_drop=1.0)


def test_compare_flags_a_real_slowdown_but_not_noise():
    from edgehound.benchmarks.bench import RESULTS_SCHEMA, compare

    old = {"schema": RESULTS_SCHEMA, "rows": [_row("onnx", 10.0, 0.0), _row("tflite", 10.0, 0.0)]}
    new = {"schema": RESULTS_SCHEMA, "rows": [_row("onnx", 15.0, 0.0), _row("tflite", 10.2, 0.0)]}
    flags = {c["name"]: c["p50"] for c in compare(new, old)}
    assert flags["onnx"]["ratio"] == pytest.approx(1.5) and flags["onnx"]["flag"]
    assert flags["tflite"]["ratio"] == pytest.approx(1.02) and not flags["tflite"]["flag"]


def _rewrite_entry(folder, name):
    manifest = json.loads((folder / "manifest.json").read_text())
    for e in manifest["artifacts"]:
        if e["name"] == name:
            e["size_bytes"] = (folder / e["file"]).stat().st_size
            e["sha256"] = sha256_file(folder / e["file"])
    atomic_write_json(folder / "manifest.json", manifest)


def test_gate_passes_then_fails_on_a_degraded_model(export_copy, tmp_path):
    import onnx
    from onnx import numpy_helper

    baseline = tmp_path / "baseline.json"
    doc = gates.write_baseline(baseline, export_copy / "manifest.json", SAMPLE, ["n02099601", "n02111889"],
                               tolerance_pp=2.0)
    lines = []
    assert gates.check(baseline, export_copy / "manifest.json", lines) == []
    # a passing gate still shows each artifact's figures against the baseline's
    assert len(lines) == len(doc["artifacts"]) and any(line.startswith("onnx: ") and "accuracy" in line and
                                                       "a drop of at most 0 pp for fp32" in line for line in lines)
    assert any(line.startswith("tvm-x86: ") and line.endswith("size only") for line in lines)
    # another model's export (the hard pair's, which would pass on these figures) is not measured against them
    hard = SAMPLE.parents[1] / "runtime" / "models" / "edge-hard"
    failures = gates.check(baseline, hard / "manifest.json")
    assert len(failures) == 1 and "answers among n02088364, n02089973" in failures[0] and "not its baseline" in failures[0]
    older = tmp_path / "older.json"  # a baseline written before breeds were recorded still gates its own model
    older.write_text(json.dumps({k: v for k, v in doc.items() if k != "classes"}))
    assert gates.check(older, export_copy / "manifest.json") == []

    model = onnx.load(export_copy / "model.onnx")
    for init in model.graph.initializer:  # zeroed weights: a model that learned nothing
        if init.data_type == onnx.TensorProto.FLOAT:
            init.CopyFrom(numpy_helper.from_array(np.zeros_like(numpy_helper.to_array(init)), init.name))
    onnx.save(model, export_copy / "model.onnx")
    _rewrite_entry(export_copy, "onnx")
    failures = gates.check(baseline, export_copy / "manifest.json")
    assert len(failures) == 1 and failures[0].startswith("onnx: accuracy 50.00% vs baseline")

    tfl = export_copy / "model.tflite"
    tfl.write_bytes(tfl.read_bytes() + b"\0" * (tfl.stat().st_size // 10))  # 10% bigger
    _rewrite_entry(export_copy, "tflite")
    failures = gates.check(baseline, export_copy / "manifest.json")
    assert any(f.startswith("tflite: size") and "+5%" in f for f in failures)

    cli = subprocess.run([*edgehound_cmd(), "gate", str(baseline), "--manifest", str(export_copy)],
                         capture_output=True, text=True)
    assert cli.returncode == 1 and "GATE FAILED: onnx: accuracy" in cli.stdout


def test_every_shipped_model_has_a_baseline():
    shipped = {p.parent.name for p in (SAMPLE.parents[1] / "runtime" / "models").glob("*/manifest.json")}
    assert shipped, "no shipped model under runtime/models"
    assert shipped <= {p.stem for p in REPO_BASELINES}


@pytest.mark.parametrize("baseline", REPO_BASELINES, ids=[p.stem for p in REPO_BASELINES])
def test_shipped_models_meet_their_committed_baselines(baseline):
    assert gates.check(baseline) == []


def test_gate_fails_on_a_missing_file_and_on_one_fp32_photo(export_copy, tmp_path):
    baseline = tmp_path / "baseline.json"
    doc = gates.write_baseline(baseline, export_copy / "manifest.json", SAMPLE, ["n02099601", "n02111889"],
                               tolerance_pp=2.0)
    one_photo = 1 / doc["artifacts"]["onnx"]["n"]
    for name in ("onnx", "onnx-int8"):  # as if the baseline had one photo more right
        doc["artifacts"][name]["accuracy"] += one_photo
    baseline.write_text(json.dumps(doc))
    failures = gates.check(baseline, export_copy / "manifest.json")
    assert [f.split(":")[0] for f in failures] == ["onnx"]  # fp32 is exact; int8 keeps its 2 pp
    assert "> 0.0 pp for fp32" in failures[0]

    doc["artifacts"]["onnx"]["accuracy"] -= one_photo
    baseline.write_text(json.dumps(doc))
    (export_copy / "model.x86_64.so").unlink()  # size-gated only (TVM): its absence must still fail
    (export_copy / "model.u55-128.tflite").unlink()
    failures = gates.check(baseline, export_copy / "manifest.json")
    assert sorted(f.split(":")[0] for f in failures) == ["tvm-x86", "vela-u55-128"]
    assert all("its file is missing" in f for f in failures)


@pytest.mark.parametrize("case", ["not JSON", "a list", "no data", "an accuracy as text", "an unknown field"])
def test_a_malformed_baseline_is_a_clear_error_naming_the_file(tmp_path, case):
    doc = json.loads(REPO_BASELINES[0].read_text())
    text = {"not JSON": "{manifest: edge", "a list": "[]",  # were a JSONDecodeError and a TypeError traceback
            "no data": json.dumps({k: v for k, v in doc.items() if k != "data"}),  # was KeyError: 'data'
            "an accuracy as text": json.dumps({**doc, "artifacts": {"onnx": {"size_bytes": 1, "accuracy": "0.9"}}}),
            "an unknown field": json.dumps({**doc, "tolerance": 5})}[case]  # a typo, silently ignored before
    baseline = tmp_path / "baseline.json"
    baseline.write_text(text)
    result = subprocess.run([*edgehound_cmd(), "gate", str(baseline)], capture_output=True, text=True)
    assert result.returncode == 2 and str(baseline) in result.stderr and "Traceback" not in result.stderr, result.stderr


@pytest.mark.parametrize("case", ["not JSON", "another schema", "rows not a list", "a latency as text",
                                  "warnings not texts", "a timed row without its times", "a row without its precision",
                                  "operators of the wrong shape", "a device that is not a name"])
def test_earlier_results_are_checked_before_anything_is_timed(tmp_path, case):
    from edgehound.benchmarks.bench import RESULTS_SCHEMA

    good = {"schema": RESULTS_SCHEMA, "rows": [_row("onnx", 10.0, 0.0)]}
    text = {"not JSON": "{rows", "another schema": json.dumps({**good, "schema": "other/1"}),
            "rows not a list": json.dumps({**good, "rows": "onnx"}),  # was a TypeError after the whole bench
            "a latency as text": json.dumps({**good, "rows": [{**_row("onnx", 10.0, 0.0), "latency": {"p50": "10"}}]}),
            "warnings not texts": json.dumps({**good, "warnings": [{"busy": 1.9}]}),
            # was a TypeError from merging its warnings, after the whole bench had run
            "a device that is not a name": json.dumps({**good, "device": {"name": "rpi5"}, "warnings": ["busy"]}),
            # was a KeyError from the report's plot, after the whole bench had run
            "a timed row without its times": json.dumps({**good, "rows": [{k: v for k, v in _row("onnx", 10.0, 0.0).items()
                                                                              if k != "latencies_ms"}]}),
            "a row without its precision": json.dumps({**good, "rows": [{k: v for k, v in _row("onnx", 10.0, 0.0).items()
                                                                            if k != "precision"}]}),  # was a KeyError too
            "operators of the wrong shape": json.dumps({**good, "rows": [{**_row("onnx", 10.0, 0.0),
                                                                          "top_operators": [{"op": "Conv", "ms": "1"}]}]}),
            }[case]
    earlier = tmp_path / "earlier.json"
    earlier.write_text(text)
    for option in ("--merge", "--compare"):
        result = subprocess.run([*edgehound_cmd(), "bench", str(SAMPLE.parents[1] / "runtime" / "models" / "edge"),
                                 "--runs", "2", option, str(earlier), "--out", str(tmp_path / "b")],
                                capture_output=True, text=True)
        assert result.returncode == 2 and f"{option} {earlier}" in result.stderr, result.stderr
        assert "Traceback" not in result.stderr and not (tmp_path / "b").exists()  # refused before timing


def test_a_merged_run_keeps_its_warnings_each_naming_its_device(export_copy, tmp_path):
    """A busy device's warning must not vanish when its rows join another run's report."""
    from edgehound.benchmarks.bench import RESULTS_SCHEMA

    busy = "the machine was busy with other work (1.9 of 4 cores, measured before and after the timing)"
    earlier = tmp_path / "rpi5.json"  # a run on rpi5 that had merged a busy laptop run in turn
    earlier.write_text(json.dumps({"schema": RESULTS_SCHEMA, "device": "rpi5", "warnings": [busy, f"local: {busy}"],
                                   "rows": [{**_row("onnx", 10.0, 0.0), "device": "rpi5"},
                                            {**_row("onnx", 1.0, 0.0), "device": "local"}]}))
    _, res = run_bench(export_copy, tmp_path / "b", "--artifacts", "onnx", "--merge", str(earlier))
    merged = [w for w in res.get("warnings", []) if busy in w]
    assert merged == [f"rpi5: {busy}", f"local: {busy}"]  # the second already named its device
    report = (tmp_path / "b" / "report.html").read_text()
    assert f"rpi5: {busy}" in report


def test_bench_by_duration_and_threads(export_copy, tmp_path):
    _, res = run_bench(export_copy, tmp_path / "b", "--artifacts", "onnx", "--duration", "1", "--threads", "1")
    row = {r["name"]: r for r in res["rows"]}["onnx"]
    assert res["settings"]["duration"] == 1.0 and res["settings"]["threads"] == 1
    assert row["status"] == "ok" and row["latency"]["n"] != 20  # timed for a second, not --runs 20
    assert row["latency"]["n"] * row["latency"]["mean"] <= 1000 * 1.5  # about a second of runs


def test_a_model_card_reads_its_rows_of_a_bench_run_through_the_bench_results_checks(export_copy, tmp_path):
    from edgehound.benchmarks.bench import RESULTS_SCHEMA
    from edgehound.benchmarks.card import bench_rows, render
    from edgehound.runtime.errors import EdgehoundError

    _, res = run_bench(export_copy, tmp_path / "b", "--artifacts", "onnx", "--runs", "5")
    header, *rows = bench_rows(tmp_path / "b", export_copy)
    assert header["bench"] == str(tmp_path / "b" / "results.json") and header["host"] == res["host"]["cpu"]
    onnx = {r["name"]: r for r in res["rows"]}["onnx"]
    assert [r["artifact"] for r in rows] == [r["name"] for r in res["rows"] if r.get("latency")]
    assert {r["artifact"]: r for r in rows}["onnx"]["p50_ms"] == round(onnx["latency"]["p50"], 3)
    # the card shows a latency only for the file that was timed: after a re-export, not the old file's
    (export_copy / "card").mkdir()
    (export_copy / "card" / "bench.json").write_text(json.dumps([header, *rows]))
    shown = f"| {round(onnx['latency']['p50'], 3)} ms |"
    assert shown in render(export_copy) and "Not shown" not in render(export_copy)
    manifest = json.loads((export_copy / "manifest.json").read_text())
    next(e for e in manifest["artifacts"] if e["name"] == "onnx")["sha256"] = "0" * 64
    (export_copy / "manifest.json").write_text(json.dumps(manifest))
    assert shown not in render(export_copy) and "Not shown: onnx, timed on a file a later export replaced" in render(export_copy)
    bad = tmp_path / "bad.json"  # a latency as text: once taken as a number (float("1")), now the bench's own row check
    bad.write_text(json.dumps({"schema": RESULTS_SCHEMA, "rows": [{**_row("onnx", 1.0, 0.0), "latency": {"p50": "1"}}]}))
    with pytest.raises(EdgehoundError, match=f"--bench {bad}: row 1 .* unusable latency"):
        bench_rows(bad, export_copy)


FAKE_WORKER = """
import json, random, sys, time
delay = float(sys.argv[1]) / 1000
random.seed(sys.argv[2])  # each worker's own jitter, the same in every run of the test
start = float(sys.argv[3])
def machine_speed():  # the whole machine gets slower and slower, and 2x slower every other second on top
    t = time.time() - start
    return (1 + 0.5 * t) * (2.0 if int(t) % 2 else 1.0)
print(json.dumps({"ok": True, "loaded": {"load_s": 0.0, "first_inference_ms": 0.0, "rss_before_mb": 1.0,
                                         "rss_loaded_mb": 1.0}}), flush=True)
for line in sys.stdin:
    request = json.loads(line)
    if request.get("finish"):
        print(json.dumps({"ok": True, "finished": {"peak_rss_mb": 1.0}}), flush=True)
        break
    latencies = []
    for _ in range(request["runs"]):
        t0 = time.perf_counter()
        time.sleep(delay * machine_speed() * random.uniform(0.9, 1.3))  # plus jitter of its own
        latencies.append((time.perf_counter() - t0) * 1000)
    print(json.dumps({"ok": True, "latencies_ms": latencies}), flush=True)
"""


@pytest.mark.parametrize("slow_ms, truth", [(20.0, 2.0), (10.0, 1.0)])
def test_interleaved_ratio_interval_holds_the_truth_under_machine_noise(slow_ms, truth):
    """Two fake workers with known delays (10 ms and slow_ms) on a machine that slows down steadily (and
    swings 2x on top): the paired ratio's interval holds the true ratio, and says "no difference"
    exactly when they are equal. Timed one after the other instead, the later one would look slower."""
    import sys

    from edgehound.benchmarks.bench import interleaved, paired_ratio

    import time

    start = str(time.time())  # one machine: every worker sees the same slowdown at the same moment
    starts = [([sys.executable, "-c", FAKE_WORKER, str(ms), seed, start], {})
              for ms, seed in ((10.0, "a"), (slow_ms, "b"))]
    fast, slow = interleaved(starts, rounds=30, runs=90, duration=None, timeout=60)
    assert fast["ok"] and slow["ok"] and len(fast["round_p50_ms"]) == len(slow["round_p50_ms"]) == 30
    assert len(fast["latencies_ms"]) == 90
    ratio = paired_ratio(slow["round_p50_ms"], fast["round_p50_ms"])
    lo, hi = ratio["ci95"]
    assert lo <= truth <= hi and hi - lo < 0.5 * truth, ratio
    assert (ratio["verdict"] == "no difference") == (truth == 1.0)


def test_a_worker_that_dies_is_its_rows_error_and_the_others_go_on():
    import sys

    from edgehound.benchmarks.bench import interleaved

    dying = "import sys; print('{\"ok\": true, \"loaded\": {}}', flush=True); sys.stderr.write('segfault-ish\\n'); sys.exit(3)"
    import time

    starts = [([sys.executable, "-c", FAKE_WORKER, "1.0", "a", str(time.time())], {}),
              ([sys.executable, "-c", dying], {})]
    alive, dead = interleaved(starts, rounds=3, runs=3, duration=None, timeout=30)
    assert alive["ok"] and len(alive["round_p50_ms"]) == 3
    assert not dead["ok"] and "worker died: segfault-ish" in dead["error"]


def test_several_folders_of_the_same_name_get_rows_of_their_own(export_copy, tmp_path):
    import shutil

    from edgehound.benchmarks.bench import folder_labels

    a, b = tmp_path / "a" / "efficient", tmp_path / "b" / "efficient"
    for folder in (a, b):
        shutil.copytree(export_copy, folder)
    assert folder_labels([export_copy, a]) == [export_copy.name, "efficient"]
    assert folder_labels([a, b / "manifest.json"]) == [str(a), str(b)]  # each baseline row stays its own


def test_a_tvm_row_says_whose_tuning_records_it_runs():
    from edgehound.benchmarks.bench import _row_base
    from edgehound.benchmarks.report import table_rows

    def row(tuned):
        entry = {"name": "tvm-x86", "format": "tvm-x86", "backend": "tvm", "precision": "fp32", "tvm": {"tuned": tuned}}
        return {**_row_base(entry), "device": "local", "latency": None}

    elsewhere = row({"cpu": "znver4", "other_cpu": "records measured on znver4, compiled for znver3: ..."})
    own = row({"cpu": "znver3"})
    untuned = row("untuned (no tuning records for this model's kernels: expect it to be slow)")
    statuses = [r[-1] for r in table_rows({"rows": [elsewhere, own, untuned]})]
    assert statuses == ["ok (tuned on znver4)", "ok", "ok (untuned)"]


def test_a_burst_waits_until_the_other_models_threads_are_idle(tmp_path):
    """Runtimes spin their threads for a while after a burst; the next model's burst waits for that to end
    (it took the cores from LiteRT's bursts), but not for a process that is idle."""
    import sys
    import time

    from edgehound.benchmarks.bench import wait_until_idle
    from edgehound.runtime.host import cpu_seconds, runnable_threads

    done = tmp_path / "spun"  # written when the spin ends: the wait must not end before it
    # it spins for 0.5 s of its own CPU time, not of the clock: on a loaded machine it still uses that much
    spin = f"import pathlib, time\nwhile time.process_time() < 0.5: pass\npathlib.Path({str(done)!r}).touch()\ntime.sleep(60)"
    busy = subprocess.Popen([sys.executable, "-c", spin])
    idle = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        time.sleep(0.2)  # both started; one still spins
        assert not done.exists() and runnable_threads(busy.pid) >= 1
        waited = wait_until_idle([busy.pid, idle.pid], cap=30)
        assert done.exists() and waited > 0.05  # the spin ended first
        assert wait_until_idle([busy.pid, idle.pid], cap=30) < 0.5  # both idle now: about one window
        assert runnable_threads(busy.pid) == 0 and runnable_threads(idle.pid) == 0
        assert cpu_seconds(busy.pid) > 0.4 and cpu_seconds(idle.pid) < 0.3  # read from /proc/PID/stat
    finally:
        busy.kill()
        idle.kill()


def test_a_thread_that_spins_on_a_starved_core_is_still_busy():
    """On a machine loaded beyond the bench, a runtime's spinning thread gets little of a core: its CPU time
    reads as idle (under 10 ms in 50 ms), its run state does not. Here it shares one core, at the lowest
    priority, with a process that never yields; the wait runs to its cap instead of starting the burst."""
    import os
    import sys
    import time

    from edgehound.benchmarks.bench import wait_until_idle
    from edgehound.runtime.host import cpu_seconds

    core = min(os.sched_getaffinity(0))
    pin = f"import os\nos.sched_setaffinity(0, {{{core}}})\n"
    hog = subprocess.Popen([sys.executable, "-c", pin + "while True: pass"])
    starved = subprocess.Popen([sys.executable, "-c", pin + "os.nice(19)\nwhile True: pass"])
    try:
        time.sleep(0.3)
        before = cpu_seconds(starved.pid)
        waited = wait_until_idle([starved.pid], cap=1.0)
        assert cpu_seconds(starved.pid) - before < 0.2 * waited  # CPU time alone would call it idle
        assert waited >= 1.0  # its run state kept the burst waiting, to the cap
    finally:
        hog.kill()
        starved.kill()


def test_a_model_with_integer_input_is_timed_on_its_integers_as_classify_gives_them(tiny_export):
    """tflite-int8 takes int8 pixels: the bench times it on the integers classify and the camera give it,
    not on floats that its backend would quantize in NumPy on every timed run."""
    from edgehound.benchmarks.worker import Measured
    from edgehound.runtime.classifier import Classifier

    photo = str(next(SAMPLE.rglob("*.JPEG")))
    for artifact, dtype in (("tflite-int8", np.int8), ("onnx", np.float32)):
        m = Measured({"manifest": str(tiny_export / "manifest.json"), "artifact": artifact, "photo": photo, "warmup": 0})
        clf = Classifier.load(tiny_export, artifact=artifact)
        assert m.x.dtype == dtype and np.array_equal(m.x, clf.to_input(clf.prepare(photo)[None]))
        assert np.allclose(m.predict(m.x), clf.classify(photo).logits[None], atol=1e-5)
