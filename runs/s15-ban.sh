#!/bin/bash
# stop 57: born-again distillation, cross-validated (rule in runs/RULES.txt, 22:16); rerun to resume.
# First runs/s5-cv.sh's fold backbones and 224 px heads, retrained with its commands (this checkout held no runs);
# then the same heads again with --teacher the recipe's own fold heads instead of the fold backbones.
set -e
source .venv/bin/activate
D=../shared/data/imagewoof2-320
resume() { [ -e "$1" ] && echo --resume || true; }
distilled_head() {  # out folder, teacher folder, out-of-fold json, pair breeds: the recipe's 224 px head
  local out=$1 teacher=$2 oof=$3; shift 3
  [ -f $out/cv.json ] || edgehound train --data $D --config edge --breeds "$@" --folds 3 \
    --set train.epochs=20 train.lr=0.0005 train.seed=0 data.split_seed=0 model.input_size=224 \
    --init runs/s5-all8-$name --teacher $teacher --exclude tests/sample --out $out --threads 1 \
    --no-progress --seal-test $(resume $out) > $out.log 2>&1
  [ -f $oof ] || edgehound evaluate $out --data $D --split val --json $oof --no-progress > ${oof%.json}.log 2>&1
}
pair() {  # pair name, breeds (distilled_head reads name for its --init)
  local name=$1; shift
  for i in 0 1 2; do
    [ -f runs/s5-all8-$name/fold-$i/best.pt ] || edgehound narrow runs/s5-all8/fold-$i/best.pt --breeds "$@" \
      --out runs/s5-all8-$name/fold-$i/best.pt
  done
  distilled_head runs/s5-head-$name runs/s5-all8 runs/s5-oof-$name-224.json "$@"  # the recipe (runs/s5-cv.sh)
  distilled_head runs/s15-ban-$name runs/s5-head-$name runs/s15-oof-ban-$name.json "$@"  # the candidate: the recipe's head teaches its own successor
}
[ -f runs/s5-all8/cv.json ] || edgehound train --data $D --config edge --breeds all --folds 3 \
  --set train.epochs=40 train.seed=0 data.split_seed=0 --exclude tests/sample --out runs/s5-all8 --threads 2 \
  --no-progress --seal-test $(resume runs/s5-all8) > runs/s5-all8.log 2>&1
pair default golden_retriever Samoyed &
pair hard beagle English_foxhound &
wait
for name in default hard; do
  edgehound compare runs/s15-oof-ban-$name.json runs/s5-oof-$name-224.json  # the rule's comparison
done
echo all done
