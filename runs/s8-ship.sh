#!/bin/bash
# stop 53: ship runs/s8-hard2.pt as edge-hard (rule of 08:03 in runs/RULES.txt; its validation outcome there), with
# edge-hard's targets and calibration counts; its test part is read once, as the export prints it. Then the gate
# baseline, the per-breed test figures, the composites, a bench of both shipped folders, and the card.
set -e
source .venv/bin/activate
D=../shared/data/imagewoof2-320
X86=devices/shipping/laptop-x86-avx2.toml  # tvm-x86 for x86-64-v3, so it loads on CPUs without AVX-512
edgehound export runs/s8-hard2.pt --out runtime/models/edge-hard --device $X86 --no-progress \
  --targets onnx onnx-int8 tflite tflite-int8 tvm-x86 \
  --calib-photos 300 onnx-int8=1000 tflite-int8=100 > runs/s8/ship-edge-hard.log 2>&1
edgehound gate benchmarks/baselines/edge-hard.json --write --manifest runtime/models/edge-hard --data tests/sample \
  > runs/s8/gate-edge-hard.log 2>&1
edgehound evaluate runtime/models/edge-hard/best.pt --data $D --split test --no-progress \
  --json runs/s8/edge-hard-test.json > runs/s8/edge-hard-test.log 2>&1
edgehound data composite --model runtime/models/edge-hard --data $D --n 40 --seed 0 \
  --out runs/cards-composites-edge-hard-s8 > runs/s8/card-edge-hard.log 2>&1
edgehound bench runtime/models/edge runtime/models/edge-hard --runs 100 --out runs/bench-s8 > runs/s8/bench.log 2>&1
edgehound card runtime/models/edge-hard --data $D --boxes runs/cards-composites-edge-hard-s8 --bench runs/bench-s8 \
  >> runs/s8/card-edge-hard.log 2>&1
echo shipped
