"""Every format built from a tiny model on the committed sample: parity, manifest, refusal of bad files."""

import ctypes.util
import json
import shutil
import subprocess

import numpy as np
import pytest

from conftest import GOLDEN, SAMOYED, SAMPLE, sample_photos
from edgehound.devices.profiles import get_profile
from edgehound.export.exporter import ExportOptions, export
from edgehound.export.formats import DEFAULT_TARGETS, FORMATS, ONNX_INT8_SCHEME, Format
from edgehound.runtime.classifier import Classifier
from edgehound.runtime.errors import EdgehoundError
from edgehound.runtime.manifest import missing_cpu_features, select_artifact
from edgehound.util import sha256_file

ENTRY_KEYS = {"name", "format", "file", "backend", "precision", "target", "devices", "size_bytes", "sha256", "input",
              "output", "preprocess", "classes", "source", "tools", "status", "accuracy"}


def manifest_of(folder):
    return json.loads((folder / "manifest.json").read_text())


def test_manifest_lists_every_target_with_checked_files(tiny_export):
    m = manifest_of(tiny_export)
    entries = {e["name"]: e for e in m["artifacts"]}
    assert set(DEFAULT_TARGETS) <= set(entries)
    assert m["schema"] == 1 and m["default"] == "onnx"
    assert m["model"]["checkpoint_sha256"] and m["reference"]["n"] == 50
    # eager PyTorch is the first row: the checkpoint copied into the folder, scored like the others
    assert m["artifacts"][0]["name"] == "pytorch" and entries["pytorch"]["file"] == "best.pt"
    assert entries["pytorch"]["sha256"] == m["model"]["checkpoint_sha256"]
    assert entries["pytorch"]["accuracy"]["accuracy"] == m["reference"]["accuracy"]
    assert m["model"]["split"]["holdout"] == "seeded" and "photos_digest" not in m["model"]["split"]
    for e in entries.values():
        assert e["status"] == "ok", e
        assert ENTRY_KEYS <= set(e), ENTRY_KEYS - set(e)
        path = tiny_export / e["file"]
        assert path.stat().st_size == e["size_bytes"] and sha256_file(path) == e["sha256"]
        assert [c["wnid"] for c in e["classes"]] == ["n02099601", "n02111889"]
        assert e["preprocess"]["size"] == 96 and e["preprocess"]["layout"] == e["input"]["layout"]
    assert not list(tiny_export.glob("*.tmp*"))  # nothing half-written left behind


def test_runnable_artifacts_match_pytorch_and_are_scored(tiny_export):
    entries = {e["name"]: e for e in manifest_of(tiny_export)["artifacts"]}
    assert entries["onnx"]["parity"]["max_abs_logit_diff"] <= 1e-4
    for name in ("tflite", "tvm-x86"):
        assert entries[name]["parity"]["max_abs_logit_diff"] <= 1e-3
    for name in ("onnx", "onnx-int8", "tflite", "tflite-int8", "tvm-x86"):
        acc = entries[name]["accuracy"]
        assert acc["n"] == 50 and 0 <= acc["accuracy"] <= 1 and "drop_pp" in acc
        assert entries[name]["parity"]["top1_agreement"] >= 0.8
    assert entries["onnx"]["accuracy"]["drop_pp"] == 0  # fp32 ONNX agrees with PyTorch photo for photo


def evaluate_val(model, report, *extra):
    """`edgehound evaluate MODEL --split val` on the sample: (the process, its JSON report or None)."""
    from conftest import edgehound_cmd

    result = subprocess.run([*edgehound_cmd(), "evaluate", str(model), "--data", str(SAMPLE), "--split", "val",
                             "--json", str(report), "--no-progress", *extra], capture_output=True, text=True)
    return result, json.loads(report.read_text()) if result.returncode == 0 else None


def test_fidelity_counts_changed_answers_and_the_reference_margin_s_change():
    from edgehound.export.exporter import fidelity

    reference = np.array([[2.0, 0.0, -1.0], [0.0, 1.0, 0.5]])
    logits = np.array([[1.0, 0.0, 0.0], [0.5, 0.0, 1.0]])  # the second photo's answer changes, class 1 to 2
    f = fidelity(logits, reference)
    # margins of the reference's top two classes: photo 1 (0 over 1) 2.0 -> 1.0, photo 2 (1 over 2) 0.5 -> -1.0
    assert f["photos"] == 2 and f["answers_changed"] == 1 and f["mean_abs_margin_error"] == 1.25
    assert f["max_abs_logit_diff"] == 1.0
    assert fidelity(reference, reference)["mean_abs_margin_error"] == fidelity(reference, reference)["answers_changed"] == 0


def test_each_artifact_s_fidelity_to_pytorch_is_measured_on_the_validation_part(tiny_run, tiny_export, tmp_path):
    """Fidelity: each artifact against PyTorch on the checkpoint's validation photos, so an int8 setting can be
    chosen without reading a test figure. Its count of changed answers is what evaluate finds photo by photo."""
    manifest = manifest_of(tiny_export)
    answers = {}
    for model, extra in ((tiny_run / "best.pt", []), (tiny_export, ["--artifact", "onnx-int8"]),
                         (tiny_export, ["--artifact", "tflite-int8"])):
        result, report = evaluate_val(model, tmp_path / "val.json", *extra)
        assert result.returncode == 0, result.stderr
        answers[extra[-1] if extra else "pytorch"] = {p["photo"]: p["pred"] for p in report["photos"]}
    val_photos = len(answers["pytorch"])
    assert manifest["fidelity"]["part"] == "val" and manifest["fidelity"]["photos"] == val_photos > 0
    entries = {e["name"]: e for e in manifest["artifacts"]}
    for name in ("onnx", "tflite", "tvm-x86"):  # fp32: the same answers, margins within float rounding
        assert entries[name]["fidelity"]["photos"] == val_photos and entries[name]["fidelity"]["answers_changed"] == 0
        assert entries[name]["fidelity"]["mean_abs_margin_error"] < 1e-3, name
    for name in ("onnx-int8", "tflite-int8"):
        f = entries[name]["fidelity"]
        changed = sum(answers[name][k] != answers["pytorch"][k] for k in answers["pytorch"])
        assert f["photos"] == val_photos and f["answers_changed"] == changed
        # int8 rounding shows in the margins, far past fp32's float rounding
        assert f["mean_abs_margin_error"] > max(1e-5, 10 * entries["onnx"]["fidelity"]["mean_abs_margin_error"]), name


def test_a_sealed_export_is_scored_on_the_validation_part_and_draws_no_test_photo(tiny_run, tmp_path, monkeypatch):
    """export --seal-test: a candidate's artifacts are scored where its settings may be chosen, the validation
    part, with the figures evaluate --split val gives; not one photo of the test part is read."""
    import edgehound.export.exporter as exporter
    from conftest import edgehound_cmd

    parts = []
    photos = exporter._photos
    monkeypatch.setattr(exporter, "_photos", lambda data, meta, part, *a, **k: parts.append(part) or photos(data, meta, part, *a, **k))
    m = export(tiny_run / "best.pt", ExportOptions(targets=["onnx", "onnx-int8"], out=tmp_path / "sealed", seal_test=True,
                                                   progress=False))
    assert set(parts) == {"val", "train"}  # parity, fidelity and scored photos; calibration photos from training
    assert m["reference"]["sealed_test"] is True and m["reference"]["data"].startswith("val split of ")
    entries = {e["name"]: e for e in m["artifacts"]}
    for model, name in ((tiny_run / "best.pt", "pytorch"), (tmp_path / "sealed", "onnx-int8")):
        _, report = evaluate_val(model, tmp_path / "val.json", *(["--artifact", name] if name != "pytorch" else []))
        assert entries[name]["accuracy"]["n"] == report["n"] > 0, name
        assert entries[name]["accuracy"]["accuracy"] == report["accuracy"], name
    assert manifest_of(tmp_path / "sealed")["reference"] == m["reference"]
    from edgehound.benchmarks.card import render

    assert "chose its epochs: the export was made with `--seal-test`" in render(tmp_path / "sealed")  # not "chose neither"

    # an explicit folder of photos and --seal-test contradict each other: refused before a folder is made
    out = tmp_path / "never"
    r = subprocess.run([*edgehound_cmd(), "export", str(tiny_run / "best.pt"), "--out", str(out), "--targets", "onnx",
                        "--seal-test", "--eval-data", str(SAMPLE)], capture_output=True, text=True)
    assert r.returncode != 0 and "Traceback" not in r.stderr and not out.exists()
    assert "--seal-test" in r.stderr and "--eval-data" in r.stderr


def test_an_export_at_another_input_size_builds_every_artifact_for_it(tiny_run, tiny_export, tmp_path):
    """export --input-size: the artifacts take photos of that size (test-time resolution), the checkpoint's row
    answers at it as evaluate --input-size does, MACs are counted at it, and --update refuses to mix sizes."""
    from conftest import edgehound_cmd

    trained = manifest_of(tiny_export)["artifacts"][0]["preprocess"]["size"]
    size = trained + 32
    out = tmp_path / "bigger"
    m = export(tiny_run / "best.pt", ExportOptions(targets=["onnx", "tflite-int8"], out=out, input_size=size,
                                                   eval_data=SAMPLE, progress=False))
    entries = {e["name"]: e for e in m["artifacts"]}
    assert set(entries) == {"pytorch", "onnx", "tflite-int8"} and all(e["status"] == "ok" for e in entries.values())
    for e in entries.values():
        assert e["preprocess"]["size"] == size and size in e["input"]["shape"], e["name"]
    assert entries["onnx"]["parity"]["max_abs_logit_diff"] <= 1e-4
    assert m["model"]["trained_input_size"] == trained
    at_trained = manifest_of(tiny_export)["model"]["macs"]
    assert m["model"]["macs"] > at_trained * 1.2  # every layer's MACs grow with the pixels
    # the pytorch row is the checkpoint at that size: what evaluate --input-size gives, not the trained size's figure
    reports = {}
    for extra in ([], ["--input-size", str(size)]):
        r = subprocess.run([*edgehound_cmd(), "evaluate", str(tiny_run / "best.pt"), "--data", str(SAMPLE),
                            "--json", str(tmp_path / "r.json"), "--no-progress", *extra], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        reports[bool(extra)] = json.loads((tmp_path / "r.json").read_text())
    assert reports[True]["input_size"] == size and reports[False]["input_size"] == trained
    assert entries["pytorch"]["accuracy"]["accuracy"] == reports[True]["accuracy"]
    assert [p["p"] for p in reports[True]["photos"]] != [p["p"] for p in reports[False]["photos"]]
    assert Classifier.load(out, "onnx").prepare(sample_photos(GOLDEN, 1)[0]).shape == (size, size, 3)

    # --update at the trained size would keep artifacts of the other size beside new ones: refused, nothing touched
    before = {f.name: f.read_bytes() for f in out.iterdir() if f.is_file()}
    with pytest.raises(EdgehoundError, match="takes .* px photos and this export builds for"):
        export(tiny_run / "best.pt", ExportOptions(targets=["onnx"], out=out, update=True, eval_data=SAMPLE,
                                                   progress=False))
    assert {f.name: f.read_bytes() for f in out.iterdir() if f.is_file()} == before


def test_a_model_that_flattens_its_feature_map_refuses_another_input_size(tmp_path):
    """A vgg stack without a global pool (seed-improved) answers only at the size it trained at: evaluate and
    export say so, naming the file, before any work."""
    from conftest import REPO, edgehound_cmd

    model = REPO / "runtime" / "models" / "seed-improved" / "best.pt"
    out = tmp_path / "never"
    for command in (["evaluate", str(model), "--data", str(SAMPLE), "--input-size", "256", "--no-progress"],
                    ["export", str(model), "--out", str(out), "--targets", "onnx", "--input-size", "256",
                     "--eval-data", str(SAMPLE)]):
        r = subprocess.run([*edgehound_cmd(), *command], capture_output=True, text=True)
        assert r.returncode != 0 and "Traceback" not in r.stderr, r.stderr
        assert str(model) in r.stderr and "answers only at 300 px, not 256" in r.stderr
    assert not out.exists()
    # an export's files take the size they were built for: --input-size names the model file instead
    r = subprocess.run([*edgehound_cmd(), "evaluate", str(model.parent), "--data", str(SAMPLE), "--input-size", "256"],
                       capture_output=True, text=True)
    assert r.returncode != 0 and "Traceback" not in r.stderr and "give its model file (.pt)" in r.stderr


def test_int8_artifacts_are_integer(tiny_export):
    entries = {e["name"]: e for e in manifest_of(tiny_export)["artifacts"]}
    tfl = entries["tflite-int8"]
    assert tfl["input"]["dtype"] == "int8" and tfl["input"]["quantization"]["scale"] > 0
    assert tfl["input"]["layout"] == "NHWC" and tfl["output_quantization"]["dtype"] == "int8"
    assert entries["onnx-int8"]["calibration"]["format"] == (f"{ONNX_INT8_SCHEME}; the first convolution in float; "
                                                            "the classifier in float")
    # the global pool has its own scale: its averages span a fraction of its input's range
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=str(tiny_export / tfl["file"]))
    scale = {t["index"]: t["quantization"][0] for t in interp.get_tensor_details()}
    means = [op for op in interp._get_ops_details() if op["op_name"] == "MEAN"]  # the op list has no public API
    assert means and all(scale[op["outputs"][0]] < scale[op["inputs"][0]] for op in means)
    import onnx

    ops = {n.op_type for n in onnx.load(tiny_export / entries["onnx-int8"]["file"]).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    assert entries["onnx-int8"]["size_bytes"] < entries["onnx"]["size_bytes"]


def test_onnx_int8_weights_leave_headroom_so_int8_kernels_compute_what_the_graph_says(tiny_export):
    """Weights within ±64: onnxruntime's x86 kernels without VNNI sum pairs of uint8 x int8 products in int16,
    which overflows with full-range weights. With headroom, the int8 kernels give the logits that the
    same QDQ graph gives computed in float (no fusion)."""
    import onnx
    import onnxruntime as ort
    from onnx import numpy_helper

    path = str(tiny_export / {e["name"]: e for e in manifest_of(tiny_export)["artifacts"]}["onnx-int8"]["file"])
    model = onnx.load(path)
    weights = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    conv_weights = [weights[n.input[0]] for n in model.graph.node
                    if n.op_type == "DequantizeLinear" and weights.get(n.input[0], np.zeros(0)).ndim == 4]
    # |w| <= 64: two products of a uint8 activation and a weight sum to at most 2 x 255 x 64 < 2^15
    assert conv_weights and all(w.dtype == np.int8 and np.abs(w.astype(int)).max() <= 64 for w in conv_weights)
    activations = [n for n in model.graph.node if n.op_type == "QuantizeLinear"]
    assert activations and all(weights[n.input[2]].dtype == np.uint8 for n in activations)

    def logits(level):
        options = ort.SessionOptions()
        options.graph_optimization_level = level
        return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"]).run(None, {"input": batch})[0]

    batch = np.random.default_rng(0).standard_normal((8, 3, 96, 96)).astype(np.float32)
    fused = logits(ort.GraphOptimizationLevel.ORT_ENABLE_ALL)
    simulated = logits(ort.GraphOptimizationLevel.ORT_DISABLE_ALL)
    assert np.abs(fused - simulated).max() <= 0.05 * np.abs(simulated).max()


def _onnx_int8_layers(folder):
    """Each Conv and Gemm/MatMul node of the onnx-int8 artifact in `folder`, and whether its weight is int8."""
    import onnx

    entry = {e["name"]: e for e in manifest_of(folder)["artifacts"]}["onnx-int8"]
    graph = onnx.load(str(folder / entry["file"])).graph
    produced_by = {o: n for n in graph.node for o in n.output}

    def weight_is_int8(node):  # a quantized layer reads its weight through a DequantizeLinear
        source = produced_by.get(node.input[1])
        return source is not None and source.op_type == "DequantizeLinear"

    convs = [(n.name, weight_is_int8(n)) for n in graph.node if n.op_type == "Conv"]
    dense = [(n.name, weight_is_int8(n)) for n in graph.node if n.op_type in ("Gemm", "MatMul")]
    return entry, convs, dense


def test_onnx_int8_keeps_the_first_convolution_and_the_classifier_in_float(tiny_run, tiny_export, tmp_path):
    entry, convs, dense = _onnx_int8_layers(tiny_export)  # the default
    assert not convs[0][1] and not dense[-1][1] and all(int8 for _, int8 in convs[1:])
    assert entry["calibration"]["in_float"] == [convs[0][0], dense[-1][0]]
    export(tiny_run / "best.pt", ExportOptions(targets=["onnx-int8"], out=tmp_path / "x", onnx_int8_in_float=(),
                                               eval_limit=10, progress=False))  # --onnx-int8-in-float alone: none
    entry, convs, dense = _onnx_int8_layers(tmp_path / "x")
    assert all(int8 for _, int8 in convs + dense) and entry["calibration"]["in_float"] == []
    assert entry["calibration"]["format"] == ONNX_INT8_SCHEME


def test_the_layers_kept_in_float_are_those_found_each_once(tiny_export):
    import onnx
    from onnx import TensorProto, helper

    from edgehound.export.formats import _layers_in_float

    _, convs, dense = _onnx_int8_layers(tiny_export)
    found = _layers_in_float(onnx.load(tiny_export / "model.onnx").graph, ("last", "first", "first"))  # as argparse passes it
    assert list(found) == ["first", "last"] and found["first"] == convs[0][0] and found["last"] == dense[-1][0]
    conv_only = helper.make_model(helper.make_graph(  # no classifier: "last" finds nothing, says nothing
        [helper.make_node("Conv", ["x", "w"], ["y"], name="stem")], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 6, 6])],
        [helper.make_tensor("w", TensorProto.FLOAT, [4, 3, 3, 3], [0.0] * 108)]))
    assert _layers_in_float(conv_only.graph, ("first", "last")) == {"first": "stem"}


def test_histogram_calibration_runs_in_passes_within_its_memory_bound(tiny_run, tmp_path, monkeypatch):
    """Percentile calibration holds every activation of a pass: past CALIBRATION_PASS_BYTES it runs in passes
    (recorded), and a machine that cannot hold one pass is told so before it starts."""
    import psutil

    from edgehound.export import formats

    def build(out):
        export(tiny_run / "best.pt", ExportOptions(targets=["onnx-int8"], out=out, calib_photos=6, eval_limit=20,
                                                   progress=False))
        return {e["name"]: e for e in manifest_of(out)["artifacts"]}["onnx-int8"]

    whole = build(tmp_path / "whole")
    assert whole["status"] == "ok" and "photos_per_pass" not in whole["calibration"]
    monkeypatch.setattr(formats, "CALIBRATION_PASS_BYTES", 1)  # one photo per pass
    passes = build(tmp_path / "passes")
    assert passes["status"] == "ok" and passes["calibration"]["photos_per_pass"] == 1
    assert passes["sha256"] != whole["sha256"]  # histograms merged over 6 passes: not the same file ...
    photos = [str(p) for wnid in (GOLDEN, SAMOYED) for p in sample_photos(wnid, 10)]
    labels = [[r.label for r in Classifier.load(tmp_path / f, "onnx-int8").classify_batch(photos)]
              for f in ("whole", "passes")]
    assert sum(a == b for a, b in zip(*labels)) >= 18  # ... but nearly the same answers

    class Little:
        available = 1000
    monkeypatch.setattr(psutil, "virtual_memory", lambda: Little())
    failed = build(tmp_path / "little")
    assert failed["status"] == "failed" and "GB available: give fewer --calib-photos" in failed["reason"]


def elf_machine(path) -> int:
    header = path.read_bytes()[:20]
    assert header[:4] == b"\x7fELF"
    return int.from_bytes(header[18:20], "little")


def test_tvm_libraries_are_built_for_their_targets(tiny_export):
    entries = {e["name"]: e for e in manifest_of(tiny_export)["artifacts"]}
    assert elf_machine(tiny_export / entries["tvm-x86"]["file"]) == 62  # EM_X86_64
    assert elf_machine(tiny_export / entries["tvm-aarch64"]["file"]) == 183  # EM_AARCH64
    cuda = tiny_export / entries["tvm-cuda-sm87"]["file"]
    assert elf_machine(cuda) == 183  # the Jetson's aarch64 host code ...
    assert "cuda" in entries["tvm-cuda-sm87"]["tvm"]["modules"]  # ... and the GPU kernels
    assert entries["tvm-cuda-sm87"]["tvm"]["target"]["arch"] == "sm_87"
    from edgehound.devices.profiles import all_profiles  # each TVM format's target is its device profile's

    profiles = all_profiles()
    for name, device in (("tvm-x86", "laptop-x86"), ("tvm-aarch64", "rpi4"), ("tvm-cuda-sm87", "jetson-orin-nano")):
        assert entries[name]["tvm"]["target"] == profiles[device]["tvm_target"]
        assert entries[name]["devices"] == [d for d, p in profiles.items() if name in p["formats"]]
    if ctypes.util.find_library("cuda") is None:  # no NVIDIA driver here: TVM keeps the kernels as source, and says so
        assert "CUDA source" in entries["tvm-cuda-sm87"]["tvm"]["cuda_kernels"]
    desktop = tiny_export / entries["tvm-cuda-sm90"]["file"]
    assert elf_machine(desktop) == 62 and "cuda" in entries["tvm-cuda-sm90"]["tvm"]["modules"]
    # mcpu "native" is resolved to this CPU: TVM's LLVM would silently fall back to SSE2-only generic x86-64
    compiled_for = entries["tvm-x86"]["tvm"]["compiled_for"]
    assert compiled_for["mcpu"] not in ("", "native", "generic")
    code = subprocess.run(["objdump", "-d", str(tiny_export / entries["tvm-x86"]["file"])], capture_output=True,
                          text=True, check=True).stdout
    assert "%ymm" in code or "%zmm" in code  # AVX registers: the kernels use the host's vector unit
    # the laptop-x86 database (committed or the session's) holds no kernel of this tiny model: still untuned
    assert "untuned" in str(entries["tvm-x86"]["tvm"]["tuned"])
    assert "winograd" not in entries["tvm-x86"]["tvm"]  # Winograd only where its kernels are tuned
    assert entries["tvm-aarch64"]["accuracy"]["accuracy"] is None  # cross-compiled: not run here, and says so


def test_vela_report_is_kept(tiny_export):
    vela = {e["name"]: e for e in manifest_of(tiny_export)["artifacts"]}["vela-u55-128"]["vela"]
    assert vela["fits"] and vela["cpu_operators"] == 0 and vela["npu_operators"] > 0
    assert vela["sram_used_kib"] > 0 and vela["cycles"] > 0 and vela["inference_ms"] > 0


def test_corrupted_and_truncated_artifacts_are_refused(tiny_export, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(tiny_export, copy)
    onnx_file = copy / "model.onnx"
    data = bytearray(onnx_file.read_bytes())
    data[len(data) // 2] ^= 0xFF
    onnx_file.write_bytes(bytes(data))
    with pytest.raises(EdgehoundError, match="sha256 .* does not match"):
        Classifier.load(copy / "manifest.json", artifact="onnx")
    tfl = copy / "model.tflite"
    tfl.write_bytes(tfl.read_bytes()[:1000])
    with pytest.raises(EdgehoundError, match="truncated"):
        Classifier.load(copy / "model.tflite")


def test_an_export_is_scored_on_its_checkpoint_s_validation_photos(tiny_run, tiny_export, tmp_path):
    """evaluate --split val on an export: the int8 settings are compared there, the test part is left alone."""
    def val_report(model, *extra):
        return evaluate_val(model, tmp_path / "val.json", *extra)

    _, reference = val_report(tiny_run / "best.pt")
    _, onnx = val_report(tiny_export, "--artifact", "onnx")
    assert onnx["n"] == reference["n"] > 0 and onnx["artifact"] == "onnx"
    assert onnx["accuracy"] == reference["accuracy"]  # fp32 ONNX agrees with PyTorch photo for photo

    # --against: the other model on the same photos, photo by photo
    _, paired = val_report(tiny_run / "best.pt", "--against", str(tiny_export / "model.int8.onnx"))
    against = paired["against"]
    assert against["n"] == reference["n"] and against["left_out"] == 0 and against["artifact"] == "onnx-int8"
    assert against["accuracy_a"] == reference["accuracy"]
    assert against["both_right"] + against["only_a_right"] + against["only_b_right"] + against["both_wrong"] == against["n"]
    assert 0 < against["mcnemar_p"] <= 1
    _, itself = val_report(tiny_export, "--artifact", "onnx", "--against", str(tiny_run / "best.pt"))
    assert itself["against"]["only_a_right"] == itself["against"]["only_b_right"] == 0
    assert itself["against"]["mcnemar_p"] == 1.0

    copy = tmp_path / "copy"
    shutil.copytree(tiny_export, copy)
    manifest = manifest_of(copy)
    manifest["model"]["split"]["seed"] = "zero"  # a hostile manifest: a split record of the wrong types
    (copy / "manifest.json").write_text(json.dumps(manifest))
    result, _ = val_report(copy, "--artifact", "onnx")
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "split record field 'seed' is missing or not an integer" in result.stderr and str(copy) in result.stderr


def test_against_scores_each_model_in_the_environment_it_needs(tiny_run, tiny_export, tmp_path):
    """A TVM library (TVM's environment, no torch) against the checkpoint (torch, no TVM), in both orders:
    each is scored where it runs and the two are paired on the same validation photos."""
    from conftest import edgehound_cmd

    tvm_file = tiny_export / {e["name"]: e for e in manifest_of(tiny_export)["artifacts"]}["tvm-x86"]["file"]
    for model, other, first, second in ((tiny_run / "best.pt", tvm_file, "pytorch", "tvm-x86"),
                                        (tvm_file, tiny_run / "best.pt", "tvm-x86", "pytorch")):
        result, scored = evaluate_val(model, tmp_path / f"{first}.json", "--against", str(other))
        assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
        against = scored["against"]
        assert scored["artifact"] == first and against["artifact"] == second
        assert against["n"] == scored["n"] > 0 and against["left_out"] == 0
        assert against["accuracy_a"] == scored["accuracy"]
        assert against["only_a_right"] + against["only_b_right"] <= 1  # logits agree to 1e-3: labels too, but at a tie
        assert "paired on" in result.stdout
        # each photo's probabilities cross the environments: the two log losses agree as the logits do
        assert all(abs(sum(p["p"].values()) - 1) < 1e-5 for p in scored["photos"])
        assert against["log_loss_b"] == pytest.approx(against["log_loss_a"], abs=1e-3)
        assert scored["log_loss"] == pytest.approx(against["log_loss_a"])

    # --unseen-by reads its model files with torch, here, while the library is scored in TVM's environment
    reports = []
    for model in (tiny_run / "best.pt", tvm_file):
        report = tmp_path / "unseen.json"
        result = subprocess.run([*edgehound_cmd(), "evaluate", str(model), "--data", str(SAMPLE), "--unseen-by",
                                 str(tiny_run / "best.pt"), "--json", str(report), "--no-progress"],
                                capture_output=True, text=True)
        assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
        reports.append(json.loads(report.read_text()))
    assert reports[1]["artifact"] == "tvm-x86" and 0 < reports[1]["n"] == reports[0]["n"]
    assert {p["photo"] for p in reports[1]["photos"]} == {p["photo"] for p in reports[0]["photos"]}


def test_tvm_library_for_a_cpu_feature_this_host_lacks_is_refused_before_it_runs(tiny_export, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(tiny_export, copy)
    manifest = manifest_of(copy)
    entry = {e["name"]: e for e in manifest["artifacts"]}["tvm-x86"]
    assert "avx2" in entry["tvm"]["cpu_features"] and not missing_cpu_features(entry["tvm"]["cpu_features"])
    entry["tvm"]["cpu_features"].append("no_such_cpu_flag")  # as if built on a newer CPU than this one
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(EdgehoundError, match="uses no_such_cpu_flag, which this CPU lacks"):
        Classifier.load(copy / "manifest.json", artifact="tvm-x86")


def test_failed_target_leaves_nothing_and_others_complete(tiny_run, tmp_path, monkeypatch):
    def broken(ctx, dest):
        dest.write_bytes(b"half an artifact")
        raise RuntimeError("converter crashed")

    monkeypatch.setitem(FORMATS, "broken", Format("broken", ".bin", "onnxruntime", "fp32", "nowhere", broken))
    out = tmp_path / "exp"
    m = export(tiny_run / "best.pt", ExportOptions(targets=["broken", "onnx", "onnx-int8"], out=out, max_drop=-100.0,
                                                   progress=False))
    entries = {e["name"]: e for e in m["artifacts"]}
    assert entries["broken"]["status"] == "failed" and "converter crashed" in entries["broken"]["reason"]
    assert not (out / "model.bin").exists() and not list(out.glob(".*tmp*"))
    # --max-drop -100 rejects anything not 100 pp better than PyTorch, i.e. everything: the mechanism, not the
    # model (a tiny model's int8 artifact can score a few points above its fp32 one on 50 photos)
    for name in ("onnx", "onnx-int8"):
        assert entries[name]["status"] == "rejected" and "--max-drop" in entries[name]["reason"]
    assert (out / "model.int8.onnx").exists()  # kept on disk for inspection
    assert [f["name"] for f in m["failures"]] == ["broken"]


def test_an_artifact_off_parity_fails_its_target_and_the_export(tiny_run, tmp_path, monkeypatch):
    import dataclasses

    import onnx
    from onnx import numpy_helper

    from edgehound.cli import main
    from edgehound.export import formats

    def drifting_onnx(ctx, dest):  # a converter bug: the last layer's first bias off by 1e-2
        info = formats.build_onnx(ctx, dest)
        model = onnx.load(dest)
        bias = next(i for i in reversed(model.graph.initializer)
                    if list(i.dims) == [2] and i.data_type == onnx.TensorProto.FLOAT)
        value = numpy_helper.to_array(bias).copy()
        value[0] += 1e-2
        bias.CopyFrom(numpy_helper.from_array(value, bias.name))
        onnx.save(model, dest)
        return info

    monkeypatch.setitem(FORMATS, "onnx", dataclasses.replace(FORMATS["onnx"], build=drifting_onnx))
    out = tmp_path / "x"
    assert main(["export", str(tiny_run / "best.pt"), "--out", str(out), "--targets", "onnx", "--no-progress"]) == 1
    entry = {e["name"]: e for e in manifest_of(out)["artifacts"]}["onnx"]
    assert entry["status"] == "failed" and entry["reason"].startswith("parity: max |logit diff| 1.00e-02 > 1e-04")
    assert entry["parity"]["passed"] is False


@pytest.mark.parametrize("calibration", ["entropy", "minmax"])
def test_other_calibrations_and_the_u65_npu(tiny_run, tmp_path, calibration):
    targets = ["onnx-int8"] + (["vela-u65-256"] if calibration == "entropy" else [])
    m = export(tiny_run / "best.pt", ExportOptions(targets=targets, out=tmp_path / "x", calibration=calibration,
                                                   eval_limit=20, progress=False))
    entries = {e["name"]: e for e in m["artifacts"]}
    assert entries["onnx-int8"]["status"] == "ok" and entries["onnx-int8"]["calibration"]["method"] == calibration
    assert entries["onnx-int8"]["accuracy"]["n"] == 20
    if "vela-u65-256" in entries:
        vela = entries["vela-u65-256"]
        assert vela["status"] == "ok" and vela["vela"]["npu_operators"] > 0 and vela["vela"]["cycles"] > 0


def test_against_leaves_out_the_photos_the_other_model_trained_on(tiny_run, tmp_path):
    from conftest import edgehound_cmd

    report = tmp_path / "all.json"
    r = subprocess.run([*edgehound_cmd(), "evaluate", str(tiny_run / "best.pt"), "--data", str(SAMPLE), "--json",
                        str(report), "--against", str(tiny_run / "best.pt"), "--no-progress"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    doc = json.loads(report.read_text())
    left_out = doc["against"]["left_out"]
    assert 0 < left_out < doc["n"] and doc["against"]["n"] == doc["n"] - left_out  # its training photos are not evidence
    assert f"{left_out} of the {doc['n']} photos left out of the comparison" in r.stdout
    # the same model with its breeds in the other order: photos are matched by breed name, so it agrees with itself
    reordered = tmp_path / "reordered.pt"
    r = subprocess.run([*edgehound_cmd(), "narrow", str(tiny_run / "best.pt"), "--breeds", "Samoyed", "golden_retriever",
                        "--out", str(reordered)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    r = subprocess.run([*edgehound_cmd(), "evaluate", str(tiny_run / "best.pt"), "--data", str(SAMPLE), "--json",
                        str(report), "--against", str(reordered), "--no-progress"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    against = json.loads(report.read_text())["against"]
    assert against["only_a_right"] == against["only_b_right"] == 0 and against["accuracy_a"] == against["accuracy_b"]


def test_each_int8_target_can_calibrate_on_its_own_number_of_photos(tiny_run, tmp_path):
    m = export(tiny_run / "best.pt", ExportOptions(targets=["onnx-int8", "tflite-int8"], out=tmp_path / "x",
                                                   calib_photos=12, calib_photos_for={"tflite-int8": 5},
                                                   eval_limit=10, progress=False))
    entries = {e["name"]: e for e in m["artifacts"]}
    assert entries["onnx-int8"]["calibration"]["photos"] == 12 and entries["tflite-int8"]["calibration"]["photos"] == 5
    # a count for a target that does not calibrate is refused before the export folder is made
    from conftest import edgehound_cmd

    out = tmp_path / "never"
    r = subprocess.run([*edgehound_cmd(), "export", str(tiny_run / "best.pt"), "--out", str(out), "--targets", "onnx",
                        "tflite", "--calib-photos", "tflite=5"], capture_output=True, text=True)
    assert r.returncode != 0 and "Traceback" not in r.stderr and not out.exists()
    assert "--calib-photos: tflite is not a target of this export that calibrates" in r.stderr


def test_update_rebuilds_the_named_targets_and_keeps_the_other_artifacts_as_they_were(tiny_run, tiny_export, tmp_path):
    """Kept artifacts keep their files and figures; those that run here get their fidelity measured on this
    export's validation photos where an earlier export left it out (here: taken out of tflite and tvm-x86)."""
    folder = tmp_path / "x"
    shutil.copytree(tiny_export, folder)
    old = manifest_of(folder)
    measured = {e["name"]: e.pop("fidelity") for e in old["artifacts"] if e["name"] in ("tflite", "tvm-x86")}
    (folder / "manifest.json").write_text(json.dumps(old))
    before = {e["name"]: e for e in old["artifacts"]}
    m = export(tiny_run / "best.pt", ExportOptions(targets=["onnx-int8"], out=folder, calib_photos=7, update=True,
                                                   progress=False))
    after = {e["name"]: e for e in manifest_of(folder)["artifacts"]}
    assert list(after) == list(before) and m["kept"]["artifacts"] == [n for n in before if n not in ("pytorch", "onnx-int8")]
    assert after["onnx-int8"]["calibration"]["photos"] == 7 and before["onnx-int8"]["calibration"]["photos"] != 7
    assert all("fidelity" in e for n, e in after.items() if n != "pytorch" and e.get("runs_here"))
    assert m["kept"]["from"] == old["created"] and set(m["kept"]["built"].values()) == {old["created"]}
    for name, entry in before.items():
        if name in ("pytorch", "onnx-int8"):
            continue
        if "fidelity" in after[name]:  # measured again, on the same validation photos: the same figures
            fidelity, earlier = after[name].pop("fidelity"), measured.get(name) or entry.pop("fidelity")
            assert fidelity["photos"] == earlier["photos"] == m["fidelity"]["photos"] > 0, name
            assert fidelity["answers_changed"] == earlier["answers_changed"], name
            assert fidelity["mean_abs_margin_error"] == pytest.approx(earlier["mean_abs_margin_error"], abs=1e-5)
        assert after[name] == entry and sha256_file(folder / entry["file"]) == entry["sha256"], name
    assert sha256_file(folder / after["onnx-int8"]["file"]) == after["onnx-int8"]["sha256"]
    assert not list(folder.glob(".*tmp*"))
    Classifier.load(folder, "onnx-int8").classify(min((SAMPLE / "n02111889").iterdir()))
    # an update of that update: the files kept twice keep their first build's time, onnx-int8 gets the update's
    again = export(tiny_run / "best.pt", ExportOptions(targets=["onnx"], out=folder, update=True, progress=False))
    assert again["kept"]["built"]["onnx-int8"] == m["created"] and again["kept"]["built"]["tflite"] == old["created"]


def test_update_without_targets_rebuilds_nothing_and_measures_the_kept_files_fidelity(tiny_run, tiny_export, tmp_path):
    """`export --update` alone: an export made before fidelity was recorded gets it for every artifact that runs
    here, and every file stays byte for byte (a shipped model whose files no longer rebuild the same)."""
    from conftest import edgehound_cmd

    folder = tmp_path / "x"
    shutil.copytree(tiny_export, folder)
    old = manifest_of(folder)
    for entry in old["artifacts"]:
        entry.pop("fidelity", None)
    (folder / "manifest.json").write_text(json.dumps(old))
    files = {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file() and p.name != "manifest.json"}
    r = subprocess.run([*edgehound_cmd(), "export", str(tiny_run / "best.pt"), "--out", str(folder), "--update",
                        "--no-progress"], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    new = manifest_of(folder)
    kept = [e["name"] for e in old["artifacts"] if e["name"] != "pytorch"]
    assert new["kept"]["artifacts"] == kept and f"(0 built, {len(kept)} kept, 0 failed)" in r.stdout
    runnable = [e for e in new["artifacts"] if e["name"] != "pytorch" and e["status"] == "ok" and e.get("runs_here")]
    assert len(runnable) >= 4 and all(e["fidelity"]["photos"] == new["fidelity"]["photos"] > 0 for e in runnable)
    assert {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file() and p.name != "manifest.json"} == files
    for entry in new["artifacts"]:  # nothing but fidelity changes in a kept entry
        before = next(e for e in old["artifacts"] if e["name"] == entry["name"])
        assert {k: v for k, v in entry.items() if k != "fidelity"} == before or entry["name"] == "pytorch"


@pytest.mark.parametrize("damage", ["another checkpoint", "another reference", "a kept file edited",
                                    "no export there", "manifest not JSON"])
def test_update_refuses_what_it_cannot_keep_and_leaves_the_folder_as_it_was(tiny_run, tiny_export, tmp_path, damage):
    folder = tmp_path / "x"
    shutil.copytree(tiny_export, folder)
    path = folder / "manifest.json"
    manifest = json.loads(path.read_text())
    if damage == "another checkpoint":
        manifest["model"]["checkpoint_sha256"] = "0" * 64
        path.write_text(json.dumps(manifest))
        expected = "exported from another checkpoint"
    elif damage == "another reference":  # scored on other photos: the kept drops would not compare
        manifest["reference"]["n"] += 1
        path.write_text(json.dumps(manifest))
        expected = "scored against another reference"
    elif damage == "a kept file edited":
        with open(folder / "model.tflite", "ab") as f:
            f.write(b"\0")
        expected = "model.tflite: changed since it was exported"
    elif damage == "no export there":
        path.unlink()
        expected = "there is none"
    else:
        path.write_text("{ not json")
        expected = "not an export manifest"
    files = {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}
    with pytest.raises(EdgehoundError, match=expected):
        export(tiny_run / "best.pt", ExportOptions(targets=["onnx-int8"], out=folder, update=True, progress=False))
    assert {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()} == files and not list(folder.glob(".*tmp*"))


def test_update_reads_only_the_files_it_keeps_an_edited_one_it_rebuilds_is_replaced(tiny_run, tiny_export, tmp_path):
    folder = tmp_path / "x"
    shutil.copytree(tiny_export, folder)
    with open(folder / "model.int8.onnx", "ab") as f:  # about to be rebuilt: whatever it holds is replaced
        f.write(b"\0")
    export(tiny_run / "best.pt", ExportOptions(targets=["onnx-int8"], out=folder, update=True, progress=False))
    entry = {e["name"]: e for e in manifest_of(folder)["artifacts"]}["onnx-int8"]
    assert entry["status"] == "ok" and sha256_file(folder / "model.int8.onnx") == entry["sha256"]


@pytest.mark.parametrize("foreign", ["a manifest.json that is not JSON", "a manifest.json of another tool",
                                     "a model.onnx of its own", "a best.pt of its own"])
def test_an_export_refuses_to_overwrite_files_that_no_export_made(tiny_run, tmp_path, foreign):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("keep")
    if foreign == "a manifest.json that is not JSON":
        (folder / "manifest.json").write_text("{ not json")
        expected = "manifest.json: not an export manifest"
    elif foreign == "a manifest.json of another tool":
        (folder / "manifest.json").write_text(json.dumps({"name": "my-web-app", "icons": []}))
        expected = "manifest.json: not an export manifest"
    elif foreign == "a model.onnx of its own":
        (folder / "model.onnx").write_bytes(b"someone's model")
        expected = "model.onnx: already there and not an artifact of an export"
    else:
        (folder / "best.pt").write_bytes(b"someone's weights")
        expected = "best.pt: already there and not an artifact of an export"
    files = {p.name: p.read_bytes() for p in folder.iterdir()}
    # refused before any work: was a JSONDecodeError traceback after every target was built (broken
    # manifest), or the file silently replaced (model.onnx, best.pt)
    with pytest.raises(EdgehoundError, match=expected):
        export(tiny_run / "best.pt", ExportOptions(targets=["onnx"], out=folder, progress=False))
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == files


def test_an_export_into_the_run_folder_keeps_its_checkpoint_and_other_files(tiny_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    m = export(run / "best.pt", ExportOptions(targets=["onnx"], out=run, eval_limit=10, progress=False))
    assert [e["status"] for e in m["artifacts"]] == ["ok", "ok"]
    assert all((run / name).read_bytes() == data for name, data in before.items() if name != "manifest.json")


def test_unknown_target_is_a_clear_error(tiny_run, tmp_path):
    with pytest.raises(EdgehoundError, match="unknown target 'tensorrt'"):
        export(tiny_run / "best.pt", ExportOptions(targets=["tensorrt"], out=tmp_path / "x", progress=False))


def test_tvm_tuning_database_is_stored_and_reused(tiny_run, tmp_path, capsys):
    out, db = tmp_path / "tuned", tmp_path / "db"
    first = export(tiny_run / "best.pt", ExportOptions(targets=["tvm-x86"], out=out, tune_trials=8, progress=False,
                                                       tuning_dir=db))
    built = {e["name"]: e for e in first["artifacts"]}["tvm-x86"]["tvm"]
    tuned = built["tuned"]
    assert tuned["trials_this_run"] == 8 and tuned["records"] > 0 and tuned["measured_on"] == "this host"
    log = db / "laptop-x86" / "tvm-x86" / tuned["cpu"] / "logs" / "tvm.s_tir.meta_schedule.logging.task_scheduler.log"
    assert log.is_file() and f"progress: {db / 'laptop-x86' / 'tvm-x86'}/<cpu>/logs/{log.name}" in capsys.readouterr().out
    # tuned CPU builds lower the 3x3 convolutions with >= 16 input channels to Winograd (tiny: the last three)
    assert built["winograd"] == {"tile": 4, "convolutions": [[16, 16, 24, 24], [16, 32, 12, 12], [32, 32, 6, 6]]}
    # one database per device profile and CPU: tvm-x86 without --device belongs to the laptop-x86 profile,
    # and "native" is this host's CPU by LLVM's name
    cpu = tuned["cpu"]
    assert cpu not in ("native", "") and cpu == built["compiled_for"]["mcpu"]
    assert (db / "laptop-x86" / "tvm-x86" / cpu / "database_tuning_record.json").is_file()
    again = export(tiny_run / "best.pt", ExportOptions(targets=["tvm-x86"], out=tmp_path / "other", progress=False,
                                                       tuning_dir=db))
    entry = {e["name"]: e for e in again["artifacts"]}["tvm-x86"]
    assert entry["tvm"]["tuned"]["trials_this_run"] == 0 and entry["tvm"]["tuned"]["records"] == tuned["records"]
    assert entry["status"] == "ok" and entry["parity"]["max_abs_logit_diff"] <= 1e-3
    # with no records of this CPU, another CPU's are used (far better than none), and the manifest says so
    (db / "laptop-x86" / "tvm-x86" / cpu).rename(db / "laptop-x86" / "tvm-x86" / "some-other-cpu")
    elsewhere = export(tiny_run / "best.pt", ExportOptions(targets=["tvm-x86"], out=tmp_path / "elsewhere",
                                                           progress=False, tuning_dir=db))
    note = {e["name"]: e for e in elsewhere["artifacts"]}["tvm-x86"]["tvm"]["tuned"]
    assert note["cpu"] == "some-other-cpu" and note["database"] == "laptop-x86/tvm-x86/some-other-cpu"
    assert note["other_cpu"].startswith(f"records measured on some-other-cpu, compiled for {cpu}:")
    # a database of this CPU that holds only other models' kernels does not hide the other CPU's records
    # of this model's: each kernel looks for a record in this CPU's database first, then in the others'
    other_model = SAMPLE.parents[1] / "devices" / "tuning" / "laptop-x86" / "tvm-x86" / "znver4"
    shutil.copytree(other_model, db / "laptop-x86" / "tvm-x86" / cpu)
    mixed = export(tiny_run / "best.pt", ExportOptions(targets=["tvm-x86"], out=tmp_path / "mixed", progress=False,
                                                       tuning_dir=db))
    note = {e["name"]: e for e in mixed["artifacts"]}["tvm-x86"]["tvm"]["tuned"]
    assert note["cpu"] == "some-other-cpu" and note["kernels_tuned"] == tuned["kernels_tuned"]
    shutil.rmtree(db / "laptop-x86" / "tvm-x86" / cpu)
    # tuning on this CPU starts its own database beside the other one
    own = export(tiny_run / "best.pt", ExportOptions(targets=["tvm-x86"], out=tmp_path / "own", tune_trials=4,
                                                     progress=False, tuning_dir=db))
    mine = {e["name"]: e for e in own["artifacts"]}["tvm-x86"]["tvm"]["tuned"]
    assert mine["cpu"] == cpu and "other_cpu" not in mine
    assert (db / "laptop-x86" / "tvm-x86" / cpu / "database_tuning_record.json").is_file()
    # a profile with its own name and target reads the databases its tuning field names: the shipped
    # models' x86-64-v3 profile compiles from laptop-x86's records, and tunes nothing under its own name
    avx2 = get_profile(str(SAMPLE.parents[1] / "devices" / "shipping" / "laptop-x86-avx2.toml"))
    assert avx2["name"] == "laptop-x86-avx2" and avx2["tuning"] == "laptop-x86"
    portable = export(tiny_run / "best.pt", ExportOptions(targets=["tvm-x86"], out=tmp_path / "portable", device=avx2,
                                                          progress=False, tuning_dir=db))
    built = {e["name"]: e for e in portable["artifacts"]}["tvm-x86"]["tvm"]
    assert built["compiled_for"]["mcpu"] == "x86-64-v3" and isinstance(built["tuned"], dict)  # not "untuned"
    assert built["tuned"]["database"] in (f"laptop-x86/tvm-x86/{cpu}", "laptop-x86/tvm-x86/some-other-cpu")
    assert not (db / "laptop-x86-avx2").exists()


@pytest.mark.parametrize("model, cpu, tuned_on, untuned", [("seed-improved", "znver4", "znver4", 0),
                                                            ("efficient", "znver3", "znver3", 0),
                                                            ("edge", "znver4", "znver4", 0), ("edge", "x86-64-v3", "znver4", 0),
                                                            ("edge-hard", "x86-64-v3", "znver4", 1)])
def test_committed_tuning_records_cover_the_shipped_models(model, cpu, tuned_on, untuned, tmp_path):
    """The laptop-x86 records in the repository load with the pinned TVM and cover every kernel of the
    shipped model: a compile for a CPU (whatever this host is) applies them with no new trials.
    seed-improved and the 224 px edge models were tuned on an AMD Zen 4, efficient on a Zen 3. The shipped
    edge libraries are compiled for x86-64-v3 (devices/shipping/laptop-x86-avx2.toml), a CPU with no records
    of its own: it takes the Zen 4's kernel by kernel. edge-hard is two edge models as one (`edgehound
    ensemble`): its one kernel without a record is the one that joins their logits (each model alone: 27 of 27)."""
    import subprocess

    from edgehound.devices.profiles import TUNING_DIR
    from edgehound.export.tvm_env import tvm_python

    folder = SAMPLE.parents[1] / "runtime" / "models" / model
    shape = select_artifact(folder, "onnx").entry["input"]["shape"]
    result = subprocess.run([tvm_python(), "-m", "edgehound.export.tvm_build", "--onnx", str(folder / "model.onnx"),
                             "--target", json.dumps({"kind": "llvm", "mcpu": cpu}), "--out", str(tmp_path / "m.so"),
                             "--input-shape", ",".join(map(str, [1, *shape[1:]])), "--db", str(TUNING_DIR / "laptop-x86" / "tvm-x86")],
                            capture_output=True, text=True, cwd=SAMPLE.parents[1])
    assert result.returncode == 0, result.stderr[-2000:]
    tuned = json.loads(result.stdout.strip().splitlines()[-1])["tuned"]
    assert tuned["database"] == f"laptop-x86/tvm-x86/{tuned_on}" and tuned["cpu"] == tuned_on
    assert tuned["trials_this_run"] == 0 and ("other_cpu" in tuned) == (tuned_on != cpu)
    covered, _, total = tuned["kernels_tuned"].partition(" of ")
    assert int(covered) == int(total) - untuned and int(covered) > 0  # it was tuned on this very model


@pytest.mark.parametrize("model", ["efficient", "edge", "edge-hard"])
def test_shipped_x86_libraries_need_no_more_than_avx2(model):
    """A shipped tvm-x86 library loads on every x86 CPU CI and users have, AVX-512 or not (a Zen 3 has none):
    the edge models are exported with devices/shipping/laptop-x86-avx2.toml, not for the exporting host's CPU
    (efficient's was compiled on a Zen 3)."""
    entry = select_artifact(SAMPLE.parents[1] / "runtime" / "models" / model, "tvm-x86").entry
    assert set(entry["tvm"]["cpu_features"]) <= {"sse4_2", "avx", "avx2", "fma"}, entry["tvm"]["cpu_features"]


@pytest.mark.parametrize("model", ["seed-improved", "efficient", "edge", "edge-hard"])
def test_every_shipped_artifact_that_runs_here_has_its_fidelity_on_the_manifests_photos(model):
    """The manifest's fidelity column is whole: each runnable artifact's figure, on the validation photos the
    manifest names (efficient's and seed-improved's came from `export --update` alone, their files unchanged)."""
    manifest = json.loads((SAMPLE.parents[1] / "runtime" / "models" / model / "manifest.json").read_text())
    runnable = [e for e in manifest["artifacts"] if e["name"] != "pytorch" and e["status"] == "ok" and e.get("runs_here")]
    assert len(runnable) >= 4 and manifest["fidelity"]["photos"] > 0
    for entry in runnable:
        assert entry["fidelity"]["photos"] == manifest["fidelity"]["photos"], entry["name"]
        assert entry["fidelity"]["answers_changed"] <= 0.03 * entry["fidelity"]["photos"], entry["name"]


def test_flatten_model_converts_and_runs_batches(tmp_path, caplog):
    """The seed's flatten bakes batch 1 into a reshape: the TFLite runtime must still take batches. Both
    conversions see an eval-mode graph: LiteRT's converter warns when a module is converted in training mode."""
    import logging
    import subprocess

    from conftest import SAMPLE, edgehound_cmd, sample_photos

    run = tmp_path / "flat"
    result = subprocess.run([*edgehound_cmd(), "train", "--data", str(SAMPLE), "--out", str(run), "--config", "tiny",
                             "--no-progress", "--set", "model.global_pool=false", "train.epochs=1"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    with caplog.at_level(logging.WARNING):
        m = export(run / "best.pt", ExportOptions(targets=["tflite", "tflite-int8"], out=tmp_path / "exp",
                                                  progress=False))
    assert all(e["status"] == "ok" for e in m["artifacts"]), m["artifacts"]
    assert not [r.message for r in caplog.records if "training mode" in r.getMessage()]
    clf = Classifier.load(tmp_path / "exp", "tflite")
    assert len(clf.classify_batch(sample_photos("n02099601", 3))) == 3


def test_winograd_lowering_matches_the_direct_convolution():
    """Tuned TVM CPU builds convert to NHWC and lower 3x3 stride-1 convolutions to Winograd F(4x4, 3x3).
    The result must equal the direct convolution to float32 rounding, also for sizes that leave partial
    tiles (13 x 11), and strided or thin (RGB-like) convolutions must be left alone."""
    from edgehound.export.tvm_env import tvm_python
    from edgehound.runtime.jobs import run_job

    report = run_job(tvm_python(), "edgehound.export.tvm_winograd:check_against_direct_convolution", {}, 600,
                     cwd=SAMPLE.parents[1])
    assert report["nchw"] == []  # Winograd works on channels-last activations only ...
    assert report["nhwc"] == [[16, 24, 13, 11]]  # ... which cpu_passes converts to; only the first conv qualifies
    assert report["shapes"] == [[1, 5, 7, 6]] * 2
    assert max(report["max_abs_diff"]) <= 1e-5 * report["scale"], report


@pytest.mark.parametrize("family, settings", [
    ("resnet", ["model.conv_channels=[8, 16, 16, 32]", "model.stem_channels=8"]),
    ("mobilenet", ["model.se=true", "model.conv_channels=[8, 16, 16, 24, 32]"]),
])
def test_every_family_exports_to_int8_tvm_and_the_npu(family, settings, tmp_path):
    """A residual add, squeeze-excite and global pooling survive ONNX int8, TFLite int8, TVM and Vela, with
    every operator on the NPU."""
    from conftest import edgehound_cmd

    config = {"resnet": "resnet18", "mobilenet": "edge"}[family]
    run = tmp_path / "run"
    result = subprocess.run([*edgehound_cmd(), "train", "--data", str(SAMPLE), "--out", str(run), "--config", config,
                             "--no-progress", "--set", "model.input_size=64", "train.epochs=1", *settings],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    m = export(run / "best.pt", ExportOptions(targets=["onnx-int8", "tflite-int8", "tvm-x86", "vela-u55-128"],
                                              out=tmp_path / "x", eval_limit=10, progress=False))
    entries = {e["name"]: e for e in m["artifacts"]}
    assert {name: e["status"] for name, e in entries.items()} == dict.fromkeys(entries, "ok")
    assert entries["tflite-int8"]["parity"]["passed"] and entries["tvm-x86"]["parity"]["passed"]
    assert entries["vela-u55-128"]["vela"]["cpu_operators"] == 0 and entries["vela-u55-128"]["vela"]["npu_operators"] > 0
