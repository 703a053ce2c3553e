#!/bin/bash
# stop 60: the head's crop range, cross-validated, hard pair (rule in runs/RULES.txt, 11:00); rerun to resume. The
# candidate is runs/s5-cv.sh's 224 px recipe head with data.crop_scale=[0.08,1.0] instead of the edge config's
# [0.25, 1.0]; the baseline is the recipe's own hard-pair fold heads (runs/s5-head-hard). One chain of one thread
# (it ran beside a CI check), fold by fold; then its folds are joined into cv.json and compared.
set -e
source .venv/bin/activate
D=../shared/data/imagewoof2-320
for need in runs/s5-all8/fold-{0,1,2}/best.pt runs/s5-all8-hard/fold-{0,1,2}/best.pt runs/s5-head-hard/cv.json; do
  [ -f $need ] || { echo "$need is missing: run runs/s15-ban.sh, then runs/s17-head-epochs.sh (they rebuild the backbones and the baseline)"; exit 1; }
done
resume() { [ -e "$1" ] && echo --resume || true; }
OUT=runs/s19-crop08-hard
ARGS="--data $D --config edge --breeds beagle English_foxhound --folds 3 --set train.epochs=20 train.lr=0.0005
  train.seed=0 data.split_seed=0 model.input_size=224 data.crop_scale=[0.08,1.0] --init runs/s5-all8-hard
  --teacher runs/s5-all8 --exclude tests/sample --threads 1 --no-progress --seal-test"
for i in 0 1 2; do
  [ -f $OUT/fold-$i/summary.json ] || edgehound train $ARGS --fold $i --out $OUT/fold-$i $(resume $OUT/fold-$i/last.pt) \
    > $OUT-fold-$i.log 2>&1
done
[ -f $OUT/cv.json ] || edgehound train $ARGS --out $OUT --resume > $OUT.log 2>&1
echo "== crops of 8 to 100% of the area against the recipe's 25 to 100%"
edgehound compare $OUT/cv.json runs/s5-head-hard/cv.json  # the rule's comparison
echo all done
