#!/bin/bash
# stop 61: the head's learning rate again with seed 1, cross-validated (a replication; rule in runs/RULES.txt, stop
# 61); rerun to resume. runs/s20-head-lr.sh's candidate (lr 0.002) with train.seed=1, compared with the seed-1 recipe
# heads of runs/s21-head-seed.sh; then each pair's two seeds' discordant photos are summed into one exact McNemar test.
# One chain of one thread: the hard pair, then the default pair.
set -e
source .venv/bin/activate
D=../shared/data/imagewoof2-320
source runs/recipe-head.sh
lr_head_seed1() {  # pair name, breeds
  local name=$1; shift
  for need in runs/s5-all8/fold-{0,1,2}/best.pt runs/s5-all8-$name/fold-{0,1,2}/best.pt runs/s5-head-$name/cv.json \
    runs/s20-lr2e3-$name/cv.json; do
    [ -f $need ] || { echo "$need is missing: run runs/s15-ban.sh, runs/s17-head-epochs.sh, then runs/s20-head-lr.sh"; exit 1; }
  done
  local out=runs/s22-lr2e3-seed1-$name
  recipe_head $out $name "train.lr=0.002 train.seed=1" "$@"
  [ -f runs/s21-seed1-$name/cv.json ] || { echo "runs/s21-seed1-$name/cv.json is missing: run runs/s21-head-seed.sh"; exit 1; }
  echo "== $name pair, seed 1: head lr 0.002 against the recipe's 0.0005"
  edgehound compare $out/cv.json runs/s21-seed1-$name/cv.json
  echo "== $name pair, both seeds: the discordant photos summed"
  python - runs/s20-lr2e3-$name/cv.json runs/s5-head-$name/cv.json $out/cv.json runs/s21-seed1-$name/cv.json <<'PY'
import json, sys
from edgehound.runtime.metrics import format_comparison, paired_comparison

def both_seeds(seed0, seed1):  # one report of the two seeds' answers, each photo once per seed
    return {"photos": [{**p, "photo": f"seed {seed}/{p['photo']}"}
                       for seed, path in enumerate((seed0, seed1)) for p in json.load(open(path))["photos"]]}

candidate, recipe = both_seeds(sys.argv[1], sys.argv[3]), both_seeds(sys.argv[2], sys.argv[4])
print(format_comparison(paired_comparison(candidate, recipe), "lr 0.002", "the recipe"))
PY
}
lr_head_seed1 hard beagle English_foxhound
lr_head_seed1 default golden_retriever Samoyed
echo all done
