#!/bin/bash
# stop 52: a second 120-epoch eight-breed backbone (seed 4) and its 224 px hard-pair head, joined with edge-hard
# (rule in runs/RULES.txt, written before the backbone started); rerun to resume (a session ends mid-run).
# The head runs sealed (no test figure); the backbone's log holds eight-way test figures, which choose nothing.
set -e
source .venv/bin/activate
D=../shared/data/imagewoof2-320
B=runs/edge-all8-e120-s4
r() { [ -e "$1/last.pt" ] && echo --resume; true; }
[ -f $B/summary.json ] || edgehound train --data $D --config edge --breeds all --set train.epochs=120 train.seed=4 \
  data.split_seed=0 --exclude tests/sample --out $B --threads 2 --no-progress $(r $B) >> $B.log 2>&1
[ -f runs/s8-hard.pt ] || edgehound narrow $B/best.pt --breeds beagle English_foxhound --out runs/s8-hard.pt
[ -f runs/s8-kd224-hard/summary.json ] || edgehound train --data $D --config edge --breeds beagle English_foxhound \
  --set train.epochs=20 train.lr=0.0005 train.seed=0 data.split_seed=0 model.input_size=224 --init runs/s8-hard.pt \
  --teacher $B/best.pt --exclude tests/sample --out runs/s8-kd224-hard --threads 2 --no-progress --seal-test \
  $(r runs/s8-kd224-hard) >> runs/s8-kd224-hard.log 2>&1
# the two backbones' hard heads as one model (2 x 61 MMACs): edge-hard's checkpoint and the new head
[ -f runs/s8-hard2.pt ] || edgehound ensemble runtime/models/edge-hard/best.pt runs/s8-kd224-hard/best.pt \
  --out runs/s8-hard2.pt
edgehound evaluate runs/s8-hard2.pt --data $D --split val --no-progress --against runtime/models/edge-hard/best.pt \
  --json runs/s8-hard2-val.json > runs/s8-hard2-val.log 2>&1
tail -n 4 runs/s8-hard2-val.log
echo all done
