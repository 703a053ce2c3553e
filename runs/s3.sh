#!/bin/bash
# stop 47: a fourth eight-breed backbone and the cross-validated 224 px distilled heads on it (rule in runs/RULES.txt);
# rerun to resume. The heads run sealed (no test figure); the backbone's log holds eight-way test figures.
set -e
source .venv/bin/activate
D=../shared/data/imagewoof2-320
B=runs/edge-all8-e120-s3
r() { [ -e "$1/last.pt" ] && echo --resume; true; }
[ -f $B/summary.json ] || edgehound train --data $D --config edge --breeds all --set train.epochs=120 train.seed=3 \
  data.split_seed=0 --exclude tests/sample --out $B --threads 2 --no-progress $(r $B) >> $B.log 2>&1
edgehound narrow $B/best.pt --breeds golden_retriever Samoyed --out runs/s3-pair.pt
edgehound narrow $B/best.pt --breeds beagle English_foxhound --out runs/s3-hard.pt
head() {  # NAME INIT BREEDS...
  local name=$1 init=$2; shift 2
  [ -f runs/$name/summary.json ] || edgehound train --data $D --config edge --breeds "$@" --set train.epochs=20 train.lr=0.0005 \
    train.seed=0 data.split_seed=0 model.input_size=224 --init $init --teacher $B/best.pt --exclude tests/sample \
    --out runs/$name --threads 1 --no-progress --seal-test $(r runs/$name) >> runs/$name.log 2>&1
}
head s3-kd224-default runs/s3-pair.pt golden_retriever Samoyed &
head s3-kd224-hard runs/s3-hard.pt beagle English_foxhound &
wait
edgehound evaluate runs/s3-kd224-default/best.pt --data $D --split val --no-progress \
  --against runtime/models/edge/best.pt --json runs/s3-kd224-default-val.json > runs/s3-kd224-default-val.log 2>&1
edgehound evaluate runs/s3-kd224-hard/best.pt --data $D --split val --no-progress \
  --against runtime/models/edge-hard/best.pt --json runs/s3-kd224-hard-val.json > runs/s3-kd224-hard-val.log 2>&1
echo all done
