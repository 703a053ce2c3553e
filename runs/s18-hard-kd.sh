#!/bin/bash
# stop 60: the distillation's temperature and weight, and born-again distillation, cross-validated, hard pair (rule
# in runs/RULES.txt, 09:44); rerun to resume. Each candidate is runs/s5-cv.sh's 224 px recipe head with one thing
# changed; the baseline is the recipe's own hard-pair fold heads (runs/s5-head-hard, retrained by
# runs/s17-head-epochs.sh). Fold by fold (--fold I) on two chains of one thread each; the last step joins each
# candidate's folds into its cv.json (the out-of-fold report), which the comparisons read.
set -e
source .venv/bin/activate
D=../shared/data/imagewoof2-320
PAIR="beagle English_foxhound"
for need in runs/s5-all8/fold-{0,1,2}/best.pt runs/s5-all8-hard/fold-{0,1,2}/best.pt runs/s5-head-hard/cv.json; do
  [ -f $need ] || { echo "$need is missing: run runs/s15-ban.sh, then runs/s17-head-epochs.sh (they rebuild the backbones and the baseline)"; exit 1; }
done
resume() { [ -e "$1" ] && echo --resume || true; }
declare -A SETTING=([T2]="train.distill_temperature=2" [T8]="train.distill_temperature=8" [w09]="train.distill_weight=0.9" [ban]="")
declare -A TEACHER=([T2]=runs/s5-all8 [T8]=runs/s5-all8 [w09]=runs/s5-all8 [ban]=runs/s5-head-hard)
head_args() {  # candidate: the recipe's 224 px distilled head on the narrowed backbone folds, one thing changed
  echo --data $D --config edge --breeds $PAIR --folds 3 --set train.epochs=20 train.lr=0.0005 train.seed=0 \
    data.split_seed=0 model.input_size=224 ${SETTING[$1]} --init runs/s5-all8-hard --teacher ${TEACHER[$1]} \
    --exclude tests/sample --threads 1 --no-progress --seal-test
}
out_dir() { echo runs/s18-$1-hard; }
fold_head() {  # candidate, fold
  local out=$(out_dir $1) i=$2
  [ -f $out/fold-$i/summary.json ] || edgehound train $(head_args $1) --fold $i --out $out/fold-$i \
    $(resume $out/fold-$i/last.pt) > $out-fold-$i.log 2>&1
}
(fold_head ban 0; fold_head ban 2; fold_head T2 1; fold_head T8 0; fold_head w09 0; fold_head w09 2) > runs/s18-chain-a.log 2>&1 &
(fold_head ban 1; fold_head T2 0; fold_head T2 2; fold_head T8 1; fold_head T8 2; fold_head w09 1) > runs/s18-chain-b.log 2>&1 &
wait
for name in ban T2 T8 w09; do
  out=$(out_dir $name)
  [ -f $out/cv.json ] || edgehound train $(head_args $name) --out $out --resume > $out.log 2>&1
  echo "== $name (${SETTING[$name]:-teacher ${TEACHER[$name]}}) against the recipe (temperature 4, weight 0.7, teacher runs/s5-all8)"
  edgehound compare $out/cv.json runs/s5-head-hard/cv.json  # the rule's comparison
done
# study (added after the run, which ran these commands by hand): the teacher's own out-of-fold answers (the narrowed
# backbones); the photos every hard head gets wrong (the recipe, these four, stop 59's 40-epoch head) and how many of
# those the teacher gets wrong too; and how far any threshold on p(foxhound) could lift the balanced accuracy, chosen
# on the very photos it is scored on (an upper bound for calibration, not a model choice)
[ -f runs/s18-oof-narrowed-hard.json ] || edgehound evaluate runs/s5-all8 --breeds $PAIR --data $D --split val \
  --json runs/s18-oof-narrowed-hard.json --no-progress > runs/s18-oof-narrowed-hard.log 2>&1
[ -f runs/s17-head40-hard/cv.json ] && python - $D runs/s5-head-hard/cv.json runs/s18-{ban,T2,T8,w09}-hard/cv.json \
  runs/s17-head40-hard/cv.json runs/s18-oof-narrowed-hard.json <<'PY'
import json, sys
from sklearn.metrics import roc_auc_score, roc_curve
data, reports = sys.argv[1], [json.load(open(f)) for f in sys.argv[2:]]
wrong = [{p["photo"] for p in r["photos"] if p["true"] != p["pred"]} for r in reports]
heads, teacher = wrong[:-1], wrong[-1]
every, some = set.intersection(*heads), set.union(*heads)
true = {p["photo"]: p["true"] for p in reports[0]["photos"]}
foxhounds_wrong = sum(true[p] == "English foxhound" for p in every)
print(f"wrong by every one of {len(heads)} heads: {len(every)} photos, {foxhounds_wrong} of them foxhounds (each head: "
      f"{', '.join(str(len(w)) for w in heads)}; by any: {len(some)}); of those, the teacher wrong too: "
      f"{len(every & teacher)} (the teacher: {len(teacher)} in all)")
for name, report in (("the recipe's heads", reports[0]), ("the teacher", reports[-1])):
    is_fox = [p["true"] == "English foxhound" for p in report["photos"]]
    score = [p["p"]["English foxhound"] for p in report["photos"]]
    fpr, tpr, thresholds = roc_curve(is_fox, score, drop_intermediate=False)  # foxhound where score >= threshold
    balanced = (tpr + 1 - fpr) / 2
    print(f"{name}: ROC AUC {roc_auc_score(is_fox, score):.3f}; the best threshold on these photos, p(foxhound) >= "
          f"{thresholds[balanced.argmax()]:.3f}, gives a balanced accuracy of {balanced.max():.2%}")
# contact sheets to look at (24 photos each, drawn with seed 0): foxhounds every head gets wrong, and foxhounds no
# head gets wrong
import random
from PIL import Image
foxhounds = [p["photo"] for p in reports[0]["photos"] if p["true"] == "English foxhound"]
for name, photos in (("wrong", [p for p in foxhounds if p in every]), ("right", [p for p in foxhounds if p not in some])):
    random.seed(0)
    chosen, size = random.sample(sorted(photos), 24), 200
    sheet = Image.new("RGB", (6 * size, 4 * size), "white")
    for i, photo in enumerate(chosen):
        thumb = Image.open(f"{data}/train/{photo}").convert("RGB")
        thumb.thumbnail((size, size))
        sheet.paste(thumb, ((i % 6) * size, (i // 6) * size))
    sheet.save(f"runs/s18-foxhounds-{name}.png")
    print(f"runs/s18-foxhounds-{name}.png: 24 of {len(photos)}")
PY
echo all done
