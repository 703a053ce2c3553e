"""train/gpu_plan.sh, the script a lent GPU machine runs, checked end to end on the CPU (QUICK=1: one epoch a
run) on a pack of synthetic photos of the eight breeds it names: a break found here costs no GPU minutes."""

import os
import subprocess
import sys
import tarfile

import numpy as np
import pytest
import torch

from conftest import REPO, edgehound_cmd, write_jpeg

PLAN = REPO / "train" / "gpu_plan.sh"
BREEDS = {"n02086240": "Shih-Tzu", "n02088364": "beagle", "n02089973": "English foxhound",
          "n02093754": "Border terrier", "n02096294": "Australian terrier", "n02099601": "golden retriever",
          "n02105641": "Old English sheepdog", "n02111889": "Samoyed"}
STEPS = ["teacher", "teachers", "backbone", "heads", "wide", "small", "cv", "cv-hard"]
# every run the plan trains, by step; a cross-validation finishes with cv.json, a run with summary.json
RUNS = {"teacher": ["resnet-all8"], "teachers": ["resnet-all8-s1", "resnet-all8-s2"], "backbone": ["edge-all8"],
        "heads": ["edge-head-default", "edge-head-hard"], "wide": ["wide-all8", "wide-head-default", "wide-head-hard"],
        "small": ["edge-other6", *[f"small-s{s}" for s in range(3)], *[f"small-ens-s{s}" for s in range(3)]],
        "cv": ["cv-all8", "cv-plain-default", "cv-kd-default"], "cv-hard": ["cv-plain-hard", "cv-kd-hard"]}


def run_plan(pack, runs, out, *steps) -> subprocess.CompletedProcess:
    env = {**os.environ, "QUICK": "1", "OUT": str(out), "PYTHON": sys.executable}
    return subprocess.run(["bash", str(PLAN), str(pack), str(runs), *steps], capture_output=True, text=True, env=env,
                          timeout=900)


@pytest.fixture(scope="module")
def plan_run(tmp_path_factory):
    """The whole plan, every step, once for the module: (pack, runs, out, log)."""
    base = tmp_path_factory.mktemp("gpu-plan")
    photos = base / "photos"
    rng = np.random.default_rng(0)
    for k, wnid in enumerate(BREEDS):  # each breed its own tint, so the runs have something to learn
        for i in range(12):
            image = rng.integers(0, 100, (180, 240, 3), dtype=np.uint8)
            image[..., k % 3] += np.uint8(10 + 20 * k)  # at most 249: no wrap-around
            write_jpeg(photos / "train" / wnid / f"{wnid}_{i}.JPEG", image)
    pack = base / "pack"
    packed = subprocess.run([*edgehound_cmd(), "data", "pack", str(photos), "--out", str(pack), "--exclude",
                             str(REPO / "tests" / "sample"), "--no-progress"], capture_output=True, text=True)
    assert packed.returncode == 0, packed.stdout + packed.stderr
    runs, out = base / "runs", base / "out"
    result = run_plan(pack, runs, out, *STEPS)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return pack, runs, out, result.stdout


def test_every_step_finishes_its_runs(plan_run):
    _, runs, _, log = plan_run
    for step, names in RUNS.items():
        assert f"== step {step}:" in log
        for name in names:
            finished = runs / name / ("cv.json" if name.startswith("cv-") else "summary.json")
            assert finished.is_file(), f"{step}: {finished} missing"
    for fold in range(3):  # the cv backbones: one per fold, none trained on its fold's photos
        assert (runs / "cv-all8" / f"fold-{fold}" / "best.pt").is_file()


def test_what_comes_back_fits_and_is_complete(plan_run):
    """$OUT holds what the device tool brings back: the runs' small files, no training states, the teacher in parts."""
    _, runs, out, _ = plan_run
    with tarfile.open(out / "gpu-runs.tar.gz") as archive:
        names = set(archive.getnames())
    for name in ("edge-all8", "edge-head-default", "edge-head-hard", "small-s0", "small-ens-s2", "wide-head-hard"):
        assert f"./{name}/best.pt" in names and f"./{name}/metrics.jsonl" in names
    assert not any(n.endswith("last.pt") for n in names)  # training states stay on the machine
    assert "./resnet-all8/best.pt" not in names  # the teacher comes back in float16 instead
    assert "./cv-plain-default/cv.json" in names and "./cv-kd-hard/cv.json" in names
    assert not (out / "gpu-runs.tmp").exists()
    for name in ("cv-default-compare.txt", "cv-hard-compare.txt"):
        assert "exact McNemar test" in (out / name).read_text()
    for pair in ("default", "hard"):  # the three teachers' ensemble against the first, per pair and part
        for part in ("val", "test"):
            assert (out / f"teachers-{pair}-{part}.json").is_file()
    assert (out / "small-ensemble-test.json").is_file()
    total = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    assert total < 64 * 2**20  # the tool's way back


def test_the_teacher_in_float16_parts_loads_as_a_model(plan_run, tmp_path):
    from edgehound.train.checkpoint import load_model

    _, runs, out, _ = plan_run
    parts = sorted(out.glob("resnet-all8-half.pt.part*"))
    assert parts and all(p.stat().st_size <= 15 * 2**20 for p in parts)
    teacher = tmp_path / "teacher.pt"
    teacher.write_bytes(b"".join(p.read_bytes() for p in parts))  # `cat resnet-all8-half.pt.part* > teacher.pt`
    half, half_meta = load_model(teacher)
    full, full_meta = load_model(runs / "resnet-all8" / "best.pt")
    assert [c["wnid"] for c in half_meta["classes"]] == list(BREEDS)
    assert all(p.dtype == torch.float32 for p in half.parameters())  # loading casts back to float32
    x = torch.randn(2, 3, 160, 160)
    with torch.no_grad():
        a, b = half.eval()(x), full.eval()(x)
    assert torch.allclose(a, b, rtol=0.05, atol=0.05)  # float16 weights: the same model, rounded


def test_a_second_call_skips_finished_runs(plan_run):
    """The device call after a cut one: finished runs are not trained again."""
    pack, runs, out, _ = plan_run
    result = run_plan(pack, runs, out, "teacher", "backbone", "cv")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    for name in ("resnet-all8", "edge-all8", "cv-all8", "cv-plain-default", "cv-kd-default"):
        assert f"== {runs / name}: done before" in result.stdout
    assert "epoch 1/1" not in result.stdout  # no run trained again


def test_an_unknown_step_is_refused_before_anything_runs(tmp_path):
    (tmp_path / "pack").mkdir()
    result = run_plan(tmp_path / "pack", tmp_path / "runs", tmp_path / "out", "teacher", "teachr")
    assert result.returncode == 2
    assert "unknown step teachr" in result.stderr
    assert not (tmp_path / "runs").exists() and not (tmp_path / "out").exists()


def test_a_missing_pack_is_refused_before_anything_is_written(tmp_path):
    result = run_plan(tmp_path / "pack", tmp_path / "runs", tmp_path / "out", "teacher")
    assert result.returncode == 2
    assert f"{tmp_path / 'pack'}: no such folder" in result.stderr
    assert not (tmp_path / "runs").exists() and not (tmp_path / "out").exists()
