#!/bin/bash
# stop 52: four heads of one fold backbone as one model, out of fold (study only; rule in runs/RULES.txt, 06:50).
# The heads are runs/s5-cv.sh's, runs/s6-cv.sh's and runs/s6-fixres.sh's 224 px control.
set -e
source .venv/bin/activate
D=../shared/data/imagewoof2-320
for pair in default hard; do
  for f in 0 1 2; do
    edgehound ensemble runs/s5-head-$pair/fold-$f/best.pt runs/s6-head-mixup-$pair/fold-$f/best.pt \
      runs/s6-head-ema-$pair/fold-$f/best.pt runs/s6-tune224-$pair/fold-$f/best.pt --out runs/s7-ens4-$pair/fold-$f/best.pt
  done
  edgehound evaluate runs/s7-ens4-$pair --data $D --split val --no-progress --json runs/s7-oof-ens4-$pair.json \
    > runs/s7-oof-ens4-$pair.log 2>&1
  edgehound compare runs/s7-oof-ens4-$pair.json runs/s5-oof-$pair-224.json
done
