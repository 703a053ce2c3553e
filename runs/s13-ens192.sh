#!/bin/bash
# stop 55: two backbones' 192 px heads as one model (2 x 44 MMACs, within the edge model's 100) against the recipe's
# one 224 px head (61 MMACs), default pair, cross-validated (rule in runs/RULES.txt, 17:00); rerun to resume.
# Heads as runs/s5-cv.sh's, at 192 px, on each set of fold backbones (runs/s5-all8, runs/s7-all8), its own teacher.
set -e
source .venv/bin/activate
D=../shared/data/imagewoof2-320
resume() { [ -e "$1" ] && echo --resume || true; }
head192() {  # backbone set (s5 or s7)
  [ -f runs/s13-h192-$1-default/cv.json ] || edgehound train --data $D --config edge --breeds golden_retriever Samoyed \
    --folds 3 --set train.epochs=20 train.lr=0.0005 train.seed=0 data.split_seed=0 model.input_size=192 \
    --init runs/$1-all8-default --teacher runs/$1-all8 --exclude tests/sample --out runs/s13-h192-$1-default \
    --threads 1 --no-progress --seal-test $(resume runs/s13-h192-$1-default) > runs/s13-h192-$1-default.log 2>&1
}
head192 s5 &
head192 s7 &
wait
for i in 0 1 2; do
  [ -f runs/s13-ens192-default/fold-$i/best.pt ] || edgehound ensemble runs/s13-h192-s5-default/fold-$i/best.pt \
    runs/s13-h192-s7-default/fold-$i/best.pt --out runs/s13-ens192-default/fold-$i/best.pt
done
[ -f runs/s13-oof-ens192-default.json ] || edgehound evaluate runs/s13-ens192-default --data $D --split val \
  --json runs/s13-oof-ens192-default.json --no-progress > runs/s13-oof-ens192-default.log 2>&1
edgehound compare runs/s13-oof-ens192-default.json runs/s5-oof-default-224.json  # the rule's comparison
edgehound compare runs/s13-oof-ens192-default.json runs/s7-oof-ens2-default.json  # study: against two 224 px heads
echo all done
