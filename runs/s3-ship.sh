#!/bin/bash
# stop 48: ship the s3 heads (rules and outcomes in runs/RULES.txt), with the calibration counts chosen on validation
# by runs/s3-calib.sh. Args: edge's onnx-int8 and tflite-int8 counts, then edge-hard's.
set -e
source .venv/bin/activate
D=../shared/data/imagewoof2-320
X86=devices/shipping/laptop-x86-avx2.toml  # tvm-x86 for x86-64-v3, so it loads on CPUs without AVX-512
edgehound export runs/s3-kd224-default/best.pt --out runtime/models/edge --device $X86 --no-progress \
  --targets onnx onnx-int8 tflite tflite-int8 tvm-x86 tvm-aarch64 tvm-cuda-sm87 vela-u55-128 vela-u65-256 \
  --calib-photos 300 onnx-int8=$1 tflite-int8=$2 > runs/ship-edge.log 2>&1
edgehound export runs/s3-kd224-hard/best.pt --out runtime/models/edge-hard --device $X86 --no-progress \
  --targets onnx onnx-int8 tflite tflite-int8 tvm-x86 \
  --calib-photos 300 onnx-int8=$3 tflite-int8=$4 > runs/ship-edge-hard.log 2>&1
for m in edge edge-hard; do
  edgehound gate benchmarks/baselines/$m.json --write --manifest runtime/models/$m --data tests/sample > runs/ship-gate-$m.log 2>&1
  edgehound evaluate runtime/models/$m/best.pt --data $D --split test --no-progress --json runs/ship-$m-test.json > runs/ship-$m-test.log 2>&1
done
echo shipped
