#!/bin/bash
# stop 60: the distillation's temperature and weight, and born-again distillation, cross-validated, hard pair (rule
# in runs/RULES.txt, 09:44); rerun to resume. Each candidate is runs/s5-cv.sh's 224 px recipe head with one thing
# changed; the baseline is the recipe's own hard-pair fold heads (runs/s5-head-hard, retrained by
# runs/s17-head-epochs.sh). Fold by fold (--fold I) on two chains of one thread each; the last step joins each
# candidate's folds into its cv.json (the out-of-fold report), which the comparisons read.
set -e
source .venv/bin/activate
D=../shared/data/imagewoof2-320
PAIR="beagle English_foxhound"
for need in runs/s5-all8/fold-{0,1,2}/best.pt runs/s5-all8-hard/fold-{0,1,2}/best.pt runs/s5-head-hard/cv.json; do
  [ -f $need ] || { echo "$need is missing: run runs/s15-ban.sh, then runs/s17-head-epochs.sh (they rebuild the backbones and the baseline)"; exit 1; }
done
resume() { [ -e "$1" ] && echo --resume || true; }
declare -A SETTING=([T2]="train.distill_temperature=2" [T8]="train.distill_temperature=8" [w09]="train.distill_weight=0.9" [ban]="")
declare -A TEACHER=([T2]=runs/s5-all8 [T8]=runs/s5-all8 [w09]=runs/s5-all8 [ban]=runs/s5-head-hard)
head_args() {  # candidate: the recipe's 224 px distilled head on the narrowed backbone folds, one thing changed
  echo --data $D --config edge --breeds $PAIR --folds 3 --set train.epochs=20 train.lr=0.0005 train.seed=0 \
    data.split_seed=0 model.input_size=224 ${SETTING[$1]} --init runs/s5-all8-hard --teacher ${TEACHER[$1]} \
    --exclude tests/sample --threads 1 --no-progress --seal-test
}
out_dir() { echo runs/s18-$1-hard; }
fold_head() {  # candidate, fold
  local out=$(out_dir $1) i=$2
  [ -f $out/fold-$i/summary.json ] || edgehound train $(head_args $1) --fold $i --out $out/fold-$i \
    $(resume $out/fold-$i/last.pt) > $out-fold-$i.log 2>&1
}
(fold_head ban 0; fold_head ban 2; fold_head T2 1; fold_head T8 0; fold_head w09 0; fold_head w09 2) > runs/s18-chain-a.log 2>&1 &
(fold_head ban 1; fold_head T2 0; fold_head T2 2; fold_head T8 1; fold_head T8 2; fold_head w09 1) > runs/s18-chain-b.log 2>&1 &
wait
for name in ban T2 T8 w09; do
  out=$(out_dir $name)
  [ -f $out/cv.json ] || edgehound train $(head_args $name) --out $out --resume > $out.log 2>&1
  echo "== $name (${SETTING[$name]:-teacher ${TEACHER[$name]}}) against the recipe (temperature 4, weight 0.7, teacher runs/s5-all8)"
  edgehound compare $out/cv.json runs/s5-head-hard/cv.json  # the rule's comparison
done
echo all done
