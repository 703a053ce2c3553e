#!/bin/bash
# stop 49: the int8 calibration ties of stop 48, broken by fidelity on validation (rule in runs/RULES.txt).
# Exports score tests/sample (--eval-data: photos excluded from the split), so none prints a test figure.
# Usage: bash runs/s4-calib.sh MODEL_FOLDER PREFIX "TARGETS" "COUNTS"
source .venv/bin/activate
D=../shared/data/imagewoof2-320
M=$1 P=$2
for n in $4; do
  [ -f $P-$n/manifest.json ] || edgehound export $M/best.pt --out $P-$n --targets $3 --calib-photos $n \
    --eval-data tests/sample --no-progress > $P-$n.log 2>&1
  for a in $3; do
    edgehound evaluate $P-$n --artifact $a --data $D --split val --no-progress --json $P-$n-$a-val.json > /dev/null 2>&1
    python - $P-$n $a $n <<'PY'
import json, sys
folder, name, n = sys.argv[1:]
val = json.load(open(f"{folder}-{name}-val.json"))
entry = next(e for e in json.load(open(f"{folder}/manifest.json"))["artifacts"] if e["name"] == name)
f = entry["fidelity"]
print(f"{name} {n}: val {round(val['accuracy'] * val['n'])} of {val['n']} right; {f['answers_changed']} answers "
      f"changed, margin error {f['mean_abs_margin_error']:.4f}; sha256 {entry['sha256'][:12]}")
PY
  done
done
