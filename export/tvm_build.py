"""Compile an ONNX model with TVM's Relax pipeline into one shared library (runs in TVM's own environment).

    python -m edgehound.export.tvm_build --onnx model.onnx --target '{"kind": "llvm"}' --out model.so

TVM is kept out of the main environment (its tvm-ffi needs typing-extensions >= 4.13, which
litert-torch's xdsl forbids), so export runs `build` with TVM's interpreter as a job
(runtime/jobs.py; tvm_env.py finds the interpreter). By hand, it prints one JSON line describing
what it built. Chained as in TVM's tutorials: import
(relax.frontend.onnx) -> optional MetaSchedule tuning (one database per device profile and CPU,
appended to and reused) -> relax.get_default_pipeline(target) -> tvm.compile -> export_library (cross-compiled
with --cc for another architecture). Tuned CPU builds first convert the activations to NHWC and lower
3x3 convolutions to Winograd (tvm_winograd.py): 4x fewer multiplies, in kernels MetaSchedule tunes well.

Tuning measures candidates on this machine, or with --rpc-tracker/--rpc-key on the device the RPC
tracker hands out (candidates cross-compiled with --cc and uploaded), so a Raspberry Pi's database
holds timings taken on a Raspberry Pi.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter
from functools import partial
from pathlib import Path


def build(onnx_path: str, target_json: str, out: str, input_shape: list[int], cc: str | None,
          tune_trials: int, db_dir: str | None, rpc_tracker: str | None = None, rpc_key: str | None = None,
          rpc_timeout: int = 60) -> dict:
    import onnx
    import tvm
    from tvm import relax
    from tvm.relax.frontend.onnx import from_onnx

    from edgehound.export import tvm_winograd

    target_dict = _resolve_host_cpu(json.loads(target_json), cc)
    # Timings belong to the CPU they were measured on: one database per CPU under the device's folder.
    # A kernel without a record of this CPU takes another CPU's (and the manifest says so): kernels chosen
    # on a Zen 4 ran the seed model at 1.08x-1.33x of onnxruntime on a Zen 3, against 15x untuned.
    cpu = tuning_key(target_dict)
    device_dir = Path(db_dir) if db_dir else None
    tuning = device_dir is not None and (tune_trials > 0 or bool(_databases(device_dir, cpu)))
    if tuning and target_dict["kind"] == "llvm" and "num-cores" not in target_dict:
        target_dict["num-cores"] = os.cpu_count()  # MetaSchedule needs it; same value when reusing the database
    target = tvm.target.Target(target_dict)
    mod = from_onnx(onnx.load(onnx_path), shape_dict={"input": input_shape}, keep_params_in_input=False)
    t0 = time.time()
    tuned, winograd = None, []
    if tuning:
        from tvm.s_tir import meta_schedule as ms

        passes = [relax.transform.DecomposeOpsForInference(), relax.transform.CanonicalizeBindings()]
        if target.kind.name == "llvm":  # CPU: NHWC, 3x3 convolutions as Winograd (pays once its kernels are tuned)
            passes += tvm_winograd.cpu_passes(lowered=winograd)
        with target:  # the tutorial's pre-tuning passes: fuse first, so tuning sees the fused kernels
            mod = tvm.transform.Sequential([*passes, relax.get_pipeline("zero")])(mod)
        if tune_trials > 0:  # appends to the database; a later compile reuses it without tuning
            builder = ms.builder.LocalBuilder(f_build=_build_candidate, f_export=partial(_export_candidate, cc),
                                              max_workers=os.cpu_count(), timeout_sec=120)
            if rpc_tracker:
                host, port = rpc_tracker.rsplit(":", 1)
                runner = ms.runner.RPCRunner(
                    ms.runner.RPCConfig(host, int(port), rpc_key, session_timeout_sec=rpc_timeout),
                    ms.runner.EvaluatorConfig(number=3, repeat=1, min_repeat_ms=50, enable_cpu_cache_flush=False),
                    max_workers=1)
            else:  # time candidates on every core, as the runtime runs them (TVM's own default is half the CPUs)
                os.environ.setdefault("TVM_NUM_THREADS", str(target_dict.get("num-cores", os.cpu_count())))
                runner = ms.runner.LocalRunner(timeout_sec=60)
            ms.relax_integration.tune_relax(mod=mod, params={}, target=target, work_dir=str(device_dir / cpu),
                                            max_trials_global=tune_trials, num_trials_per_iter=min(32, tune_trials),
                                            builder=builder, runner=runner)
        # Each kernel takes its record from the first database that has one: this CPU's, then other
        # CPUs' (a device's database serves every model, so this CPU's may hold only other models' kernels).
        folders = _databases(device_dir, cpu)
        databases = [ms.database.JSONDatabase(work_dir=str(d)) for d in folders]
        tasks = ms.relax_integration.extract_tasks(mod, target)
        by_cpu = Counter(next((d.name for d, db in zip(folders, databases)
                               if any(db.has_workload(w) for w in t.dispatched)), None) for t in tasks)
        covered = len(tasks) - by_cpu.pop(None, 0)
        with target, ms.database.OrderedUnionDatabase(*databases):
            mod = relax.transform.MetaScheduleApplyDatabase(enable_warning=False)(mod)
        if covered:
            main = max(by_cpu, key=lambda name: (by_cpu[name], name == cpu))  # ties: this CPU's
            where = f"rpc {rpc_key}@{rpc_tracker}" if rpc_tracker else "this host"
            tuned = {"database": "/".join((device_dir / main).parts[-3:]), "cpu": main, "trials_this_run": tune_trials,
                     "records": (device_dir / main / "database_tuning_record.json").read_text().count("\n"),
                     "kernels_tuned": f"{covered} of {len(tasks)}",
                     "measured_on": where if tune_trials else "database reused, no new trials"}
            if len(by_cpu) > 1:
                tuned["kernels_by_cpu"] = dict(by_cpu)
            if foreign := [name for name in by_cpu if name != cpu]:
                tuned["other_cpu"] = (f"records measured on {' and '.join(foreign)}, compiled for {cpu}: kernels "
                                      "chosen for another CPU (tune on this one with --tune-trials for its own)")
    with target:
        executable = tvm.compile(mod, target=target, relax_pipeline=relax.get_default_pipeline(target))
    device_modules = _module_kinds(executable.mod)
    _export_library(executable, out, cc)
    info = {"tvm": tvm.__version__, "target": json.loads(str(target)), "compile_seconds": round(time.time() - t0, 2),
            "tuned": tuned, "modules": device_modules, "cpu_features": _x86_features(target)}
    if winograd:
        info["winograd"] = {"tile": tvm_winograd.TILE, "convolutions": winograd}
    if "cuda" in device_modules and tvm.get_global_func("ffi.Module.create.cuda", allow_missing=True) is None:
        # Without the NVIDIA driver here, TVM stores the kernels as CUDA C source, compiled when loaded.
        info["cuda_kernels"] = "CUDA source: loading compiles it, which needs full apache-tvm and nvcc on the device"
    return info


def tuning_key(target_dict: dict) -> str:
    """The name of the processor a target's kernels are tuned for: LLVM's CPU name (znver3,
    sapphirerapids, cortex-a72) or the GPU architecture (sm_87)."""
    kind = target_dict.get("kind", "llvm")
    name = target_dict.get("mcpu") or target_dict.get("arch") or ("generic" if kind == "llvm" else kind)
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in str(name)) or "generic"


def _databases(device_dir: Path, cpu: str) -> list[Path]:
    """The device's tuning databases in the order kernels look for a record: this CPU's, then other
    CPUs' with the most records first."""
    found = [d for d in device_dir.glob("*/") if (d / "database_workload.json").is_file()
             and (d / "database_tuning_record.json").is_file()]
    size = {d: (d / "database_tuning_record.json").stat().st_size for d in found}
    return sorted(found, key=lambda d: (d.name != cpu, -size[d], d.name))


def _resolve_host_cpu(target_dict: dict, cc: str | None) -> dict:
    """Turn mcpu "native" into the host's CPU name (e.g. znver4). TVM's LLVM rejects "native" for its
    own triple and silently falls back to generic x86-64: SSE2 only, no AVX or FMA, about 4x slower."""
    from tvm.target import codegen

    if target_dict.get("kind") != "llvm" or target_dict.get("mcpu") != "native":
        return target_dict
    if cc:
        raise SystemExit(f"mcpu 'native' means this build host's CPU; name the device's CPU to cross-compile with {cc}")
    return {**target_dict, "mcpu": codegen.llvm_get_system_cpu()}


# x86 vector extensions a library may use, as LLVM names them -> as Linux's /proc/cpuinfo names them
X86_FEATURES = {"sse4.2": "sse4_2", "avx": "avx", "avx2": "avx2", "fma": "fma", "avx512f": "avx512f",
                "avx512bw": "avx512bw", "avx512dq": "avx512dq", "avx512vl": "avx512vl", "avx512vnni": "avx512_vnni"}


def _x86_features(target) -> list[str]:
    """The /proc/cpuinfo flags an x86 CPU needs to run this library, so the runtime can refuse it on an
    older CPU instead of dying of an illegal instruction."""
    from tvm.target import codegen

    host = target.host or target
    if host.kind.name != "llvm" or not str(host.attrs.get("mtriple", "x86_64")).startswith("x86_64"):
        return []
    has = codegen.llvm_get_cpu_features(host)
    return sorted(flag for name, flag in X86_FEATURES.items() if name in has)


def _build_candidate(mod, target, _params):
    """MetaSchedule's builder: a plain tvm.compile. The default builder's workers import every
    tensor intrinsic first (about 60 s each here) and time out."""
    import tvm

    return tvm.compile(mod, target=target)


def _export_candidate(cc: str | None, mod) -> str:
    """MetaSchedule's export: a shared library, cross-compiled for the device when cc is given (the
    default export makes a tar that the device would have to link with its own compiler)."""
    import tempfile

    path = os.path.join(tempfile.mkdtemp(), "candidate.so")
    _export_library(mod, path, cc)
    return path


def _export_library(module, path: str, cc: str | None) -> None:
    """One shared library, cross-compiled with cc for another architecture when given."""
    if cc:
        from tvm.support import cc as tvm_cc

        module.export_library(path, fcompile=tvm_cc.cross_compiler(cc))
    else:
        module.export_library(path)


def _module_kinds(module) -> list[str]:
    """The kinds of code the library holds, e.g. ['relax.VMExecutable', 'llvm', 'cuda']."""
    kinds = [getattr(module, "kind", type(module).__name__)]
    for imported in module.imports:
        kinds += _module_kinds(imported)
    return kinds


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--onnx", required=True)
    p.add_argument("--target", required=True, help="TVM target as a JSON dict")
    p.add_argument("--out", required=True)
    p.add_argument("--input-shape", required=True, help="e.g. 1,3,300,300")
    p.add_argument("--cc", help="cross compiler, e.g. aarch64-linux-gnu-gcc")
    p.add_argument("--tune-trials", type=int, default=0)
    p.add_argument("--db", help="MetaSchedule database folder (reused when it exists)")
    p.add_argument("--rpc-tracker", help="HOST:PORT of a TVM RPC tracker: measure tuning candidates on its device")
    p.add_argument("--rpc-key", help="the device's key at the tracker")
    p.add_argument("--rpc-timeout", type=int, default=60, help="seconds per RPC session")
    a = p.parse_args(argv)
    info = build(a.onnx, a.target, a.out, [int(v) for v in a.input_shape.split(",")], a.cc, a.tune_trials, a.db,
                 a.rpc_tracker, a.rpc_key, a.rpc_timeout)
    print(json.dumps(info))
    return 0


if __name__ == "__main__":
    sys.exit(main())
