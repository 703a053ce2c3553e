#!/bin/bash
# stop 49: the cards again after the calibration swaps (edge onnx-int8, edge-hard tflite-int8), with latency from
# a bench that waits for the other models' threads to go idle before each burst (runs/bench-s4c, after the integer-input fix as well)
set -e
source .venv/bin/activate
D=../shared/data/imagewoof2-320
for m in edge edge-hard; do
  edgehound data composite --model runtime/models/$m --data $D --n 40 --seed 0 --out runs/cards-composites-$m-s4 > runs/s4/card-$m.log 2>&1
  edgehound card runtime/models/$m --data $D --boxes runs/cards-composites-$m-s4 --bench runs/bench-s4c >> runs/s4/card-$m.log 2>&1
done
echo cards done
