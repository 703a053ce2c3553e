# Sourced by stop 61's scripts (runs/s20-head-lr.sh, s21-head-seed.sh, s22-head-lr-seed1.sh): the one fold loop
# they share. recipe_head OUT PAIR "LR_AND_SEED" BREEDS...: runs/s5-cv.sh's 224 px recipe head (--init the narrowed
# fold backbones of PAIR, teacher the eight-breed fold backbones, 20 epochs, 3 folds, one thread) with the given
# train.lr and train.seed, fold by fold (each resumes), then its folds joined into OUT/cv.json. Needs $D.
resume() { [ -e "$1" ] && echo --resume || true; }
recipe_head() {
  local out=$1 name=$2 lr_and_seed=$3; shift 3
  local args="--data $D --config edge --breeds $* --folds 3 --set train.epochs=20 $lr_and_seed
    data.split_seed=0 model.input_size=224 --init runs/s5-all8-$name --teacher runs/s5-all8 --exclude tests/sample
    --threads 1 --no-progress --seal-test"
  for i in 0 1 2; do
    [ -f $out/fold-$i/summary.json ] || edgehound train $args --fold $i --out $out/fold-$i \
      $(resume $out/fold-$i/last.pt) > $out-fold-$i.log 2>&1
  done
  [ -f $out/cv.json ] || edgehound train $args --out $out --resume > $out.log 2>&1
}
