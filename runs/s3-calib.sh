#!/bin/bash
# stop 47: the int8 calibration count of the model that ships as edge, chosen on validation (rule in runs/RULES.txt).
# Export logs print test figures: kept in files, read after the choice.
source .venv/bin/activate
D=../shared/data/imagewoof2-320
M=${1:-runs/s3-kd224-default/best.pt}
P=${2:-runs/calib}  # output prefix: one per model
for n in 100 300 1000; do
  [ -f $P-$n/manifest.json ] || edgehound export $M --out $P-$n --targets onnx-int8 tflite-int8 \
    --calib-photos $n --no-progress > $P-$n.log 2>&1
  for a in onnx-int8 tflite-int8; do
    edgehound evaluate $P-$n --artifact $a --data $D --split val --no-progress --json $P-$n-$a-val.json > /dev/null 2>&1
    python -c "import json,sys; r=json.load(open(sys.argv[1])); print(sys.argv[2], sys.argv[3], r['n'], round(r['accuracy']*r['n']), 'right')" \
      $P-$n-$a-val.json $n $a
  done
done
