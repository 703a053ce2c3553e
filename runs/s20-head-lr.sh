#!/bin/bash
# stop 61: the head's learning rate, cross-validated, both pairs (rule in runs/RULES.txt, stop 61); rerun to resume.
# Each candidate is runs/s5-cv.sh's 224 px recipe head with train.lr=0.002 instead of 0.0005; the baselines are the
# recipe's own fold heads (runs/s5-head-default, runs/s5-head-hard). One chain of one thread per pair, fold by fold;
# then each run's folds are joined into its cv.json and compared.
set -e
source .venv/bin/activate
D=../shared/data/imagewoof2-320
for need in runs/s5-all8/fold-{0,1,2}/best.pt runs/s5-all8-{default,hard}/fold-{0,1,2}/best.pt \
  runs/s5-head-{default,hard}/cv.json; do
  [ -f $need ] || { echo "$need is missing: run runs/s15-ban.sh, then runs/s17-head-epochs.sh (they rebuild the backbones and the baselines)"; exit 1; }
done
source runs/recipe-head.sh
lr_head() {  # pair name, breeds
  local name=$1; shift
  recipe_head runs/s20-lr2e3-$name $name "train.lr=0.002 train.seed=0" "$@"
}
lr_head default golden_retriever Samoyed > runs/s20-chain-a.log 2>&1 &
lr_head hard beagle English_foxhound > runs/s20-chain-b.log 2>&1 &
wait
for name in default hard; do
  echo "== $name pair: head lr 0.002 against the recipe's 0.0005"
  edgehound compare runs/s20-lr2e3-$name/cv.json runs/s5-head-$name/cv.json  # the rule's comparison
done
echo all done
