"""The format table: every deployable artifact edgehound builds, one row each.

Adding a format is one row here and one build function below. A build function writes the
artifact to `dest` (a temp path; the exporter renames it into place) and returns the manifest
fields it knows: input tensor description, tool versions, extra reports.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from edgehound.export.tvm_env import tvm_python
from edgehound.runtime.errors import EdgehoundError, ToolMissing
from edgehound.runtime.jobs import run_job

@dataclass(frozen=True)
class Format:
    name: str
    suffix: str
    backend: str  # runtime backend that runs it ("onnxruntime", "litert", "tvm"), or "vela" (NPU firmware input)
    precision: str  # fp32 | int8
    target: str  # what the code is compiled for
    build: Callable
    requires: tuple[str, ...] = ()  # formats built first and used as input
    runs_here: bool = True  # False: cross-compiled or for hardware this host lacks; not evaluated here

    @property
    def devices(self) -> list[str]:
        """The device profiles that run this format (each profile's `formats` says; devices are named there once)."""
        from edgehound.devices.profiles import all_profiles

        return [name for name, p in all_profiles().items() if self.name in p["formats"]]


ONNX_INT8_SCHEME = "QDQ per-channel, uint8 activations, int8 weights within ±64 (reduce_range)"
ONNX_INT8_IN_FLOAT = {"first": "the first convolution", "last": "the classifier"}  # export --onnx-int8-in-float
CALIBRATION_PASS_BYTES = 8 * 2**30  # activations one histogram pass of onnx-int8 may hold (_photos_per_histogram_pass)


# ---- build functions -------------------------------------------------------------------------

def build_onnx(ctx, dest: Path) -> dict:
    import onnx
    import torch

    example = torch.from_numpy(ctx.parity_batch[:2])
    program = torch.onnx.export(ctx.model, (example,), dynamo=True, opset_version=ctx.opset, verbose=False,
                                input_names=["input"], output_names=["logits"],
                                dynamic_shapes=({0: torch.export.Dim("batch", min=1, max=1024)},))
    program.save(str(dest), external_data=False)  # one self-contained file
    onnx.checker.check_model(str(dest))
    return {"input": ctx.input_desc(["N", 3, ctx.size, ctx.size], "NCHW"),
            "tools": {"torch": torch.__version__, "onnx": onnx.__version__}, "opset": ctx.opset}


def build_onnx_int8(ctx, dest: Path) -> dict:
    import onnx
    import onnxruntime
    from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process
    from tqdm import tqdm

    method = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
              "percentile": CalibrationMethod.Percentile}[ctx.calibration]
    # Entropy and percentile collect histograms per batch and stack them: batches must all be one size
    # (a shorter last batch fails inside onnxruntime with "inhomogeneous shape"), so those take one photo each.
    calib = ctx.calibration_batches(layout="NCHW", batch=8 if ctx.calibration == "minmax" else 1)
    bar = tqdm(total=len(calib), desc=f"calibrating onnx-int8 ({ctx.calibration})", unit="batch", leave=False,
               disable=not ctx.progress)

    class Reader(CalibrationDataReader):  # set_range: onnxruntime's passes (CalibStridedMinMax) take a slice each
        def __init__(self):
            self.set_range(0, len(calib))

        def __len__(self):
            return len(calib)

        def set_range(self, start_index: int, end_index: int):
            self.it = iter(calib[start_index:end_index])

        def get_next(self):
            batch = next(self.it, None)
            bar.update(batch is not None)
            return None if batch is None else {"input": batch}

    pre = dest.with_name(dest.name + ".pre.onnx")  # keeps dest's .tmp<pid>: a killed export's leftover is found by it
    try:
        quant_pre_process(str(ctx.artifact_path("onnx")), str(pre), skip_symbolic_shape=True)
        graph = onnx.load(str(pre), load_external_data=False).graph  # with the shapes quant_pre_process inferred
        in_float = _layers_in_float(graph, ctx.onnx_int8_in_float)
        per_pass = len(calib) if ctx.calibration == "minmax" else _photos_per_histogram_pass(graph, len(calib))
        # uint8 activations, int8 weights within ±64 (reduce_range): on x86 CPUs without VNNI, onnxruntime
        # multiplies with VPMADDUBSW, whose int16 pair sums saturate with full 8-bit weights, so the same
        # file answered differently per CPU (edge's test part: 2.5 pp below fp32 on an AVX2 EPYC, 0.3 pp on
        # a VNNI Xeon). Within ±64 the kernels compute what the graph says on every CPU (train/STUDY.md,
        # "onnx-int8: saturation on CPUs without VNNI").
        quantize_static(str(pre), str(dest), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                        reduce_range=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        calibrate_method=method, nodes_to_exclude=list(in_float.values()),
                        extra_options={"CalibStridedMinMax": per_pass} if per_pass < len(calib) else {})
    finally:
        bar.close()
        pre.unlink(missing_ok=True)
    return {"input": ctx.input_desc(["N", 3, ctx.size, ctx.size], "NCHW"),
            "tools": {"onnxruntime": onnxruntime.__version__},
            "calibration": {"method": ctx.calibration, "photos": ctx.calibration_count,
                            **({"photos_per_pass": per_pass} if per_pass < len(calib) else {}),
                            "format": ONNX_INT8_SCHEME + "".join(f"; {ONNX_INT8_IN_FLOAT[k]} in float" for k in in_float),
                            "in_float": list(in_float.values())}}


def _photos_per_histogram_pass(graph, photos: int) -> int:
    """How many calibration photos one histogram pass of onnx-int8 takes (entropy and percentile).

    onnxruntime's HistogramCalibrater holds every calibrated activation of every photo of a pass, then
    stacks each tensor and takes its absolute value: about the sum of those activations plus twice the
    largest, per photo (seed-improved at 300x300: 72 MB estimated, 73 MB measured, so about 22 GB for 300
    photos; on a 24 GB machine a process beside it was killed for memory). Passes of at most
    CALIBRATION_PASS_BYTES bound it; onnxruntime merges their histograms, widening the bins as larger values
    come. The bound is a fixed figure, not this machine's free memory, so the same command builds the same
    file anywhere; a machine that cannot hold one pass is told so before it starts, instead of being killed
    for memory halfway."""
    import onnx
    import psutil
    from onnxruntime.quantization.registry import QDQRegistry, QLinearOpsRegistry

    shapes = {v.name: v.type.tensor_type for v in [*graph.value_info, *graph.output, *graph.input]}
    weights = {w.name for w in graph.initializer}
    calibrated = {t for n in graph.node if n.op_type in {*QDQRegistry, *QLinearOpsRegistry}
                  for t in [*n.input, *n.output]
                  if t in shapes and t not in weights and shapes[t].elem_type == onnx.TensorProto.FLOAT}
    sizes = [4 * int(np.prod([d.dim_value or 1 for d in shapes[t].shape.dim[1:]])) for t in calibrated] or [0]
    per_photo = max(1, sum(sizes) + 2 * max(sizes))
    fit = max(1, CALIBRATION_PASS_BYTES // per_photo)
    per_pass = max(d for d in range(1, min(fit, photos) + 1) if photos % d == 0)  # passes must divide the photos
    available = psutil.virtual_memory().available
    if per_pass * per_photo > available:
        raise EdgehoundError(f"onnx-int8: {per_pass} calibration photos per pass hold about "
                             f"{per_pass * per_photo / 1e9:.1f} GB of activations ({per_photo / 1e6:.0f} MB each) and "
                             f"this machine has {available / 1e9:.1f} GB available: give fewer --calib-photos, "
                             "or --calibration minmax")
    return per_pass


def _layers_in_float(graph, which) -> dict[str, str]:
    """The layers onnx-int8 keeps in float, {kind: node name}, of those asked for and found: "first", the
    first convolution (3 input channels, so each weight carries much of the image), and "last", the last
    fully connected layer (the logits).
    Both by default: on the training photos of all four shipped models they took most of the int8 error,
    and efficient's onnx-int8 is built with neither, since a float stem at full resolution made it 2x
    slower (train/STUDY.md, "onnx-int8: the first and last layers in float")."""
    nodes = graph.node
    convs = [n.name for n in nodes if n.op_type == "Conv" and n.name]
    dense = [n.name for n in nodes if n.op_type in ("Gemm", "MatMul") and n.name]
    found = {"first": convs[:1], "last": dense[-1:]}
    return {k: found[k][0] for k in ONNX_INT8_IN_FLOAT if k in which and found[k]}  # each once, in table order


def _nhwc_model(ctx):
    import litert_torch

    return litert_torch.to_channel_last_io(ctx.model, args=[0]).eval()


def build_tflite(ctx, dest: Path) -> dict:
    import litert_torch
    import torch

    example = torch.from_numpy(np.ascontiguousarray(ctx.parity_batch[:1].transpose(0, 2, 3, 1)))
    litert_torch.convert(_nhwc_model(ctx), (example,)).export(str(dest))
    return {"input": ctx.input_desc([1, ctx.size, ctx.size, 3], "NHWC"),
            "tools": {"litert-torch": litert_torch.__version__}}


def _litert_int8_quantizer():
    """LiteRT's PT2E quantizer (per-channel int8 weights, int8 activations), except that a global average
    pool gets its own output scale. LiteRT's quantizer makes the pool share its input's scale, and pooled
    features span a small part of that range, so they were rounded to a few int8 steps: for the shipped
    models, that was most of the int8 error (train/STUDY.md, "int8: the pool's own scale")."""
    import torch
    from litert_torch.quantize import pt2e_quantizer
    from litert_torch.quantize.pt2e_quantizer_utils import get_output_act_qspec

    pools = (torch.ops.aten.mean.dim, torch.ops.aten.adaptive_avg_pool2d.default)

    class PoolWithOwnScale(pt2e_quantizer.PT2EQuantizer):
        def annotate(self, model):
            model = super().annotate(model)
            for node in model.graph.nodes:
                annotation = node.meta.get("quantization_annotation")
                if node.op == "call_function" and node.target in pools and annotation is not None:
                    annotation.output_qspec = get_output_act_qspec(self.global_config)
            return model

    return PoolWithOwnScale().set_global(
        pt2e_quantizer.get_symmetric_quantization_config(is_per_channel=True, is_dynamic=False))


def build_tflite_int8(ctx, dest: Path) -> dict:
    """Full integer: PT2E static quantization (per-channel weights, int8 activations, int8 I/O)."""
    import litert_torch
    import torch
    from litert_torch.quantize import quant_config
    from torchao.quantization.pt2e import move_exported_model_to_eval, quantize_pt2e
    from tqdm import tqdm

    example = torch.from_numpy(np.ascontiguousarray(ctx.parity_batch[:1].transpose(0, 2, 3, 1)))
    graph = torch.export.export(_nhwc_model(ctx), (example,)).module()
    quantizer = _litert_int8_quantizer()
    graph = quantize_pt2e.prepare_pt2e(graph, quantizer)
    with torch.no_grad():  # batch 1: the exported graph has a static batch dimension
        for batch in tqdm(ctx.calibration_batches(layout="NHWC"), desc="calibrating tflite-int8", unit="batch",
                          leave=False, disable=not ctx.progress):
            for image in batch:
                graph(torch.from_numpy(image[None]))
    graph = quantize_pt2e.convert_pt2e(graph, fold_quantize=False)
    # The graph was exported from the model in eval mode and move_exported_model_to_eval swaps dropout and batch
    # norm for their eval forms, yet the GraphModule still says training (its eval() raises NotImplementedError),
    # and litert_torch warns on that flag alone.
    move_exported_model_to_eval(graph)
    graph.training = False
    litert_torch.convert(graph, (example,), quant_config=quant_config.QuantConfig(pt2e_quantizer=quantizer)).export(str(dest))
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=str(dest))
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
    return {"input": ctx.input_desc([1, ctx.size, ctx.size, 3], "NHWC", np.dtype(inp["dtype"]).name, inp["quantization"]),
            "output_quantization": {"dtype": np.dtype(out["dtype"]).name, "scale": float(out["quantization"][0]),
                                    "zero_point": int(out["quantization"][1])},
            "tools": {"litert-torch": litert_torch.__version__},
            "calibration": {"method": "PT2E: histogram (activations), per-channel min-max (weights); "
                                      "global pool with its own scale", "photos": ctx.calibration_count}}


def _tvm_builder(profile_name: str):
    """A TVM build for the device profile `profile_name`: its TVM target and cross compiler come from the
    profile (export --device names another profile that runs the format: that one's)."""
    def build(ctx, dest: Path) -> dict:
        from edgehound.devices.profiles import get_profile, tuning_database

        device = ctx.device if ctx.device and ctx.current in ctx.device.get("formats", ()) else get_profile(profile_name)
        target, cc = device["tvm_target"], device.get("cross_compiler") or None
        shape = [1, 3, ctx.size, ctx.size]
        # One MetaSchedule database per device profile, format and CPU, shared by every model compiled for it.
        db = tuning_database(device["tuning"], ctx.current, ctx.tuning_dir)  # with one folder per CPU inside
        if not ctx.tune_trials and not any(db.glob("*/database_workload.json")):
            db = None
        if cc and shutil.which(cc) is None:
            raise ToolMissing(f"needs the cross compiler {cc}, not on this host (Debian: apt-get install "
                              "gcc-aarch64-linux-gnu)")
        job = {"onnx_path": str(ctx.artifact_path("onnx")), "target_json": json.dumps(target), "out": str(dest),
               "input_shape": shape, "cc": cc, "tune_trials": ctx.tune_trials if db is not None else 0,
               "db_dir": str(db) if db is not None else None}
        reach = device.get("reach", {})
        if ctx.tune_trials and reach.get("kind") == "rpc":  # time the candidates on the device itself
            job.update(rpc_tracker=reach["tracker"], rpc_key=reach["key"], rpc_timeout=reach.get("timeout", 60))
        if job["tune_trials"]:  # a long silence otherwise: 1,600 trials of edge took 24 min on a 2-core EPYC
            print(f"  tuning {job['tune_trials']} trials, about a second each on a laptop CPU; MetaSchedule's "
                  f"progress: {db}/<cpu>/logs/tvm.s_tir.meta_schedule.logging.task_scheduler.log", flush=True)
        info = run_job(tvm_python(), "edgehound.export.tvm_build:build", job, cwd=ctx.repo, what="TVM compile")
        return {"input": ctx.input_desc(shape, "NCHW"), "tools": {"tvm": info["tvm"]},
                "tvm": {"target": target, "compiled_for": info["target"], "cpu_features": info["cpu_features"],
                        "compile_seconds": info["compile_seconds"], "modules": info["modules"],
                        **({"cuda_kernels": info["cuda_kernels"]} if "cuda_kernels" in info else {}),
                        **({"winograd": info["winograd"]} if "winograd" in info else {}),
                        "tuned": info["tuned"] or "untuned (no tuning records for this model's kernels: expect it to be slow)"}}
    return build


def build_vela(accelerator: str):
    def build(ctx, dest: Path) -> dict:
        vela = shutil.which("vela") or shutil.which("vela", path=str(Path(sys.executable).parent))
        if vela is None:
            raise EdgehoundError("vela not found: pip install ethos-u-vela")
        work = dest.parent / f".vela-{accelerator}"
        shutil.rmtree(work, ignore_errors=True)
        source = ctx.artifact_path("tflite-int8")
        result = subprocess.run([vela, str(source), "--accelerator-config", accelerator, "--output-dir", str(work)],
                                capture_output=True, text=True)
        try:
            report = parse_vela_summary(result.stdout)
            if result.returncode != 0:
                raise EdgehoundError(f"vela failed for {accelerator}: {result.stderr.strip()[-300:] or result.stdout.strip()[-300:]}")
            csv = next(work.glob("*_summary_*.csv"), None)
            if csv is not None:
                report.update(parse_vela_csv(csv))
            shutil.move(str(next(work.glob("*_vela.tflite"))), dest)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        fits = report.get("cpu_operators", 0) == 0
        report["fits"] = fits
        if not fits:
            report["note"] = (f"{report.get('cpu_operators')} operators fall back to the CPU: the model does not run "
                              f"entirely on {accelerator}")
        import ethosu.vela

        return {"input": ctx.input_desc([1, ctx.size, ctx.size, 3], "NHWC", "int8"),
                "tools": {"ethos-u-vela": getattr(ethosu.vela, "__version__", "unknown")}, "vela": report}
    return build


def parse_vela_summary(text: str) -> dict:
    """The figures of Vela's network summary printed on stdout."""
    patterns = {
        "sram_used_kib": r"Total SRAM used\s+([\d.]+) KiB",
        "flash_used_kib": r"Total Off-chip Flash used\s+([\d.]+) KiB",
        "cpu_operators": r"CPU operators = (\d+)",
        "npu_operators": r"NPU operators = (\d+)",
        "macs": r"Neural network macs\s+(\d+)",
        "clock_mhz": r"Accelerator clock\s+(\d+) MHz",
    }
    report = {}
    for key, pattern in patterns.items():
        m = re.search(pattern, text)
        if m:
            report[key] = float(m.group(1)) if "." in m.group(1) else int(m.group(1))
    m = re.search(r"Batch Inference time\s+([\d.]+) ms,\s+([\d.]+) inferences/s", text)
    if m:
        report["inference_ms"], report["inferences_per_s"] = float(m.group(1)), float(m.group(2))
    return report


def parse_vela_csv(path: Path) -> dict:
    import csv

    with open(path, newline="") as f:
        row = next(csv.DictReader(f))
    wanted = {"inference_time": "inference_ms", "inferences_per_second": "inferences_per_s",
              "cycles_total": "cycles", "sram_memory_used": "sram_used_kib", "off_chip_flash_memory_used": "flash_used_kib"}
    out = {}
    for col, key in wanted.items():
        if row.get(col) not in (None, ""):
            value = float(row[col])
            out[key] = value * 1000 if key == "inference_ms" else value
    return out


# ---- the table -------------------------------------------------------------------------------

FORMATS: dict[str, Format] = {f.name: f for f in [
    Format("onnx", ".onnx", "onnxruntime", "fp32", "any CPU / CUDA / TensorRT", build_onnx),
    Format("onnx-int8", ".int8.onnx", "onnxruntime", "int8", "any CPU (QDQ)", build_onnx_int8, ("onnx",)),
    Format("tflite", ".tflite", "litert", "fp32", "any CPU (XNNPACK)", build_tflite),
    Format("tflite-int8", ".int8.tflite", "litert", "int8", "any CPU, NPU delegates (int8 I/O)", build_tflite_int8),
    # TVM: the target and the cross compiler are the named device profile's (devices/profiles/*.toml)
    Format("tvm-x86", ".x86_64.so", "tvm", "fp32", "x86-64 host CPU (llvm)", _tvm_builder("laptop-x86"), ("onnx",)),
    Format("tvm-aarch64", ".aarch64.so", "tvm", "fp32", "aarch64 Cortex-A72 (Raspberry Pi 4; runs on Pi 5)",
           _tvm_builder("rpi4"), ("onnx",), runs_here=False),
    Format("tvm-cuda-sm87", ".cuda-sm87.so", "tvm", "fp32", "CUDA sm_87 (Jetson Orin), aarch64 host",
           _tvm_builder("jetson-orin-nano"), ("onnx",), runs_here=False),
    Format("tvm-cuda-sm90", ".cuda-sm90.so", "tvm", "fp32", "CUDA sm_90 (H100 desktop/server GPU), x86-64 host",
           _tvm_builder("desktop-gpu"), ("onnx",), runs_here=False),
    Format("vela-u55-128", ".u55-128.tflite", "vela", "int8", "Arm Ethos-U55-128 NPU",
           build_vela("ethos-u55-128"), ("tflite-int8",), runs_here=False),
    Format("vela-u65-256", ".u65-256.tflite", "vela", "int8", "Arm Ethos-U65-256 NPU",
           build_vela("ethos-u65-256"), ("tflite-int8",), runs_here=False),
]}

DEFAULT_TARGETS = ("onnx", "onnx-int8", "tflite", "tflite-int8", "tvm-x86", "tvm-aarch64", "tvm-cuda-sm87",
                   "tvm-cuda-sm90", "vela-u55-128")


# The formats that quantize, each on its own calibration photos (the Vela ones compile tflite-int8's model).
CALIBRATED_FORMATS = ("onnx-int8", "tflite-int8")


def expand_targets(names: list[str]) -> list[Format]:
    """The formats asked for plus the ones they are built from, in build order, each once."""
    ordered: list[Format] = []

    def add(name: str):
        if name not in FORMATS:
            raise EdgehoundError(f"unknown target {name!r} (known: {', '.join(FORMATS)})")
        for dep in FORMATS[name].requires:
            add(dep)
        if FORMATS[name] not in ordered:
            ordered.append(FORMATS[name])

    for n in names:
        add(n)
    return ordered
