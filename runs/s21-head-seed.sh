#!/bin/bash
# stop 61: the recipe's own seed noise, cross-validated, both pairs (a study; rule in runs/RULES.txt, stop 61); rerun
# to resume. runs/s5-cv.sh's 224 px recipe head with train.seed=1 instead of 0, compared photo by photo with the
# seed-0 recipe heads (runs/s5-head-default, runs/s5-head-hard). One chain of one thread (beside a CI check): the hard
# pair, then the default pair.
set -e
source .venv/bin/activate
D=../shared/data/imagewoof2-320
for need in runs/s5-all8/fold-{0,1,2}/best.pt runs/s5-all8-{default,hard}/fold-{0,1,2}/best.pt \
  runs/s5-head-{default,hard}/cv.json; do
  [ -f $need ] || { echo "$need is missing: run runs/s15-ban.sh, then runs/s17-head-epochs.sh (they rebuild the backbones and the baselines)"; exit 1; }
done
source runs/recipe-head.sh
seed_head() {  # pair name, breeds
  local name=$1; shift
  local out=runs/s21-seed1-$name
  recipe_head $out $name "train.lr=0.0005 train.seed=1" "$@"
  echo "== $name pair: the recipe with seed 1 against seed 0"
  edgehound compare $out/cv.json runs/s5-head-$name/cv.json
}
seed_head hard beagle English_foxhound
seed_head default golden_retriever Samoyed
echo all done
