#!/bin/bash
# stop 57: born-again distillation, cross-validated, default pair only (rule and amendment in runs/RULES.txt,
# 22:16 and 22:23); rerun to resume. This checkout held no runs, so it first retrains runs/s5-cv.sh's fold backbones
# and the recipe's 224 px heads with its settings, then the same heads with --teacher the recipe's own fold heads.
# Fold by fold (--fold I) on two chains of one thread each, so that heads train while a backbone still does;
# the last step joins each head's folds into its cv.json (finished folds are only checked).
set -e
source .venv/bin/activate
D=../shared/data/imagewoof2-320
PAIR="golden_retriever Samoyed"
resume() { [ -e "$1" ] && echo --resume || true; }
wait_for() { while [ ! -f "$1" ]; do sleep 30; done; }
backbone_args() {  # runs/s5-cv.sh's eight-breed fold backbones (one thread: two chains run side by side)
  echo --data $D --config edge --breeds all --folds 3 --set train.epochs=40 train.seed=0 data.split_seed=0 \
    --exclude tests/sample --threads 1 --no-progress --seal-test
}
backbone() {  # fold: runs/s5-cv.sh's eight-breed backbone, then narrowed to the pair
  local i=$1
  [ -f runs/s5-all8/fold-$i/summary.json ] || edgehound train $(backbone_args) --fold $i --out runs/s5-all8/fold-$i \
    $(resume runs/s5-all8/fold-$i/last.pt) > runs/s5-all8-fold-$i.log 2>&1
  [ -f runs/s5-all8-default/fold-$i/best.pt ] || edgehound narrow runs/s5-all8/fold-$i/best.pt --breeds $PAIR \
    --out runs/s5-all8-default/fold-$i/best.pt
}
head_args() {  # out folder, teacher folder: the recipe's 224 px distilled head on the narrowed backbone folds
  echo --data $D --config edge --breeds $PAIR --folds 3 --set train.epochs=20 train.lr=0.0005 train.seed=0 \
    data.split_seed=0 model.input_size=224 --init runs/s5-all8-default --teacher $2 --exclude tests/sample \
    --threads 1 --no-progress --seal-test
}
fold_head() {  # out folder, teacher folder, fold
  local out=$1 teacher=$2 i=$3
  wait_for runs/s5-all8-default/fold-$i/best.pt
  [ "$teacher" = runs/s5-all8 ] || wait_for $teacher/fold-$i/summary.json
  [ -f $out/fold-$i/summary.json ] || edgehound train $(head_args $out $teacher) --fold $i --out $out/fold-$i \
    $(resume $out/fold-$i/last.pt) > $out-fold-$i.log 2>&1
}
recipe() { fold_head runs/s5-head-default runs/s5-all8 $1; }
born_again() { fold_head runs/s15-ban-default runs/s5-head-default $1; }
(backbone 0; backbone 2; recipe 2; born_again 2) > runs/s15-chain-a.log 2>&1 &
(backbone 1; recipe 0; born_again 0; recipe 1; born_again 1) > runs/s15-chain-b.log 2>&1 &
wait
for pair in "runs/s5-head-default runs/s5-all8 runs/s5-oof-default-224.json" \
            "runs/s15-ban-default runs/s5-head-default runs/s15-oof-ban-default.json"; do
  set -- $pair
  [ -f $1/cv.json ] || edgehound train $(head_args $1 $2) --out $1 --resume > $1.log 2>&1
  [ -f $3 ] || edgehound evaluate $1 --data $D --split val --json $3 --no-progress > ${3%.json}.log 2>&1
done
edgehound compare runs/s15-oof-ban-default.json runs/s5-oof-default-224.json  # the rule's comparison
# study (added after the run, which joined them by hand with these commands): the backbone folds joined, eight-way
# out of fold, and their out-of-fold answers on the pair's photos (the recipe's teacher)
[ -f runs/s5-all8/cv.json ] || edgehound train $(backbone_args) --out runs/s5-all8 --resume > runs/s5-all8.log 2>&1
[ -f runs/s15-oof-narrowed-default.json ] || edgehound evaluate runs/s5-all8 --breeds $PAIR --data $D --split val \
  --json runs/s15-oof-narrowed-default.json --no-progress > runs/s15-oof-narrowed-default.log 2>&1
echo all done
