#!/bin/sh
# classify, evaluate and camera --headless on tests/sample with each artifact named, outputs in OUT.
# The emulated Pi and the x86 reference run this same script (tests/arm/emulated_pi.sh).
#   tests/arm/commands.sh MODEL OUT ARTIFACT...
set -eu
model=$1; out=$2; shift 2
mkdir -p "$out"
few=$(for d in tests/sample/n02099601 tests/sample/n02111889; do ls -d "$d"/* | sort | head -3; done)
for a in "$@"; do
  t=$(date +%s)
  # classify a few photos: evaluate answers every one through the same Classifier (qemu is slow)
  edgehound classify $model $few --artifact "$a" --json > "$out/classify-$a.jsonl" 2> "$out/classify-$a.err"
  edgehound evaluate $model --data tests/sample --artifact "$a" --no-progress --json "$out/evaluate-$a.json" \
    > "$out/evaluate-$a.txt"
  edgehound camera $model --artifact "$a" --source tests/sample/n02099601 --headless --smooth 1 --max-frames 12 \
    > "$out/camera-$a.jsonl" 2> "$out/camera-$a.err"
  echo "$a $(( $(date +%s) - t ))" >> "$out/seconds.txt"
  echo "$a: $(tail -1 "$out/classify-$a.err"); $(head -1 "$out/evaluate-$a.txt") ($(( $(date +%s) - t )) s)"
done
