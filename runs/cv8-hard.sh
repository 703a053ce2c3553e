#!/bin/bash
# stop 47: the narrowed recipe out of fold against 224 px distilled heads, both pairs (rule in runs/RULES.txt); rerun to resume
set -e
source .venv/bin/activate
D=../shared/data/imagewoof2-320
for pair in "golden_retriever Samoyed:default" "beagle English_foxhound:hard"; do
  breeds=${pair%:*}; name=${pair#*:}
  [ -f runs/cv8-narrow-$name.json ] || edgehound evaluate runs/cv8-all8 --data $D --split val --breeds $breeds \
    --json runs/cv8-narrow-$name.json --no-progress > runs/cv8-narrow-$name.log 2>&1
done
edgehound compare runs/cv8-narrow-default.json runs/cv8-head224/cv.json
for i in 0 1 2; do
  [ -f runs/cv8-all8-hard/fold-$i/best.pt ] || edgehound narrow runs/cv8-all8/fold-$i/best.pt --breeds beagle English_foxhound \
    --out runs/cv8-all8-hard/fold-$i/best.pt
done
[ -f runs/cv8-hard224/cv.json ] || edgehound train --data $D --config edge --breeds beagle English_foxhound --folds 3 \
  --set train.epochs=20 train.lr=0.0005 train.seed=0 data.split_seed=0 model.input_size=224 --init runs/cv8-all8-hard \
  --teacher runs/cv8-all8 --exclude tests/sample --out runs/cv8-hard224 --threads 1 --no-progress --seal-test \
  $([ -e runs/cv8-hard224 ] && echo --resume) > runs/cv8-hard224.log 2>&1
edgehound compare runs/cv8-hard224/cv.json runs/cv8-narrow-hard.json
echo all done
