#!/bin/bash
# stop 51: the bench's idle wait by CPU time alone (the old rule) and with the threads' run state (the new),
# on a quiet machine and beside two busy loops (a machine loaded beyond the bench)
source .venv/bin/activate
old_rule() {  # the bench with runnable_threads read as 0: CPU time alone decides
  python -c "import sys, edgehound.runtime.host as h; h.runnable_threads = lambda pid: 0
from edgehound.cli import main; sys.argv = ['edgehound'] + sys.argv[1:]; main()" "$@"
}
B="runtime/models/edge --artifacts onnx onnx-int8 tflite tflite-int8 tvm-x86 --runs 100 --no-progress"
edgehound bench $B --out runs/s6-bench-quiet-1 > runs/s6-bench-quiet-1.log 2>&1
edgehound bench $B --out runs/s6-bench-quiet-2 > runs/s6-bench-quiet-2.log 2>&1
python -c "while True: pass" & L1=$!
python -c "while True: pass" & L2=$!
sleep 1
edgehound bench $B --out runs/s6-bench-loaded-new > runs/s6-bench-loaded-new.log 2>&1
old_rule bench $B --out runs/s6-bench-loaded-old > runs/s6-bench-loaded-old.log 2>&1
kill $L1 $L2
for r in quiet-1 quiet-2 loaded-new loaded-old; do
  python - runs/s6-bench-$r/results.json <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print(sys.argv[1], "; ".join(f"{x['name']} {x['ratio']['value']:.2f}x [{x['ratio']['ci95'][0]:.2f}-{x['ratio']['ci95'][1]:.2f}] "
      f"p50 {x['latency']['p50']:.3f} ms waited {x['idle_wait']['waited_s']:.1f} s cap {x['idle_wait']['at_cap']}"
      for x in r["rows"] if x.get("ratio")))
PY
done
