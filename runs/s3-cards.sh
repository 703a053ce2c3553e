#!/bin/bash
# stop 48: the shipped s3 models' cards, measured again on the new files (as stop 46's cards were made)
set -e
source .venv/bin/activate
D=../shared/data/imagewoof2-320
for m in edge edge-hard; do
  edgehound data composite --model runtime/models/$m --data $D --n 40 --seed 0 --out runs/cards-composites-$m-s3 > runs/card-$m.log 2>&1
  edgehound card runtime/models/$m --data $D --boxes runs/cards-composites-$m-s3 >> runs/card-$m.log 2>&1
done
echo cards done
