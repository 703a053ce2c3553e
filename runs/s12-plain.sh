#!/bin/bash
# stop 55: the recipe's 224 px head with no teacher against the recipe's distilled one, cross-validated
# (rule in runs/RULES.txt, 16:34); rerun to resume. The same folds, start and settings as runs/s5-cv.sh's heads;
# only --teacher is left out (the loss is then label-smoothed cross-entropy alone).
set -e
source .venv/bin/activate
D=../shared/data/imagewoof2-320
resume() { [ -e "$1" ] && echo --resume || true; }
plain_head() {  # pair name, breeds
  local name=$1; shift
  [ -f runs/s12-plain-$name/cv.json ] || edgehound train --data $D --config edge --breeds "$@" --folds 3 \
    --set train.epochs=20 train.lr=0.0005 train.seed=0 data.split_seed=0 model.input_size=224 \
    --init runs/s5-all8-$name --exclude tests/sample --out runs/s12-plain-$name \
    --threads 1 --no-progress --seal-test $(resume runs/s12-plain-$name) > runs/s12-plain-$name.log 2>&1
  [ -f runs/s12-oof-plain-$name.json ] || edgehound evaluate runs/s12-plain-$name --data $D --split val \
    --json runs/s12-oof-plain-$name.json --no-progress > runs/s12-oof-plain-$name.log 2>&1
}
plain_head default golden_retriever Samoyed &
plain_head hard beagle English_foxhound &
wait
for name in default hard; do
  edgehound compare runs/s12-oof-plain-$name.json runs/s5-oof-$name-224.json  # the rule's comparison
done
echo all done
