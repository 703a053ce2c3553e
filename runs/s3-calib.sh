#!/bin/bash
# stop 47: the int8 calibration count of the model that ships as edge, chosen on validation (rule in runs/RULES.txt).
# Export logs print test figures: kept in files, read after the choice.
source .venv/bin/activate
D=../shared/data/imagewoof2-320
M=${1:-runs/s3-kd224-default/best.pt}
for n in 100 300 1000; do
  [ -f runs/calib-$n/manifest.json ] || edgehound export $M --out runs/calib-$n --targets onnx-int8 tflite-int8 \
    --calib-photos $n --no-progress > runs/calib-$n.log 2>&1
  for a in onnx-int8 tflite-int8; do
    edgehound evaluate runs/calib-$n --artifact $a --data $D --split val --no-progress --json runs/calib-$n-$a-val.json > /dev/null 2>&1
    python -c "import json,sys; r=json.load(open(sys.argv[1])); print(sys.argv[2], sys.argv[3], r['n'], round(r['accuracy']*r['n']), 'right')" \
      runs/calib-$n-$a-val.json $n $a
  done
done
