"""Inference backends, each imported only when an artifact needs it.

A backend is a callable: float32 batch in the artifact's layout -> float32 scores (N x classes).
Quantized I/O (int8/uint8 input or output with scale and zero point) is handled here, so callers
may always pass normalised float32 and get float32 logits back. A backend whose model takes
integers says how in `predict.input_quantization`; a batch already of that type (from
preprocess.normalize with it: no float work per pixel) is passed as it is.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Callable

import numpy as np

from edgehound.runtime.errors import EdgehoundError

Predict = Callable[[np.ndarray], np.ndarray]
INSTALL_HINT = {
    "onnxruntime": 'pip install "edgehound[runtime-onnx]"  (onnxruntime; onnxruntime-gpu on a Jetson/desktop GPU)',
    "litert": 'pip install "edgehound[runtime-tflite]"  (ai-edge-litert; tflite-runtime also works)',
    "tvm": 'pip install "edgehound[runtime-tvm]" on a device; in a checkout set up with `make setup`, TVM '
           "artifacts run in .venv-tvm by themselves (TVM cannot share the export extra's environment)",
}


def _need(module: str, backend: str):
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise EdgehoundError(f"the {backend} backend is not installed ({e}); install it with: {INSTALL_HINT[backend]}") from None


def quantize(x: np.ndarray, dtype: str, scale: float, zero_point: int) -> np.ndarray:
    info = np.iinfo(dtype)
    return np.clip(np.round(x / scale) + zero_point, info.min, info.max).astype(dtype)


def dequantize(q: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    return (q.astype(np.float32) - zero_point) * scale


def onnxruntime_backend(path: str, threads: int | None = None, providers: list[str] | None = None,
                        profile: bool = False, **_) -> Predict:
    ort = _need("onnxruntime", "onnxruntime")
    options = ort.SessionOptions()
    options.enable_profiling = profile
    if profile:  # the profile file goes to a temp folder, removed with the session's predict function
        import shutil
        import tempfile

        profile_dir = tempfile.mkdtemp(prefix="edgehound-ort-")
        options.profile_file_prefix = os.path.join(profile_dir, "profile")
    options.intra_op_num_threads = threads or 0  # 0: onnxruntime's default, one per core
    options.log_severity_level = 3
    available = ort.get_available_providers()
    wanted = providers or ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]
    chosen = [p for p in wanted if p in available] or ["CPUExecutionProvider"]
    try:
        session = ort.InferenceSession(path, options, providers=chosen)
    except Exception as e:  # onnxruntime raises its own exception types for a bad model
        raise EdgehoundError(f"{path}: onnxruntime cannot load it ({str(e).splitlines()[0]})") from None
    name = session.get_inputs()[0].name

    def predict(batch: np.ndarray) -> np.ndarray:
        return session.run(None, {name: np.ascontiguousarray(batch, np.float32)})[0]

    def top_operators(n: int = 10) -> list[dict]:
        """Time per operator type from onnxruntime's profiler (profile=True)."""
        import json

        path = session.end_profiling()
        with open(path) as f:
            events = json.load(f)
        os.remove(path)
        totals: dict[str, float] = {}
        for ev in events:
            if ev.get("cat") == "Node" and ev.get("name", "").endswith("_kernel_time"):
                op = ev.get("args", {}).get("op_name", "?")
                totals[op] = totals.get(op, 0.0) + ev.get("dur", 0) / 1000.0
        total = sum(totals.values()) or 1.0
        ranked = sorted(totals.items(), key=lambda kv: -kv[1])[:n]
        return [{"op": op, "ms": round(ms, 3), "share": round(ms / total, 4)} for op, ms in ranked]

    if profile:
        import weakref

        weakref.finalize(predict, shutil.rmtree, profile_dir, True)  # also at exit
    predict.input_shape = list(session.get_inputs()[0].shape)  # dynamic dimensions are names or None
    predict.top_operators = top_operators if profile else None
    return predict


def _litert_interpreter_class():
    try:
        return importlib.import_module("ai_edge_litert.interpreter")
    except ImportError:
        return _need("tflite_runtime.interpreter", "litert")


def litert_backend(path: str, threads: int | None = None, delegate: str | None = None, **_) -> Predict:
    lite = _litert_interpreter_class()
    delegates = [lite.load_delegate(delegate)] if delegate else None
    try:
        interp = lite.Interpreter(model_path=path, num_threads=threads or os.cpu_count(),
                                  experimental_delegates=delegates)
    except (ValueError, RuntimeError) as e:
        raise EdgehoundError(f"{path}: LiteRT cannot load it ({e})") from None
    interp.allocate_tensors()
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]

    def run_one(x: np.ndarray) -> np.ndarray:
        if inp["dtype"] in (np.int8, np.uint8) and x.dtype != inp["dtype"]:
            scale, zp = inp["quantization"]
            x = quantize(x, np.dtype(inp["dtype"]).name, scale, zp)
        interp.set_tensor(inp["index"], x)
        interp.invoke()
        y = interp.get_tensor(out["index"])
        if out["dtype"] in (np.int8, np.uint8):
            scale, zp = out["quantization"]
            y = dequantize(y, scale, zp)
        return np.asarray(y, np.float32).copy()

    def predict(batch: np.ndarray) -> np.ndarray:
        # The graph is exported for batch 1 (a flatten bakes the batch into a reshape): one image at a time.
        x = batch if batch.dtype == inp["dtype"] else np.asarray(batch, np.float32)
        return np.concatenate([run_one(x[i:i + 1]) for i in range(len(x))])

    predict.input_shape = [int(v) for v in inp["shape"]]
    if inp["dtype"] in (np.int8, np.uint8):
        scale, zp = inp["quantization"]
        predict.input_quantization = {"dtype": np.dtype(inp["dtype"]).name, "scale": float(scale), "zero_point": int(zp)}
    return predict


def tvm_backend(path: str, device: str = "cpu", threads: int | None = None, **_) -> Predict:
    # TVM sizes its CPU thread pool, once per process, as half the logical CPUs on x86 (it assumes
    # hyper-threading): one thread on a 2-core VM, where onnxruntime uses both. Ask for every CPU,
    # like the LiteRT backend, unless the caller or TVM_NUM_THREADS says otherwise.
    if threads:
        os.environ["TVM_NUM_THREADS"] = str(threads)
    else:
        os.environ.setdefault("TVM_NUM_THREADS", str(os.cpu_count() or 1))
    tvm = _need("tvm", "tvm")
    if device == "cuda":
        _load_tvm_cuda_runtime(tvm)
    try:
        lib = tvm.runtime.load_module(path)
    except Exception as e:  # TVM raises its own error types for a foreign or broken library
        hint = ""
        if device == "cuda" and tvm.base._RUNTIME_ONLY:  # kernels stored as source compile at load time
            hint = "; a library exported without the NVIDIA driver holds CUDA source, which needs full apache-tvm and nvcc here"
        raise EdgehoundError(f"{path}: TVM cannot load it ({str(e).splitlines()[0]}){hint}") from None
    dev = tvm.cuda(0) if device == "cuda" else tvm.cpu(0)
    vm = importlib.import_module("tvm.runtime.vm").VirtualMachine(lib, dev)  # the VM alone, not the compiler

    def predict(batch: np.ndarray) -> np.ndarray:  # compiled for batch 1: one image at a time
        rows = [vm["main"](tvm.runtime.tensor(np.ascontiguousarray(x[None], np.float32), dev)) for x in batch]
        return np.concatenate([r.numpy() for r in rows])

    return predict


def _load_tvm_cuda_runtime(tvm) -> None:
    """TVM's CUDA runtime is a sidecar library (libtvm_runtime_cuda, linked to CUDA 13's libcudart)
    that only the compiler's import loads: load it here, and say plainly when the GPU is not usable."""
    loaded = tvm.base._LOADED_LIBS  # TVM's record of its loaded libraries, meant for such extensions
    if "tvm_runtime_cuda" not in loaded:
        from tvm_ffi.libinfo import load_lib_ctypes

        lib_dir = Path(loaded["tvm_runtime"]._name).resolve().parent
        try:
            loaded["tvm_runtime_cuda"] = load_lib_ctypes(package="tvm", target_name="tvm_runtime_cuda",
                                                         extra_lib_paths=[lib_dir], mode="RTLD_LOCAL")
        except (OSError, RuntimeError) as e:
            raise EdgehoundError(f"TVM's CUDA runtime does not load here ({str(e).splitlines()[0]}): it needs the "
                                 "NVIDIA driver (libcuda) and CUDA 13's libcudart") from None
    if not tvm.cuda(0).exist:
        raise EdgehoundError("TVM's CUDA runtime is loaded but sees no GPU")


BACKENDS = {"onnxruntime": onnxruntime_backend, "litert": litert_backend, "tvm": tvm_backend}


def load_backend(backend: str, path: str, **options) -> Predict:
    if backend not in BACKENDS:
        raise EdgehoundError(f"unknown backend {backend!r} (known: {', '.join(BACKENDS)})")
    return BACKENDS[backend](str(path), **options)
