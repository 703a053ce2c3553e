#!/usr/bin/env bash
# An emulated Raspberry Pi: an arm64 Debian bookworm root (Raspberry Pi OS 12's base: Python 3.11)
# run through qemu-user, where the runtime is installed from aarch64 wheels as the README tells a
# Pi user, then `classify`, `evaluate` and `camera --headless` run on tests/sample with the
# shipped model's tflite-int8, onnx and tvm-aarch64 artifacts. tests/arm/compare.py checks the
# labels and logits against the same commands on this host. Timings here are emulated: never
# device figures.
#
#   make test-arm                      (needs root: binfmt_misc, chroot, apt)
#   EDGEHOUND_ARM_ROOT=DIR             where the arm64 root is cached (default ~/.cache/edgehound/arm64-bookworm)
#   EDGEHOUND_ARM_OUT=DIR              where the results go (default runs/arm)
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$(pwd)
root=${EDGEHOUND_ARM_ROOT:-$HOME/.cache/edgehound/arm64-bookworm}
out=${EDGEHOUND_ARM_OUT:-runs/arm}
model=runtime/models/edge  # the default model, as the README tells a Pi user
artifacts=(tflite-int8 onnx tvm-aarch64)
python=${PYTHON:-.venv/bin/python}
mirror=${EDGEHOUND_DEBIAN_MIRROR:-http://deb.debian.org/debian}
say() { echo "[emulated-pi $(date +%H:%M:%S)] $*"; }

[ "$(id -u)" = 0 ] || { echo "emulated_pi.sh needs root (binfmt_misc, chroot); run it with sudo" >&2; exit 2; }
[ -x "$python" ] || { echo "$python missing: run 'make setup' first (the x86 reference run uses it)" >&2; exit 2; }

# 1. qemu-user and mmdebstrap from Debian
need=()
[ -x /usr/libexec/qemu-binfmt/aarch64-binfmt-P ] || need+=(qemu-user-static)
command -v mmdebstrap >/dev/null || need+=(mmdebstrap)
if [ ${#need[@]} -gt 0 ]; then
  say "installing ${need[*]}"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

# 2. let the kernel hand aarch64 ELF files to qemu (F: the interpreter is opened now, so it works in the chroot)
binfmt=/proc/sys/fs/binfmt_misc
[ -e $binfmt/register ] || mount -t binfmt_misc binfmt_misc $binfmt
if [ ! -e $binfmt/qemu-aarch64 ]; then
  say "registering qemu-aarch64 with binfmt_misc"
  grep -v '^#' /usr/lib/binfmt.d/qemu-aarch64.conf > $binfmt/register
fi

# 3. the arm64 root, built once and cached; built beside its final place and renamed, so a killed
#    build never leaves a half root that looks finished
if [ ! -e "$root/.edgehound-root" ]; then
  say "building the arm64 Debian root in $root (about 5 minutes)"
  rm -rf "$root.partial"; mkdir -p "$(dirname "$root")"
  mmdebstrap --quiet --arch=arm64 --variant=apt \
    --include=python3,python3-venv,python3-pip,ca-certificates,libgomp1 \
    bookworm "$root.partial" "$mirror"
  touch "$root.partial/.edgehound-root"
  rm -rf "$root"; mv "$root.partial" "$root"
fi
chroot "$root" /usr/bin/python3 -c 'import platform, sys; print("emulated:", platform.machine(), sys.version.split()[0])'

# 4. this host's CA bundle inside the root (a proxy's certificate, where there is one), then the runtime
#    as a Pi user installs it: a copy of the tracked files, `pip install ".[runtime-...]"` in a venv
#    (kept between runs), from PyPI's aarch64 wheels
cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
rm -f "$root/etc/pip.conf"
rm -rf "$root/src/edgehound"; mkdir -p "$root/src/edgehound"
git ls-files -z | tar --null -T - -cf - | tar -xf - -C "$root/src/edgehound"
# No /proc or /sys inside: they would describe this x86 host, and onnxruntime's ARM CPU probe
# crashes on an x86 /proc/cpuinfo under qemu (without them it only warns that it found none).
in_root() { chroot "$root" /usr/bin/env -i HOME=/root PATH=/opt/pi/bin:/usr/bin:/bin LANG=C.UTF-8 \
  PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_CERT=/etc/ssl/certs/ca-certificates.crt PIP_DEFAULT_TIMEOUT=180 "$@"; }
mkdir -p "$out"
say "installing edgehound[runtime-tflite,runtime-onnx,runtime-tvm] from aarch64 wheels"
t0=$(date +%s)
[ -x "$root/opt/pi/bin/python" ] || in_root python3 -m venv /opt/pi
in_root sh -c 'cd /src && pip install --quiet --only-binary=:all: "./edgehound[runtime-tflite,runtime-onnx,runtime-tvm]"' \
  2>&1 | tee "$out/install.log"
in_root pip list --format=freeze > "$out/pip-freeze.txt"
say "installed in $(( $(date +%s) - t0 )) s"

# 5. the same commands here (TVM: the x86 library) and on the emulated Pi (the aarch64 one); the Pi
#    also runs the model on this host's input tensors, so the model is compared apart from OpenCV
say "running classify, evaluate and camera on this host"
rm -rf "$out/x86" "$out/arm" "$root/src/out"
PATH="$repo/.venv/bin:$PATH" tests/arm/commands.sh $model "$out/x86" tflite-int8 onnx tvm-x86
"$python" tests/arm/model_parity.py $model "$out/x86" tflite-int8 onnx
"$repo/.venv-tvm/bin/python" tests/arm/model_parity.py $model "$out/x86" tvm-x86  # TVM's environment
say "running classify, evaluate and camera on the emulated Pi"
t0=$(date +%s)
mkdir -p "$root/src/out"
cp "$out/x86/inputs.npy" "$root/src/out/x86-inputs.npy"
in_root sh -c "cd /src/edgehound && tests/arm/commands.sh $model /src/out ${artifacts[*]} &&
  python tests/arm/model_parity.py $model /src/out ${artifacts[*]} --inputs /src/out/x86-inputs.npy"
cp -r "$root/src/out" "$out/arm"
say "emulated Pi: $(( $(date +%s) - t0 )) s"
"$python" tests/arm/compare.py "$out" $model
