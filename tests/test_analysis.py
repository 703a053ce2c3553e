"""explain, robustness and card: saliency lands where the model looks, attacks hurt, conditions repeat,
cards regenerate byte for byte."""

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from conftest import GOLDEN, SAMOYED, SAMPLE, edgehound_cmd, sample_photos
from edgehound.benchmarks import saliency
from edgehound.benchmarks.corruptions import CORRUPTIONS, SEVERITIES, corrupt
from edgehound.benchmarks.robustness import CHECKPOINT, Models, balanced_subset, white_box
from edgehound.runtime.metrics import calibration
from edgehound.runtime.preprocess import PreprocessSpec, load_image, normalize, prepare

SIZE = 32
SPEC = PreprocessSpec(size=SIZE, crop="none")
CLASSES = [{"wnid": GOLDEN, "name": "golden retriever"}, {"wnid": SAMOYED, "name": "Samoyed"}]


class CornerNet(nn.Module):
    """Sees only the top-left quarter of its input (the rest is masked to zero before the first conv)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.features = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1, bias=False), nn.ReLU())
        self.head = nn.Linear(4, 2)
        self.register_buffer("mask", torch.zeros(1, 1, SIZE, SIZE))
        self.mask[..., :SIZE // 2, :SIZE // 2] = 1

    def forward(self, x):
        return self.head(self.features(x * self.mask).mean((2, 3)))


def test_saliency_of_a_corner_model_lands_in_that_corner():
    model = CornerNet().eval()
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)
    corner = (0, 0, SIZE // 2, SIZE // 2)  # a quarter of the picture

    def probs(images):
        with torch.no_grad():
            return torch.softmax(model(torch.from_numpy(normalize(images, SPEC))), 1).numpy()

    target = int(probs(image[None])[0].argmax())
    cam = saliency.gradcam(model, normalize(image, SPEC), target)
    occ = saliency.occlusion(probs, image, target, window=0.25, stride=0.125)
    # a map spread evenly would give 0.25; occlusion's squares that straddle the corner's edge blur it by a square
    for heat, least in ((cam, 0.9), (occ, 0.75)):  # the conv reaches one pixel past the corner
        share, area = saliency.box_share(heat, corner)
        assert area == 0.25
        assert share > least, share


def test_box_maps_onto_the_model_input():
    # a 400x200 photo, centre crop keeps x 100..300; the box (150, 50, 250, 150) becomes the middle half
    spec = PreprocessSpec(size=100, crop="center", use_boxes=True)
    assert saliency.box_on_input((150, 50, 250, 150), 200, 400, spec) == (25, 25, 75, 75)
    squeezed = PreprocessSpec(size=100, crop="none")
    assert saliency.box_on_input((0, 0, 200, 100), 200, 400, squeezed) == (0, 0, 50, 50)


def _separable_data(n=64, seed=0):
    """Class 0: darker grey photos, class 1: lighter, 12 grey levels apart: easy, and 8/255 crosses it."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 2
    level = np.where(labels == 1, 134, 122)[:, None, None, None]
    images = np.clip(level + rng.normal(0, 3, (n, SIZE, SIZE, 3)), 0, 255).astype(np.uint8)
    return images, labels


def test_attack_lowers_the_accuracy_of_a_trained_model():
    from edgehound.train.config import ModelConfig
    from edgehound.train.model import DogCNN

    torch.manual_seed(0)
    model = DogCNN(ModelConfig(input_size=SIZE, conv_channels=[4, 8], batch_norm=False, fc_widths=[],
                               global_pool=True, conv_dropout=0.0, fc_dropout=0.0), 2)
    images, labels = _separable_data()
    x, y = torch.from_numpy(normalize(images, SPEC)), torch.from_numpy(labels)
    opt = torch.optim.Adam(model.parameters(), 0.02)
    for _ in range(150):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    model.eval()
    models = Models(CLASSES, SPEC, model, {}, {})
    test_images, test_labels = _separable_data(32, seed=1)
    clean = (models.probs(CHECKPOINT, test_images).argmax(1) == test_labels).mean()
    assert clean >= 0.9
    adv = white_box(models, test_images, test_labels, epsilons=(0, 8), pgd_steps=5)
    for attack in ("fgsm", "pgd"):
        assert np.array_equal(adv[attack][0], test_images)  # eps 0 is the clean photo
        changed = np.abs(adv[attack][1].astype(int) - test_images.astype(int))
        assert changed.max() <= 8  # within eps, in 8-bit pixels
        attacked = (models.probs(CHECKPOINT, adv[attack][1]).argmax(1) == test_labels).mean()
        assert attacked <= clean - 0.4, (attack, clean, attacked)


@pytest.mark.parametrize("name", list(CORRUPTIONS))
def test_camera_conditions_repeat_under_a_seed_and_grow_with_severity(name):
    images = np.stack([prepare(load_image(p), PreprocessSpec(size=96)) for p in sample_photos(GOLDEN, 3)])
    first = corrupt(images, name, 3, seed=5)
    assert first.shape == images.shape and first.dtype == np.uint8
    assert np.array_equal(first, corrupt(images, name, 3, seed=5))
    damage = [np.abs(corrupt(images, name, s, seed=5).astype(int) - images).mean() for s in SEVERITIES]
    assert damage[0] > 0 and damage[-1] > damage[0], damage


def test_noise_depends_on_the_seed_and_not_on_the_batch():
    images = np.full((3, 32, 32, 3), 128, np.uint8)
    a = corrupt(images, "gaussian_noise", 2, seed=1)
    assert not np.array_equal(a, corrupt(images, "gaussian_noise", 2, seed=2))
    assert np.array_equal(a[:2], corrupt(images[:2], "gaussian_noise", 2, seed=1))
    with pytest.raises(ValueError, match="severity"):
        corrupt(images, "jpeg", 6)


def test_calibration_of_known_probabilities():
    # 10 photos at confidence 0.9 with 9 right: calibrated; 10 at 0.95 with 5 right: 45 pp over-confident
    probs = np.array([[0.9, 0.1]] * 10 + [[0.05, 0.95]] * 10)
    y = np.array([0] * 9 + [1] + [1] * 5 + [0] * 5)
    cal = calibration(probs, y)
    assert cal["ece"] == pytest.approx(0.5 * 0.0 + 0.5 * 0.45)
    assert sum(b["n"] for b in cal["bins"]) == 20


def test_balanced_subset_takes_classes_in_turn():
    labels = np.array([0] * 30 + [1] * 5)
    picked = balanced_subset(labels, 10, seed=0)
    assert len(picked) == 10 and (labels[picked] == 1).sum() == 5
    assert np.array_equal(picked, balanced_subset(labels, 10, seed=0))


def test_explain_cli_writes_maps_and_names_a_bad_photo(tiny_run, tmp_path):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8 not really a jpeg")
    photos = [str(p) for p in sample_photos(SAMOYED, 2)]
    out = tmp_path / "maps"
    r = subprocess.run([*edgehound_cmd(), "explain", str(tiny_run / "best.pt"), *photos, str(bad), "--out", str(out),
                        "--no-progress"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "skipped: " in r.stdout and "broken.jpg" in r.stdout and "Traceback" not in r.stderr
    report = json.loads((out / "saliency.json").read_text())
    assert report["method"] == "gradcam" and len(report["photos"]) == 2
    assert all((out / row["png"]).is_file() for row in report["photos"])
    r = subprocess.run([*edgehound_cmd(), "explain", str(tiny_run), *photos, "--method", "gradcam", "--out", str(out)],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "no manifest.json" in r.stderr


def test_explain_data_takes_the_model_s_breeds_in_turn(tiny_run, tmp_path):
    """--data names a folder of more breeds than the model knows (the sample's hounds come first by name): the
    photos explained are the model's breeds only, taken in turn, so each answer can be right or wrong."""
    out = tmp_path / "maps"
    r = subprocess.run([*edgehound_cmd(), "explain", str(tiny_run / "best.pt"), "--data", str(SAMPLE), "--limit", "4",
                        "--out", str(out), "--no-progress"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    report = json.loads((out / "saliency.json").read_text())
    folders = sorted(Path(row["photo"]).parent.name for row in report["photos"])
    assert folders == ["n02099601", "n02099601", "n02111889", "n02111889"]  # golden retriever, Samoyed
    assert report["accuracy"] is not None and "accuracy on these photos" in r.stdout


def test_explain_wrong_in_maps_a_report_s_mistakes_surest_first_and_refuses_a_report_of_other_photos(tiny_run,
                                                                                                      tmp_path):
    """--wrong-in: the photos a saved report answered wrongly, looked up by name in --data, the surest first."""
    r = subprocess.run([*edgehound_cmd(), "evaluate", str(tiny_run / "best.pt"), "--data", str(SAMPLE), "--split", "val",
                        "--json", str(tmp_path / "val.json"), "--no-progress"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    report = json.loads((tmp_path / "val.json").read_text())
    other = {report["classes"][0]: report["classes"][1], report["classes"][1]: report["classes"][0]}
    for p in report["photos"]:  # answered right, except three, made wrong with known confidences
        p["pred"], p["p"] = p["true"], {c: float(c == p["true"]) for c in report["classes"]}
    wrong = report["photos"][:3]
    for p, sure in zip(wrong, (0.6, 0.9, 0.75)):
        p["pred"], p["p"] = other[p["true"]], {other[p["true"]]: sure, p["true"]: round(1 - sure, 2)}
    (tmp_path / "made.json").write_text(json.dumps(report))
    out = tmp_path / "maps"
    cmd = [*edgehound_cmd(), "explain", str(tiny_run / "best.pt"), "--wrong-in", str(tmp_path / "made.json"),
           "--data", str(SAMPLE), "--out", str(out), "--no-progress"]
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    rows = json.loads((out / "saliency.json").read_text())["photos"]
    assert [Path(row["photo"]).name for row in rows] == [Path(wrong[i]["photo"]).name for i in (1, 2, 0)]
    assert all((out / row["png"]).is_file() and row["true"] == wrong[i]["true"] for row, i in zip(rows, (1, 2, 0)))
    r = subprocess.run([*cmd[:-3], "--limit", "1", "--out", str(tmp_path / "one")], capture_output=True, text=True)
    assert r.returncode == 0 and len(json.loads((tmp_path / "one" / "saliency.json").read_text())["photos"]) == 1
    # a report of photos that are not in --data, of other breeds, or made unreadable: one line naming it
    wrong[0]["photo"] = f"{SAMOYED}/not_in_the_sample.JPEG"
    (tmp_path / "elsewhere.json").write_text(json.dumps(report))
    other_breeds = {**report, "classes": ["beagle", "English foxhound"],
                    "photos": [{"photo": p["photo"], "true": "beagle", "pred": "beagle"} for p in report["photos"]]}
    (tmp_path / "breeds.json").write_text(json.dumps(other_breeds))
    (tmp_path / "cut.json").write_text(json.dumps(report)[:200])
    for name, says in (("elsewhere.json", "1 of its 3 wrong answers name photos that are not in"),
                       ("breeds.json", "answers among beagle, English foxhound"), ("cut.json", "cut.json")):
        bad = [*cmd[:6], str(tmp_path / name), *cmd[7:]]
        r = subprocess.run(bad, capture_output=True, text=True)
        assert r.returncode == 2 and says in r.stderr and "Traceback" not in r.stderr, r.stderr
    r = subprocess.run([*cmd[:7], *cmd[9:]], capture_output=True, text=True)  # no --data
    assert r.returncode == 2 and "give --data" in r.stderr


def test_composites_have_boxes_and_the_box_share_is_reported(tiny_run, tmp_path):
    from edgehound.runtime.datasets import read_dataset

    comp = tmp_path / "composites"  # the sample's beagles and foxhounds become the backgrounds
    r = subprocess.run([*edgehound_cmd(), "data", "composite", "--model", str(tiny_run / "best.pt"), "--data", str(SAMPLE),
                        "--n", "4", "--out", str(comp)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    ds = read_dataset(comp)
    assert ds.layout == "stanford" and len(ds.samples) == 4 and all(s.box for s in ds.samples)
    out = tmp_path / "maps"
    r = subprocess.run([*edgehound_cmd(), "explain", str(tiny_run / "best.pt"), "--data", str(comp), "--out", str(out),
                        "--no-progress"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    report = json.loads((out / "saliency.json").read_text())
    assert report["n_boxed"] == 4 and 0 <= report["mean_box_share"] <= 1 and 0 < report["mean_box_area"] < 1
    assert "inside the dog's box" in r.stdout


def test_card_regenerates_identically(tiny_export, tiny_run, tmp_path):
    import shutil

    from edgehound.benchmarks.card import render

    folder = tmp_path / "tiny"  # no best.pt here: the card finds the checkpoint the manifest names (same sha256)
    shutil.copytree(tiny_export, folder)
    cmd = [*edgehound_cmd(), "card", str(folder), "--data", str(SAMPLE), "--limit", "8", "--no-progress"]
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    first = (folder / "CARD.md").read_text()
    for section in ("## Accuracy on held-out photos", "## Calibration", "## Where it looks", "## Robustness",
                    "## Size and speed per artifact", "## Known failure cases"):
        assert section in first
    for png in ("adversarial.png", "camera-conditions.png", "reliability.png"):
        assert (folder / "card" / png).stat().st_size > 1000
    assert render(folder) == first  # from the same files, the same text
    r = subprocess.run(cmd + ["--refresh"], capture_output=True, text=True)  # measured again, seeded
    assert r.returncode == 0, r.stderr[-3000:]
    assert (folder / "CARD.md").read_text() == first
    (folder / "card" / "robustness.json").write_text("{not json")
    r = subprocess.run(cmd[:5], capture_output=True, text=True)  # card FOLDER: renders from card/ alone
    assert r.returncode == 2 and "robustness.json: unreadable" in r.stderr


def test_a_card_measured_on_files_that_a_later_export_changed_is_measured_again(tiny_export, tiny_run, tmp_path):
    """card/measured.json keeps the sha256 of each file measured; `card` re-measures what changed."""
    import shutil

    from edgehound.benchmarks.card import render
    from edgehound.export.exporter import ExportOptions, export

    folder = tmp_path / "tiny"
    shutil.copytree(tiny_export, folder)
    cmd = [*edgehound_cmd(), "card", str(folder), "--limit", "8", "--no-progress"]
    r = subprocess.run(cmd + ["--data", str(SAMPLE)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    sha = {e["name"]: e["sha256"] for e in json.loads((folder / "manifest.json").read_text())["artifacts"]}
    measured = json.loads((folder / "card" / "measured.json").read_text())
    assert measured["robustness.json"]["onnx-int8"] == sha["onnx-int8"]
    assert set(measured) == {"robustness.json", "examples", "mistakes"}

    export(tiny_run / "best.pt", ExportOptions(targets=["onnx-int8"], out=folder, calib_photos=3, update=True,
                                               progress=False))
    new = {e["name"]: e["sha256"] for e in json.loads((folder / "manifest.json").read_text())["artifacts"]}
    assert new["onnx-int8"] != sha["onnx-int8"] and new["onnx"] == sha["onnx"]
    assert "| robustness.json | onnx-int8 | " + sha["onnx-int8"][:12] + " | **changed since** |" in render(folder)
    r = subprocess.run(cmd, capture_output=True, text=True)  # without --data it cannot measure: says what changed
    assert r.returncode == 2 and "robustness.json: measured on files that changed since (onnx-int8)" in r.stderr
    r = subprocess.run(cmd + ["--data", str(SAMPLE)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    measured = json.loads((folder / "card" / "measured.json").read_text())
    assert measured["robustness.json"]["onnx-int8"] == new["onnx-int8"]
    assert "changed since" not in (folder / "CARD.md").read_text()

    (folder / "card" / "measured.json").unlink()  # a card from before the record: not trusted
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 2 and "measured before the card recorded which files it measured" in r.stderr


def test_every_shipped_card_was_measured_on_the_files_its_manifest_lists():
    from edgehound.benchmarks.card import MEASURED_PARTS, files_now, read_measured, stale_files

    folders = sorted(p.parent for p in (SAMPLE.parents[1] / "runtime" / "models").glob("*/manifest.json"))
    stale = {f.name: {part: stale_files(read_measured(f / "card"), part, files_now(json.loads((f / "manifest.json")
                                                                                               .read_text())))
                      for part in MEASURED_PARTS if (f / "card" / part).exists()}
             for f in folders}
    stale = {name: {part: files for part, files in parts.items() if files} for name, parts in stale.items()}
    assert all(not parts for parts in stale.values()), \
        f"measure again with `edgehound card runtime/models/NAME --data DATA --boxes COMPOSITES`: {stale}"


def test_every_shipped_models_card_is_what_its_files_render():
    """A shipped card is not edited by hand: after a manifest changes, `edgehound card FOLDER` rewrites it."""
    from edgehound.benchmarks.card import render

    folders = sorted(p.parent for p in (SAMPLE.parents[1] / "runtime" / "models").glob("*/manifest.json"))
    assert folders
    stale = [f.name for f in folders if render(f) != (f / "CARD.md").read_text()]
    assert stale == [], f"re-render with `edgehound card runtime/models/NAME`: {stale}"


def test_map_agreement_compares_the_same_photos():
    rng = np.random.default_rng(0)
    a = rng.random((16, 16))
    same = {"photos": [{"photo": "x.jpg", "map16": a.tolist()}]}
    flipped = {"photos": [{"photo": "x.jpg", "map16": (1 - a).tolist()}, {"photo": "other.jpg", "map16": a.tolist()}]}
    assert saliency.map_agreement(same, same) == pytest.approx(1.0)
    assert saliency.map_agreement(same, flipped) == pytest.approx(-1.0)
    assert saliency.map_agreement(same, {"photos": []}) is None
