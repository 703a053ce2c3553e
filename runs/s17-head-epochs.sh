#!/bin/bash
# stop 59: the head's training length, cross-validated, both pairs (rule in runs/RULES.txt, 06:10); rerun to resume.
# Candidate: runs/s5-cv.sh's 224 px recipe head with train.epochs=40 instead of 20. Baselines: the recipe's fold
# heads, runs/s5-head-default (held from runs/s15-ban.sh) and runs/s5-head-hard (retrained here with runs/s5-cv.sh's
# settings). Fold by fold (--fold I) on two chains of one thread each; then each run's folds are joined into its
# cv.json (the out-of-fold report, evaluate's format), which the comparisons read.
set -e
source .venv/bin/activate
D=../shared/data/imagewoof2-320
declare -A BREEDS=([default]="golden_retriever Samoyed" [hard]="beagle English_foxhound")
for need in runs/s5-all8/fold-{0,1,2}/best.pt runs/s5-head-default/cv.json; do
  [ -f $need ] || { echo "$need is missing: run runs/s15-ban.sh first (it rebuilds the backbones and the baseline)"; exit 1; }
done
resume() { [ -e "$1" ] && echo --resume || true; }
head_args() {  # pair, epochs: the recipe's 224 px distilled head on the narrowed backbone folds
  echo --data $D --config edge --breeds ${BREEDS[$1]} --folds 3 --set train.epochs=$2 train.lr=0.0005 train.seed=0 \
    data.split_seed=0 model.input_size=224 --init runs/s5-all8-$1 --teacher runs/s5-all8 --exclude tests/sample \
    --threads 1 --no-progress --seal-test
}
out_dir() { [ $2 = 20 ] && echo runs/s5-head-$1 || echo runs/s17-head$2-$1; }  # pair, epochs
fold_head() {  # pair, epochs, fold
  local out=$(out_dir $1 $2) i=$3
  [ -f runs/s5-all8-$1/fold-$i/best.pt ] || edgehound narrow runs/s5-all8/fold-$i/best.pt --breeds ${BREEDS[$1]} \
    --out runs/s5-all8-$1/fold-$i/best.pt
  [ -f $out/fold-$i/summary.json ] || edgehound train $(head_args $1 $2) --fold $i --out $out/fold-$i \
    $(resume $out/fold-$i/last.pt) > $out-fold-$i.log 2>&1
}
(fold_head default 40 0; fold_head default 40 1; fold_head hard 20 2; fold_head hard 40 1) > runs/s17-chain-a.log 2>&1 &
(fold_head hard 20 0; fold_head hard 20 1; fold_head default 40 2; fold_head hard 40 0; fold_head hard 40 2) \
  > runs/s17-chain-b.log 2>&1 &
wait
for pair in default hard; do
  for epochs in 20 40; do
    out=$(out_dir $pair $epochs)
    [ -f $out/cv.json ] || edgehound train $(head_args $pair $epochs) --out $out --resume > $out.log 2>&1
  done
  echo "== $pair pair: 40-epoch heads against the recipe's 20"
  edgehound compare $(out_dir $pair 40)/cv.json $(out_dir $pair 20)/cv.json  # the rule's comparison
done
echo all done
