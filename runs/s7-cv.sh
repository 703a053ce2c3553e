#!/bin/bash
# stop 52: heads of two backbone seeds as one model, cross-validated (rule in runs/RULES.txt, 06:52); rerun to resume.
# A second set of fold backbones (seed 1, 30 epochs: 40 would not leave a session's CI its time), its 224 px
# distilled heads on the same folds as runs/s5-cv.sh, then each pair's heads of both backbones joined fold by fold.
set -e
source .venv/bin/activate
D=../shared/data/imagewoof2-320
resume() { [ -e "$1" ] && echo --resume || true; }
[ -f runs/s7-all8/cv.json ] || edgehound train --data $D --config edge --breeds all --folds 3 \
  --set train.epochs=30 train.seed=1 data.split_seed=0 --exclude tests/sample --out runs/s7-all8 --threads 2 \
  --no-progress --seal-test $(resume runs/s7-all8) > runs/s7-all8.log 2>&1
pair_head() {  # pair name, breeds: the backbone folds narrowed to the pair, then the 224 px distilled head on them
  local name=$1; shift
  for i in 0 1 2; do
    [ -f runs/s7-all8-$name/fold-$i/best.pt ] || edgehound narrow runs/s7-all8/fold-$i/best.pt --breeds "$@" \
      --out runs/s7-all8-$name/fold-$i/best.pt
  done
  [ -f runs/s7-head-$name/cv.json ] || edgehound train --data $D --config edge --breeds "$@" --folds 3 \
    --set train.epochs=20 train.lr=0.0005 train.seed=0 data.split_seed=0 model.input_size=224 \
    --init runs/s7-all8-$name --teacher runs/s7-all8 --exclude tests/sample --out runs/s7-head-$name --threads 1 \
    --no-progress --seal-test $(resume runs/s7-head-$name) > runs/s7-head-$name.log 2>&1
  for i in 0 1 2; do  # the two backbones' heads as one model, fold by fold (2 x 61 MMACs)
    [ -f runs/s7-ens2-$name/fold-$i/best.pt ] || edgehound ensemble runs/s5-head-$name/fold-$i/best.pt \
      runs/s7-head-$name/fold-$i/best.pt --out runs/s7-ens2-$name/fold-$i/best.pt
  done
  for run in s7-head s7-ens2; do
    [ -f runs/s7-oof-${run#s7-}-$name.json ] || edgehound evaluate runs/$run-$name --data $D --split val \
      --json runs/s7-oof-${run#s7-}-$name.json --no-progress > runs/s7-oof-${run#s7-}-$name.log 2>&1
    edgehound compare runs/s7-oof-${run#s7-}-$name.json runs/s5-oof-$name-224.json
  done
}
pair_head default golden_retriever Samoyed &
pair_head hard beagle English_foxhound &
wait
echo all done
