#!/bin/bash
# stop 55: the recipe's 224 px head distilled from two backbones' mean logits instead of one, cross-validated
# (rule in runs/RULES.txt, 15:58); rerun to resume. The same folds, start and settings as runs/s5-cv.sh's heads;
# only the teachers differ: runs/s5-all8 and runs/s7-all8 (one fold backbone of each per fold).
set -e
source .venv/bin/activate
D=../shared/data/imagewoof2-320
resume() { [ -e "$1" ] && echo --resume || true; }
kd2_head() {  # pair name, breeds
  local name=$1; shift
  [ -f runs/s11-kd2-$name/cv.json ] || edgehound train --data $D --config edge --breeds "$@" --folds 3 \
    --set train.epochs=20 train.lr=0.0005 train.seed=0 data.split_seed=0 model.input_size=224 \
    --init runs/s5-all8-$name --teacher runs/s5-all8 runs/s7-all8 --exclude tests/sample --out runs/s11-kd2-$name \
    --threads 1 --no-progress --seal-test $(resume runs/s11-kd2-$name) > runs/s11-kd2-$name.log 2>&1
  [ -f runs/s11-oof-kd2-$name.json ] || edgehound evaluate runs/s11-kd2-$name --data $D --split val \
    --json runs/s11-oof-kd2-$name.json --no-progress > runs/s11-oof-kd2-$name.log 2>&1
}
kd2_head default golden_retriever Samoyed &
kd2_head hard beagle English_foxhound &
wait
for name in default hard; do
  edgehound compare runs/s11-oof-kd2-$name.json runs/s5-oof-$name-224.json  # the rule's comparison
  edgehound compare runs/s11-oof-kd2-$name.json runs/s7-oof-ens2-$name.json  # study: one head against two
done
echo all done
