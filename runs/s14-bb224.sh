#!/bin/bash
# stop 56: eight-breed fold backbones trained at 224 px instead of 160, then the recipe's 224 px heads on them,
# against the recipe (160 px backbones, runs/s5-cv.sh), cross-validated (rule in runs/RULES.txt, 18:52); rerun to resume.
# Everything as runs/s5-cv.sh but model.input_size=224 for the backbones; the heads' teacher is their own fold backbone.
set -e
source .venv/bin/activate
D=../shared/data/imagewoof2-320
resume() { [ -e "$1" ] && echo --resume || true; }
[ -f runs/s14-all8/cv.json ] || edgehound train --data $D --config edge --breeds all --folds 3 \
  --set train.epochs=40 train.seed=0 data.split_seed=0 model.input_size=224 --exclude tests/sample \
  --out runs/s14-all8 --threads 2 --no-progress --seal-test $(resume runs/s14-all8) > runs/s14-all8.log 2>&1
pair_head() {  # pair name, breeds: the backbone folds narrowed to the pair, then the 224 px distilled head on them
  local name=$1; shift
  for i in 0 1 2; do
    [ -f runs/s14-all8-$name/fold-$i/best.pt ] || edgehound narrow runs/s14-all8/fold-$i/best.pt --breeds "$@" \
      --out runs/s14-all8-$name/fold-$i/best.pt
  done
  [ -f runs/s14-head-$name/cv.json ] || edgehound train --data $D --config edge --breeds "$@" --folds 3 \
    --set train.epochs=20 train.lr=0.0005 train.seed=0 data.split_seed=0 model.input_size=224 \
    --init runs/s14-all8-$name --teacher runs/s14-all8 --exclude tests/sample --out runs/s14-head-$name --threads 1 \
    --no-progress --seal-test $(resume runs/s14-head-$name) > runs/s14-head-$name.log 2>&1
  [ -f runs/s14-oof-$name.json ] || edgehound evaluate runs/s14-head-$name --data $D --split val \
    --json runs/s14-oof-$name.json --no-progress > runs/s14-oof-$name.log 2>&1
  for set in s5 s14; do  # study: the backbones alone, narrowed to the pair, out of fold
    [ -f runs/s14-oof-narrowed-$set-$name.json ] || edgehound evaluate runs/$set-all8 --data $D --breeds "$@" \
      --split val --json runs/s14-oof-narrowed-$set-$name.json --no-progress > runs/s14-oof-narrowed-$set-$name.log 2>&1
  done
}
pair_head default golden_retriever Samoyed &
pair_head hard beagle English_foxhound &
wait
for name in default hard; do
  edgehound compare runs/s14-oof-$name.json runs/s5-oof-$name-224.json  # the rule's comparison
  edgehound compare runs/s14-oof-narrowed-s14-$name.json runs/s14-oof-narrowed-s5-$name.json  # study
done
echo all done
