#!/bin/bash
# stop 51: FixRes-style fine-tuning of the 224 px heads at 256 px, cross-validated (rule in runs/RULES.txt, 04:46);
# needs runs/s5-cv.sh's folds; rerun to resume
set -e
source .venv/bin/activate
D=../shared/data/imagewoof2-320
resume() { [ -e "$1" ] && echo --resume || true; }
tune() {  # size, pair name, breeds: 5 more epochs of each fold's 224 px head at that size
  local size=$1 name=$2; shift 2
  local out=runs/s6-tune$size-$name
  [ -f $out/cv.json ] || edgehound train --data $D --config edge --breeds "$@" --folds 3 \
    --set train.epochs=5 train.lr=0.0001 train.seed=0 data.split_seed=0 model.input_size=$size \
    --init runs/s5-head-$name --teacher runs/s5-all8 --exclude tests/sample --out $out --threads 1 \
    --no-progress --seal-test $(resume $out) > $out.log 2>&1
  [ -f runs/s6-oof-tune$size-$name.json ] || edgehound evaluate $out --data $D --split val \
    --json runs/s6-oof-tune$size-$name.json --no-progress > runs/s6-oof-tune$size-$name.log 2>&1
}
for size in 256 224; do
  tune $size default golden_retriever Samoyed &
  tune $size hard beagle English_foxhound &
  wait
done
for size in 256 224; do
  for name in default hard; do
    echo "== 5 epochs at $size px, $name pair, against the recipe at 224 px (runs/s5-oof-$name-224.json)"
    edgehound compare runs/s6-oof-tune$size-$name.json runs/s5-oof-$name-224.json
  done
done
echo all done
