#!/usr/bin/env bash
# The trainings that take hours on 2 CPU cores and minutes on one GPU, as one script for a lent GPU
# machine (PyTorch there, nothing installed, no ../shared: the photos travel as a pack).
#
#   bash train/gpu_plan.sh PACK RUNS [STEP...] 2>&1 | tee $OUT/gpu-plan.log
#   STEP: teacher, teachers, backbone, heads, wide, small, cv, cv-hard (default: the first six, in that order)
#
# PACK: `edgehound data pack ../shared/data/imagewoof2-320 --out .gpu/pack --exclude tests/sample`
# (160x160 JPEGs, the same names and so the same fixed test part). RUNS: where the run folders go.
# After each step the small files of every run (best.pt but the ResNet's 45 MB one, summary.json,
# metrics.jsonl) are packed into $OUT/gpu-runs.tar.gz, so a run cut short still brings back what
# finished; the ResNet's best.pt comes back in float16, in 15 MB parts beside it. A step whose run
# folder holds a finished run is skipped; a killed one resumes.
# QUICK=1: one epoch per run, to check the plan on the CPU on a small pack (--per-breed 30).
# Each run is compiled and augments its photos on the GPU (`--compile --augment-on device`): on the H200 the
# eager ResNet and edge model ran at the same photos/s, as steps bound by launching hundreds of small
# kernels are, and compiled steps must not then wait for worker processes. A run that fails so runs again
# eager, augmenting in workers (it resumes). EAGER=1: that way throughout (the default under QUICK=1).
# Measured on one H200: teacher 229 s, backbone 295 s, heads about 65 s each; a device call is at most
# 600 s, so give `teacher backbone` one call and the next steps another, at once, on the still-warm machine.
#
#   teacher   ResNet-18 style on all eight breeds, 250 epochs (11.2 M params, 925 MMACs)
#   teachers  two more of it (seeds 1 and 2, the same split): every later step distils from the mean
#             logits of the teachers finished by then (one ResNet-18 scored 95.24% on the default pair,
#             below its students: the teacher bounds them); the ensemble is scored against the first
#             teacher on each pair's validation and test photos ($OUT/teachers-PAIR-PART.json)
#   backbone  the edge model on all eight breeds, distilled from the teachers
#   heads     a pair head for each pair on the backbone (narrowed, then fine-tuned, distilled)
#   wide      the same two steps for the edge model 1.5x wide (66 MMACs, within the issue's 100)
#   small     100 photos per breed of the default pair: a backbone of the six other breeds, then
#             three seeds of a pair head on it, and three distilled from those three's ensemble
#             (nothing in this step sees more than 100 photos of either pair breed); the three
#             heads joined by `edgehound ensemble` and scored on the test part
#   cv        the shipped recipe cross-validated without a leak: an eight-breed backbone per fold of 3
#             (120 epochs, none trained on its fold's photos), then default-pair heads on them fold by fold
#             (`--init`/`--teacher` as cross-validation folders), plain and distilled from the fold's backbone
#             (the shipped recipe); every photo of the pool answered once ($OUT/cv-default-compare.txt:
#             `edgehound compare` of the two). At 160 px only: the pack's photos are 160 px, and a 224 px pack
#             of all eight breeds (about 100 MB) would not travel; 224 px heads are compared on the CPU
#   cv-hard   the same two heads for the hard pair, on the cv step's backbones
#             (both eager; estimated, not measured: about 4 minutes of backbones and 4 of heads on one H200, so
#             `cv cv-hard` fits one call; the first steps ran on an H200 before, so the next GPU runs these first)
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: gpu_plan.sh PACK RUNS [STEP...]" >&2; exit 2; }
pack=$1 runs=$2
shift 2
STEPS=${*:-teacher teachers backbone heads wide small}
for step in $STEPS; do  # all refused before anything is written or run, not after minutes of GPU time
  case $step in teacher|teachers|backbone|heads|wide|small|cv|cv-hard) ;; *) echo "unknown step $step (teacher, teachers, backbone, heads, wide, small, cv, cv-hard)" >&2; exit 2 ;; esac
done
[ -d "$pack" ] || { echo "$pack: no such folder (make it with edgehound data pack)" >&2; exit 2; }
mkdir -p "$runs" "${OUT:-$runs}"
PACK=$(cd "$pack" && pwd) RUNS=$(cd "$runs" && pwd) OUT=$(cd "${OUT:-$runs}" && pwd)
PY=${PYTHON:-python3}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"  # --exclude tests/sample is recorded as written: relative, as for the shipped models

# the repository root is the package: importable as `edgehound` without installing anything
pkg=$(mktemp -d)
trap 'rm -f "$pkg/edgehound" && rmdir "$pkg"' EXIT  # the link only: never what it points to
ln -s "$ROOT" "$pkg/edgehound"
export PYTHONPATH="$pkg${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1

epochs() { if [ -n "${QUICK:-}" ]; then echo 1; else echo "$1"; fi; }
GPU="train.batch_size=128"  # the issue's recipe on one GPU; lr, weight decay and schedule are the configs'
FAST=$([ "${EAGER:-$([ -n "${QUICK:-}" ] && echo 1 || echo 0)}" = 1 ] || echo --compile --augment-on device)
train() {  # train RUN ARGS...: skipped when RUN finished (a cross-validation: its cv.json), resumed when it was killed
  local run=$RUNS/$1; shift
  if [ -f "$run/summary.json" ] || [ -f "$run/cv.json" ]; then echo "== $run: done before"; return; fi
  echo "== $run"
  train_once "$run" $FAST "$@" && return
  [ -n "$FAST" ] || return 1
  echo "== $run: failed with $FAST; from here on eager, augmenting in workers"
  FAST=""
  train_once "$run" "$@"
}
train_once() {  # train_once RUN_FOLDER ARGS...
  local run=$1; shift
  $PY -m edgehound.cli train --data "$PACK" --out "$run" --exclude tests/sample --no-progress --device auto \
    $([ -e "$run" ] && echo --resume) "$@"
}
bring_back() {  # what fits the tool's way back (64 MiB): narrowed files are remade here by `edgehound narrow`
  (cd "$RUNS" && find . \( -name summary.json -o -name metrics.jsonl -o -name cv.json -o -name '*.pt' \) \
     ! -name last.pt ! -path './resnet-all8*/best.pt' ! -name '*-default.pt' ! -name '*-hard.pt' ! -name '*-half.pt' \
     ! -path './cv-all8-*' ! -path './cv-plain-*/fold-*/best.pt' ! -path './cv-kd-*/fold-*/best.pt' -print0 | tar --null -czf "$OUT/gpu-runs.tmp" -T -)
  mv "$OUT/gpu-runs.tmp" "$OUT/gpu-runs.tar.gz"  # a run cut off mid-write keeps the last whole archive
  # the teacher's weights in float16 (22 MB; it runs in bf16 anyway), in parts under 16 MiB a file:
  # `cat resnet-all8-half.pt.part* > teacher.pt` loads as any model file (loading casts to float32)
  if [ -f "$RUNS/resnet-all8/summary.json" ] && [ ! -f "$OUT/resnet-all8-half.pt.part00" ]; then
    $PY -c 'import sys, torch; c = torch.load(sys.argv[1], weights_only=True)
c["model"] = {k: v.half() if v.is_floating_point() else v for k, v in c["model"].items()}; torch.save(c, sys.argv[2])' \
      "$RUNS/resnet-all8/best.pt" "$RUNS/resnet-all8-half.pt"
    split -b 15M -d "$RUNS/resnet-all8-half.pt" "$OUT/resnet-all8-half.pt.part"
  fi
}
eh() { $PY -m edgehound.cli "$@"; }
teachers() {  # the finished teachers' files, first the seed-0 one (the runs distil from all of them)
  local run
  for run in "$RUNS"/resnet-all8 "$RUNS"/resnet-all8-s{1,2}; do
    [ -f "$run/summary.json" ] && echo "$run/best.pt"
  done
  return 0
}
pair_heads() {  # pair_heads BACKBONE [SETTING...]: narrow its run to each pair, then a distilled fine-tune of each
  local backbone=$1 pair a b name; shift
  local settings=("$@")
  for pair in "golden_retriever Samoyed default" "beagle English_foxhound hard"; do
    read -r a b name <<< "$pair"
    eh narrow "$RUNS/$backbone/best.pt" --breeds "$a" "$b" --out "$RUNS/$backbone-$name.pt"
    train "${backbone/all8/head}-$name" --config edge --breeds "$a" "$b" --init "$RUNS/$backbone-$name.pt" \
      --teacher $(teachers) --set train.epochs="$(epochs 60)" train.lr=0.0005 $GPU "${settings[@]}"
  done
}
cv_heads() {  # cv_heads BREED BREED NAME: narrow each cv backbone fold to the pair, then a plain and a distilled head
  local a=$1 b=$2 name=$3 fold
  for fold in 0 1 2; do
    eh narrow "$RUNS/cv-all8/fold-$fold/best.pt" --breeds "$a" "$b" --out "$RUNS/cv-all8-$name/fold-$fold/best.pt"
  done
  local head=(--config edge --breeds "$a" "$b" --folds 3 --init "$RUNS/cv-all8-$name" --set train.epochs="$(epochs 20)"
              train.lr=0.0005 $GPU)
  FAST="" train "cv-plain-$name" "${head[@]}"
  FAST="" train "cv-kd-$name" "${head[@]}" --teacher "$RUNS/cv-all8"
  eh compare "$RUNS/cv-kd-$name/cv.json" "$RUNS/cv-plain-$name/cv.json" | tee "$OUT/cv-$name-compare.txt"
}
WIDE=(model.stem_channels=24 "model.conv_channels=[24,48,96,144,240]")
OTHER6=(Shih-Tzu Border_terrier Australian_terrier Old_English_sheepdog beagle English_foxhound)

for step in $STEPS; do
  start=$SECONDS
  case $step in
    teacher)
      train resnet-all8 --config resnet18 --breeds all --set train.epochs="$(epochs 250)" $GPU ;;
    teachers)
      for seed in 1 2; do
        train resnet-all8-s$seed --config resnet18 --breeds all --set train.epochs="$(epochs 250)" $GPU \
          train.seed=$seed data.split_seed=0
      done
      # the three teachers' ensemble against the first alone, on the pack's photos of each pair (only the
      # first teacher's weights come back); best effort: a failure here stops no training
      for pair in "golden_retriever Samoyed default" "beagle English_foxhound hard"; do
        read -r a b name <<< "$pair"
        for part in val test; do
          eh evaluate "$RUNS/resnet-all8/best.pt" --ensemble "$RUNS"/resnet-all8-s{1,2}/best.pt --data "$PACK" \
            --split $part --breeds "$a" "$b" --against "$RUNS/resnet-all8/best.pt" --no-progress \
            --json "$OUT/teachers-$name-$part.json" || echo "== the teachers' ensemble was not scored on $name $part"
        done
      done ;;
    backbone)
      train edge-all8 --config edge --breeds all --set train.epochs="$(epochs 300)" $GPU \
        --teacher $(teachers) ;;
    heads)
      pair_heads edge-all8 ;;
    wide)
      train wide-all8 --config edge --breeds all --set train.epochs="$(epochs 300)" $GPU "${WIDE[@]}" \
        --teacher $(teachers)
      pair_heads wide-all8 "${WIDE[@]}" ;;
    small)
      # the default pair is not in the backbone: only the pair head sees golden retrievers and
      # Samoyeds, and only 100 of each
      train edge-other6 --config edge --breeds "${OTHER6[@]}" --set train.epochs="$(epochs 300)" $GPU
      small="data.per_class=100 data.split_seed=0 train.epochs=$(epochs 150) train.lr=0.0005 $GPU"
      for seed in 0 1 2; do
        train "small-s$seed" --config edge --init "$RUNS/edge-other6/best.pt" --set $small train.seed=$seed
      done
      for seed in 0 1 2; do  # distilled from the three heads' ensemble (trained on the same 180 photos)
        train "small-ens-s$seed" --config edge --init "$RUNS/edge-other6/best.pt" --set $small train.seed=$seed \
          --teacher "$RUNS"/small-s{0,1,2}/best.pt
      done
      # the three plain heads as one model (93 MMACs), scored on the pack's test part (best effort)
      eh ensemble "$RUNS"/small-s{0,1,2}/best.pt --out "$RUNS/small-ensemble.pt" &&
        eh evaluate "$RUNS/small-ensemble.pt" --data "$PACK" --split test --no-progress \
          --json "$OUT/small-ensemble-test.json" || echo "== the three heads' ensemble was not scored" ;;
    cv)  # eager throughout: the H200 ran the eager edge backbone at 6,320 photos/s, and compiling costs a
         # minute or two per run, which three short backbones and twelve head folds would pay again and again
      FAST="" train cv-all8 --config edge --breeds all --folds 3 --set train.epochs="$(epochs 120)" train.keep=last $GPU
      cv_heads golden_retriever Samoyed default ;;
    cv-hard)
      cv_heads beagle English_foxhound hard ;;
  esac
  bring_back
  echo "== step $step: $((SECONDS - start)) s"
done
