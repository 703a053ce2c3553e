#!/bin/bash
# stop 58: the distillation's temperature and weight, cross-validated, default pair (rule in runs/RULES.txt, 02:32);
# rerun to resume. Each candidate is runs/s5-cv.sh's 224 px recipe head with one setting changed; the baseline is the
# recipe's own fold heads (runs/s5-head-default), which this checkout holds from runs/s15-ban.sh, as it does their
# start, the narrowed fold backbones (runs/s5-all8-default). The candidates' teacher is that narrowed file, the
# recipe's the eight-breed one: the trainer uses its pair's columns, the same logits (RULES.txt). Fold by fold
# (--fold I) on two chains of one thread each; the last step joins each candidate's folds into its cv.json
# (finished folds are only checked).
set -e
source .venv/bin/activate
D=../shared/data/imagewoof2-320
PAIR="golden_retriever Samoyed"
for need in runs/s5-all8-default/fold-{0,1,2}/best.pt runs/s5-oof-default-224.json; do
  [ -f $need ] || { echo "$need is missing: run runs/s15-ban.sh first (it rebuilds the backbones and the baseline)"; exit 1; }
done
resume() { [ -e "$1" ] && echo --resume || true; }
declare -A SETTING=([T2]=train.distill_temperature=2 [T8]=train.distill_temperature=8 [w09]=train.distill_weight=0.9)
head_args() {  # candidate: the recipe's 224 px distilled head on the narrowed backbone folds, one setting changed
  echo --data $D --config edge --breeds $PAIR --folds 3 --set train.epochs=20 train.lr=0.0005 train.seed=0 \
    data.split_seed=0 model.input_size=224 ${SETTING[$1]} --init runs/s5-all8-default --teacher runs/s5-all8-default \
    --exclude tests/sample --threads 1 --no-progress --seal-test
}
fold_head() {  # candidate, fold
  local out=runs/s16-kd-$1-default i=$2
  [ -f $out/fold-$i/summary.json ] || edgehound train $(head_args $1) --fold $i --out $out/fold-$i \
    $(resume $out/fold-$i/last.pt) > $out-fold-$i.log 2>&1
}
(fold_head T2 0; fold_head T2 2; fold_head T8 1; fold_head w09 0; fold_head w09 2) > runs/s16-chain-a.log 2>&1 &
(fold_head T2 1; fold_head T8 0; fold_head T8 2; fold_head w09 1) > runs/s16-chain-b.log 2>&1 &
wait
for name in T2 T8 w09; do
  out=runs/s16-kd-$name-default json=runs/s16-oof-kd-$name-default.json
  [ -f $out/cv.json ] || edgehound train $(head_args $name) --out $out --resume > $out.log 2>&1
  [ -f $json ] || edgehound evaluate $out --data $D --split val --json $json --no-progress > ${json%.json}.log 2>&1
  echo "== $name (${SETTING[$name]}) against the recipe (temperature 4, weight 0.7)"
  edgehound compare $json runs/s5-oof-default-224.json  # the rule's comparison
done
# study (added after the run): the out-of-fold photos every head gets wrong, however distilled (with stop 57's
# born-again head), and how many of those its teacher, the narrowed backbones, gets wrong too (both from runs/s15-ban.sh)
[ -f runs/s15-oof-ban-default.json ] && [ -f runs/s15-oof-narrowed-default.json ] && python - \
  runs/s5-oof-default-224.json runs/s16-oof-kd-{T2,T8,w09}-default.json runs/s15-oof-{ban,narrowed}-default.json <<'PY'
import json, sys
wrong = [{p["photo"] for p in json.load(open(f))["photos"] if p["true"] != p["pred"]} for f in sys.argv[1:]]
heads, teacher = wrong[:-1], wrong[-1]
every, some = set.intersection(*heads), set.union(*heads)
print(f"wrong by every one of {len(heads)} heads: {len(every)} photos (each head: {', '.join(str(len(w)) for w in heads)}; "
      f"by any: {len(some)}); of those, the teacher wrong too: {len(every & teacher)} (the teacher: {len(teacher)} in all)")
PY
echo all done
