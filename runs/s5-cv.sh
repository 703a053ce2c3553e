#!/bin/bash
# stop 50: test-time resolution, cross-validated (rule in runs/RULES.txt, 00:22); rerun to resume
set -e
source .venv/bin/activate
D=../shared/data/imagewoof2-320
resume() { [ -e "$1" ] && echo --resume || true; }
[ -f runs/s5-all8/cv.json ] || edgehound train --data $D --config edge --breeds all --folds 3 \
  --set train.epochs=40 train.seed=0 data.split_seed=0 --exclude tests/sample --out runs/s5-all8 --threads 2 \
  --no-progress --seal-test $(resume runs/s5-all8) > runs/s5-all8.log 2>&1
pair_head() {  # pair name, breeds: the backbone folds narrowed to the pair, then the 224 px distilled head on them
  local name=$1; shift
  for i in 0 1 2; do
    [ -f runs/s5-all8-$name/fold-$i/best.pt ] || edgehound narrow runs/s5-all8/fold-$i/best.pt --breeds "$@" \
      --out runs/s5-all8-$name/fold-$i/best.pt
  done
  [ -f runs/s5-head-$name/cv.json ] || edgehound train --data $D --config edge --breeds "$@" --folds 3 \
    --set train.epochs=20 train.lr=0.0005 train.seed=0 data.split_seed=0 model.input_size=224 \
    --init runs/s5-all8-$name --teacher runs/s5-all8 --exclude tests/sample --out runs/s5-head-$name --threads 1 \
    --no-progress --seal-test $(resume runs/s5-head-$name) > runs/s5-head-$name.log 2>&1
}
pair_head default golden_retriever Samoyed &
pair_head hard beagle English_foxhound &
wait
for name in default hard; do
  for size in 224 240 256 272 288; do
    [ -f runs/s5-oof-$name-$size.json ] || edgehound evaluate runs/s5-head-$name --data $D --split val \
      --input-size $size --json runs/s5-oof-$name-$size.json --no-progress > runs/s5-oof-$name-$size.log 2>&1
  done
  edgehound compare runs/s5-oof-$name-256.json runs/s5-oof-$name-224.json
done
echo all done
