#!/bin/bash
# stop 54: test-time flip out of fold (rule in runs/RULES.txt, 13:00). Reruns skip finished scores.
set -e
source .venv/bin/activate
D=../shared/data/imagewoof2-320
score() {  # folder, json name, extra flags
  [ -f runs/$2.json ] || edgehound evaluate runs/$1 --data $D --split val --json runs/$2.json --no-progress ${@:3} \
    > runs/$2.log 2>&1
}
score s7-ens2-hard s9-oof-ens2-hard-flip --flip
score s5-head-default s9-oof-head-default-flip --flip
edgehound compare runs/s9-oof-ens2-hard-flip.json runs/s7-oof-ens2-hard.json
edgehound compare runs/s9-oof-head-default-flip.json runs/s5-oof-default-224.json
