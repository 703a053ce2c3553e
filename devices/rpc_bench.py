"""Time a TVM library on a remote device through TVM's RPC tracker (runs in TVM's environment).

`run` is a job of runtime/jobs.py (bench calls it so); by hand:

    python -m edgehound.devices.rpc_bench --tracker HOST:PORT --key KEY --lib model.so --shape 1,3,160,160

Uploads the library to the device the tracker hands out, loads it into a Relax VM there and
measures with the remote time evaluator (on a zero input): the per-repeat latencies in ms. Every
step is bounded by the session timeout.
"""

from __future__ import annotations

import argparse
import json
import sys


def run(tracker: str, key: str, lib: str, shape: list[int], device: str, repeat: int, number: int,
        timeout: int) -> dict:
    import numpy as np
    import tvm
    from tvm import rpc

    host, port = tracker.rsplit(":", 1)
    session = rpc.connect_tracker(host, int(port)).request(key, priority=1, session_timeout=timeout)
    session.upload(lib)
    remote_lib = session.load_module(lib.rsplit("/", 1)[-1])
    dev = session.cuda() if device == "cuda" else session.cpu()
    vm = tvm.runtime.vm.VirtualMachine(remote_lib, dev)
    x = tvm.runtime.tensor(np.zeros(shape, np.float32), dev)
    vm.set_input("main", x)
    timer = vm.time_evaluator("invoke_stateful", dev, number=number, repeat=repeat, min_repeat_ms=0)
    result = timer("main")
    return {"latencies_ms": [float(r) * 1000 for r in result.results], "number": number}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tracker", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--lib", required=True)
    p.add_argument("--shape", required=True)
    p.add_argument("--device", default="cpu")
    p.add_argument("--repeat", type=int, default=30)
    p.add_argument("--number", type=int, default=1)
    p.add_argument("--timeout", type=int, default=120)
    a = p.parse_args(argv)
    out = run(a.tracker, a.key, a.lib, [int(v) for v in a.shape.split(",")], a.device, a.repeat, a.number, a.timeout)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
