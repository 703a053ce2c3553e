#!/bin/bash
# stop 54: heads of three backbone seeds as one model, cross-validated, hard pair (rule in runs/RULES.txt, 13:18);
# rerun to resume. A third set of fold backbones (seed 2, 30 epochs as runs/s7-cv.sh), its 224 px distilled hard
# heads on the same folds, then per fold the three backbones' heads joined.
set -e
source .venv/bin/activate
D=../shared/data/imagewoof2-320
resume() { [ -e "$1" ] && echo --resume || true; }
[ -f runs/s10-all8/cv.json ] || edgehound train --data $D --config edge --breeds all --folds 3 \
  --set train.epochs=30 train.seed=2 data.split_seed=0 --exclude tests/sample --out runs/s10-all8 --threads 2 \
  --no-progress --seal-test $(resume runs/s10-all8) > runs/s10-all8.log 2>&1
for i in 0 1 2; do
  [ -f runs/s10-all8-hard/fold-$i/best.pt ] || edgehound narrow runs/s10-all8/fold-$i/best.pt \
    --breeds beagle English_foxhound --out runs/s10-all8-hard/fold-$i/best.pt
done
[ -f runs/s10-head-hard/cv.json ] || edgehound train --data $D --config edge --breeds beagle English_foxhound --folds 3 \
  --set train.epochs=20 train.lr=0.0005 train.seed=0 data.split_seed=0 model.input_size=224 \
  --init runs/s10-all8-hard --teacher runs/s10-all8 --exclude tests/sample --out runs/s10-head-hard --threads 2 \
  --no-progress --seal-test $(resume runs/s10-head-hard) > runs/s10-head-hard.log 2>&1
for i in 0 1 2; do  # the three backbones' heads as one model, fold by fold (3 x 61 MMACs)
  [ -f runs/s10-ens3-hard/fold-$i/best.pt ] || edgehound ensemble runs/s5-head-hard/fold-$i/best.pt \
    runs/s7-head-hard/fold-$i/best.pt runs/s10-head-hard/fold-$i/best.pt --out runs/s10-ens3-hard/fold-$i/best.pt
done
for run in s10-head s10-ens3; do
  [ -f runs/${run/s10-/s10-oof-}-hard.json ] || edgehound evaluate runs/$run-hard --data $D --split val \
    --json runs/${run/s10-/s10-oof-}-hard.json --no-progress > runs/${run/s10-/s10-oof-}-hard.log 2>&1
done
edgehound compare runs/s10-oof-ens3-hard.json runs/s7-oof-ens2-hard.json
edgehound compare runs/s10-oof-head-hard.json runs/s5-oof-hard-224.json
echo all done
