#!/bin/bash
# stop 51: mixup or a weight average on the 224 px distilled heads, cross-validated (rule in runs/RULES.txt, 03:13);
# needs runs/s5-cv.sh's backbone folds; rerun to resume
set -e
source .venv/bin/activate
D=../shared/data/imagewoof2-320
resume() { [ -e "$1" ] && echo --resume || true; }
head() {  # piece name, its --set, pair name, breeds
  local piece=$1 set=$2 name=$3; shift 3
  local out=runs/s6-head-$piece-$name
  [ -f $out/cv.json ] || edgehound train --data $D --config edge --breeds "$@" --folds 3 \
    --set train.epochs=20 train.lr=0.0005 train.seed=0 data.split_seed=0 model.input_size=224 $set \
    --init runs/s5-all8-$name --teacher runs/s5-all8 --exclude tests/sample --out $out --threads 1 \
    --no-progress --seal-test $(resume $out) > $out.log 2>&1
  [ -f runs/s6-oof-$piece-$name.json ] || edgehound evaluate $out --data $D --split val \
    --json runs/s6-oof-$piece-$name.json --no-progress > runs/s6-oof-$piece-$name.log 2>&1
}
for piece in mixup:train.mixup=0.2 ema:train.ema=0.99; do
  head ${piece%%:*} ${piece#*:} default golden_retriever Samoyed &
  head ${piece%%:*} ${piece#*:} hard beagle English_foxhound &
  wait
done
for piece in mixup ema; do
  for name in default hard; do
    echo "== $piece, $name pair, against the recipe (runs/s5-oof-$name-224.json)"
    edgehound compare runs/s6-oof-$piece-$name.json runs/s5-oof-$name-224.json
  done
done
echo all done
