"""Inference backends, each imported only when an artifact needs it.

A backend is a small object: `predict(batch)` takes a float32 batch in the artifact's layout and
returns float32 scores (N x classes). Quantized I/O (int8/uint8 input or output with scale and zero
point) is handled here, so callers may always pass normalised float32 and get float32 logits back.
Optional extras: `input_shape` (what the file itself takes), `input_quantization` (a model that takes
integers says how; a batch already of that type, from preprocess.normalize, is passed as it is) and
`top_operators()` (a profile, where the backend has one).

Eager PyTorch is one more row ("pytorch", the reference every artifact is checked against); it lives
with the checkpoints in train/ (a device has no torch) and is imported only when asked for.
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path

import numpy as np

from edgehound.runtime.errors import EdgehoundError

INSTALL_HINT = {
    "pytorch": 'pip install "edgehound[train]"  (torch; the eager reference, not a device runtime)',
    "onnxruntime": 'pip install "edgehound[runtime-onnx]"  (onnxruntime; onnxruntime-gpu on a Jetson/desktop GPU)',
    "litert": 'pip install "edgehound[runtime-tflite]"  (ai-edge-litert; tflite-runtime also works)',
    "tvm": 'pip install "edgehound[runtime-tvm]" on a device; in a checkout set up with `make setup`, TVM '
           "artifacts run in .venv-tvm by themselves (TVM cannot share the export extra's environment)",
}


# the modules a backend imports (any one of them will do)
BACKEND_MODULES = {"onnxruntime": ("onnxruntime",), "litert": ("ai_edge_litert", "tflite_runtime"), "tvm": ("tvm",),
                   "pytorch": ("torch",)}


def installed(backend: str) -> bool:
    """Whether this host can load the backend's artifacts: its module imports here, or (TVM) a checkout's
    .venv-tvm runs them in a process of its own, as the runtime's commands do."""
    import importlib.util

    if any(importlib.util.find_spec(m) for m in BACKEND_MODULES.get(backend, ())):
        return True
    if backend == "tvm":
        from edgehound.export.tvm_env import tvm_python

        try:
            tvm_python()
            return True
        except EdgehoundError:
            return False
    return False


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


class Backend:
    """A loaded model: predict(batch) -> logits, and what else its runtime can say."""

    input_shape: list | None = None  # the file's own input shape, where the runtime says (dynamic dims: names/None)
    input_quantization: dict | None = None  # {dtype, scale, zero_point} for a model that takes integers

    def predict(self, batch: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def top_operators(self, n: int = 10) -> list[dict] | None:
        """Time per operator type, for a backend loaded with profiling; None elsewhere."""
        return None


class OnnxRuntime(Backend):
    def __init__(self, path: str, threads: int | None = None, providers: list[str] | None = None,
                 profile: bool = False, **_):
        ort = _need("onnxruntime", "onnxruntime")
        options = ort.SessionOptions()
        options.enable_profiling = profile
        self.profiling = profile
        if profile:  # the profile file goes to a temp folder, removed with this backend
            import shutil
            import tempfile
            import weakref

            profile_dir = tempfile.mkdtemp(prefix="edgehound-ort-")
            options.profile_file_prefix = os.path.join(profile_dir, "profile")
            weakref.finalize(self, shutil.rmtree, profile_dir, True)  # also at exit
        options.intra_op_num_threads = threads or 0  # 0: onnxruntime's default, one per core
        options.log_severity_level = 3
        available = ort.get_available_providers()
        wanted = providers or ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]
        chosen = [p for p in wanted if p in available] or ["CPUExecutionProvider"]
        try:
            self.session = ort.InferenceSession(path, options, providers=chosen)
        except Exception as e:  # onnxruntime raises its own exception types for a bad model
            raise EdgehoundError(f"{path}: onnxruntime cannot load it ({str(e).splitlines()[0]})") from None
        self.input_name = self.session.get_inputs()[0].name
        self.input_shape = list(self.session.get_inputs()[0].shape)

    def predict(self, batch: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input_name: np.ascontiguousarray(batch, np.float32)})[0]

    def top_operators(self, n: int = 10) -> list[dict] | None:
        """Time per operator type from onnxruntime's profiler (profile=True)."""
        if not self.profiling:
            return None
        import json

        path = self.session.end_profiling()
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


def _litert_interpreter_class():
    try:
        return importlib.import_module("ai_edge_litert.interpreter")
    except ImportError:
        return _need("tflite_runtime.interpreter", "litert")


def _load_delegate(lite, path: str):
    """An external delegate library (an NPU's), refused by name when it is not a loadable library of
    this host: LiteRT's own failure is ctypes' OSError and then a second traceback from its __del__."""
    import ctypes
    import platform

    from edgehound.runtime.manifest import host_machine, library_machine

    if not Path(path).is_file():
        raise EdgehoundError(f"--delegate {path}: no such file")
    machine = library_machine(Path(path))
    if machine != host_machine() and (machine or platform.system() == "Linux"):  # Linux libraries are ELF files
        raise EdgehoundError(f"--delegate {path}: not a shared library of this {host_machine()} host"
                             + (f" (built for {machine})" if machine else " (not an ELF file)"))
    try:
        if not hasattr(ctypes.CDLL(path), "tflite_plugin_create_delegate"):  # the external delegate's entry point
            raise EdgehoundError(f"--delegate {path}: a library, but not a LiteRT external delegate "
                                 "(no tflite_plugin_create_delegate)")
        return lite.load_delegate(path)
    except (OSError, ValueError, RuntimeError, AttributeError) as e:
        raise EdgehoundError(f"--delegate {path}: LiteRT cannot load it as a delegate ({e})") from None


class LiteRT(Backend):
    def __init__(self, path: str, threads: int | None = None, delegate: str | None = None, **_):
        lite = _litert_interpreter_class()
        delegates = [_load_delegate(lite, delegate)] if delegate else None
        try:
            self.interp = lite.Interpreter(model_path=path, num_threads=threads or os.cpu_count(),
                                           experimental_delegates=delegates)
        except (ValueError, RuntimeError) as e:
            raise EdgehoundError(f"{path}: LiteRT cannot load it ({e})") from None
        self.interp.allocate_tensors()
        self.inp, self.out = self.interp.get_input_details()[0], self.interp.get_output_details()[0]
        self.input_shape = [int(v) for v in self.inp["shape"]]
        if self.inp["dtype"] in (np.int8, np.uint8):
            scale, zp = self.inp["quantization"]
            self.input_quantization = {"dtype": np.dtype(self.inp["dtype"]).name, "scale": float(scale), "zero_point": int(zp)}

    def _run_one(self, x: np.ndarray) -> np.ndarray:
        inp, out = self.inp, self.out
        if inp["dtype"] in (np.int8, np.uint8) and x.dtype != inp["dtype"]:
            scale, zp = inp["quantization"]
            x = quantize(x, np.dtype(inp["dtype"]).name, scale, zp)
        self.interp.set_tensor(inp["index"], x)
        self.interp.invoke()
        y = self.interp.get_tensor(out["index"])
        if out["dtype"] in (np.int8, np.uint8):
            scale, zp = out["quantization"]
            y = dequantize(y, scale, zp)
        return np.asarray(y, np.float32).copy()

    def predict(self, batch: np.ndarray) -> np.ndarray:
        # The graph is exported for batch 1 (a flatten bakes the batch into a reshape): one image at a time.
        x = batch if batch.dtype == self.inp["dtype"] else np.asarray(batch, np.float32)
        return np.concatenate([self._run_one(x[i:i + 1]) for i in range(len(x))])


class TVM(Backend):
    def __init__(self, path: str, device: str = "cpu", threads: int | None = None, **_):
        # TVM sizes its CPU thread pool, once per process, as half the logical CPUs on x86 (it assumes
        # hyper-threading): one thread on a 2-core VM, where onnxruntime uses both. Ask for every CPU,
        # like the LiteRT backend, unless the caller or TVM_NUM_THREADS says otherwise.
        if threads:
            os.environ["TVM_NUM_THREADS"] = str(threads)
        else:
            os.environ.setdefault("TVM_NUM_THREADS", str(os.cpu_count() or 1))
        if device == "cuda":
            tvm = self.tvm = _need("tvm", "tvm")
            _load_tvm_cuda_runtime(tvm)
        else:
            tvm = self.tvm = _import_tvm_runtime_only()
        try:
            lib = tvm.runtime.load_module(path)
        except Exception as e:  # TVM raises its own error types for a foreign or broken library
            hint = ""
            if device == "cuda" and tvm.base._RUNTIME_ONLY:  # kernels stored as source compile at load time
                hint = "; a library exported without the NVIDIA driver holds CUDA source, which needs full apache-tvm and nvcc here"
            raise EdgehoundError(f"{path}: TVM cannot load it ({str(e).splitlines()[0]}){hint}") from None
        self.dev = tvm.cuda(0) if device == "cuda" else tvm.cpu(0)
        self.vm = importlib.import_module("tvm.runtime.vm").VirtualMachine(lib, self.dev)  # the VM alone, not the compiler

    def predict(self, batch: np.ndarray) -> np.ndarray:  # compiled for batch 1: one image at a time
        rows = [self.vm["main"](self.tvm.runtime.tensor(np.ascontiguousarray(x[None], np.float32), self.dev)) for x in batch]
        return np.concatenate([r.numpy() for r in rows])


def _import_tvm_runtime_only():
    """`import tvm` with TVM's runtime library alone: a compiled CPU library needs nothing else, and the
    compiler's library (libtvm_compiler, 259 MB with LLVM on x86) roughly doubled a TVM process's memory
    (`edgehound bench`: edge's x86 library peaked at 228 MB, 121 MB without it). A TVM already imported,
    or TVM_USE_RUNTIME_LIB set by the user, is left as it is. The variable is set around the import only,
    so a TVM compile that this process starts later (export's subprocess) still gets the compiler. CUDA
    does not come here: a library holding CUDA source compiles its kernels at load time, which needs
    the compiler."""
    if "tvm" in sys.modules or "TVM_USE_RUNTIME_LIB" in os.environ:
        return _need("tvm", "tvm")
    os.environ["TVM_USE_RUNTIME_LIB"] = "1"  # read once, by tvm.base at import
    try:
        return _need("tvm", "tvm")
    finally:
        del os.environ["TVM_USE_RUNTIME_LIB"]


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


# name -> class, or "module:class" for one imported only when asked for (train/ needs torch)
BACKENDS = {"onnxruntime": OnnxRuntime, "litert": LiteRT, "tvm": TVM, "pytorch": "edgehound.train.checkpoint:TorchBackend"}


def load_backend(backend: str, path: str, **options) -> Backend:
    if backend not in BACKENDS:
        raise EdgehoundError(f"unknown backend {backend!r} (known: {', '.join(BACKENDS)})")
    cls = BACKENDS[backend]
    if isinstance(cls, str):
        module, _, name = cls.partition(":")
        cls = getattr(_need(module, backend), name)
    return cls(str(path), **options)
