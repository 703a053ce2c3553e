import cv2
import numpy as np
import pytest
import torch

from conftest import SAMOYED, sample_photos
from edgehound.train.augment import augment
from edgehound.train.config import TrainConfig, load_config
from edgehound.train.model import DogCNN, count_macs


def test_seed_model_is_the_course_architecture():
    cfg = load_config("seed")
    model = DogCNN(cfg.model, 2)
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    assert len(convs) == 5 and len(linears) == 2
    assert linears[0].in_features == 256 * 9 * 9  # the ~20,000-wide flatten
    assert model(torch.zeros(1, 3, 300, 300)).shape == (1, 2)
    macs, params = count_macs(model, 300)
    # about 7 GFLOP forward + backward per image, i.e. ~1.2 GMACs forward
    assert 1.1e9 < macs < 1.3e9 and 10e6 < params < 12e6


def test_levers_change_the_model():
    base = load_config("seed")
    lever = load_config("seed", ["model.global_pool=true", "model.batch_norm=true", "model.fc_dropout=0.5",
                                 "model.conv_channels=[16, 32, 64, 64, 128]"])
    assert lever.model.global_pool and lever.model.conv_channels == (16, 32, 64, 64, 128)
    assert lever.digest() != base.digest()
    model = DogCNN(lever.model, 2)
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
    assert any(isinstance(m, torch.nn.Dropout) and m.p == 0.5 for m in model.modules())
    assert count_macs(model, 300)[1] < count_macs(DogCNN(base.model, 2), 300)[1] / 10


def test_a_setting_added_later_at_its_default_keeps_the_digest():
    from dataclasses import asdict, make_dataclass, replace

    cfg = load_config("edge")
    later = make_dataclass("LaterTrainConfig", [("new_option", float, 0.0)], bases=(TrainConfig,), frozen=True)
    extended = replace(cfg, train=later(**asdict(cfg.train)))
    assert extended.digest() == cfg.digest()  # a run saved before the option existed still resumes
    assert replace(extended, train=replace(extended.train, new_option=1.0)).digest() != cfg.digest()
    assert replace(cfg, train=replace(cfg.train, lr=cfg.train.lr / 2)).digest() != cfg.digest()


def test_augment_is_deterministic_per_seed_and_changes_the_photo():
    img = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    a = augment(img, np.random.default_rng([1, 2, 3]))
    b = augment(img, np.random.default_rng([1, 2, 3]))
    c = augment(img, np.random.default_rng([1, 2, 4]))
    assert a.shape == img.shape and a.dtype == np.uint8
    assert np.array_equal(a, b) and not np.array_equal(a, c) and not np.array_equal(a, img)


@pytest.mark.parametrize("crop_scale", [(), (0.25, 1.0)], ids=["zoom-rotate", "random-resized-crop"])
def test_augmenting_a_batch_with_torch_gives_opencvs_photos(crop_scale):
    """--augment-on device: the same draws applied to a whole batch by torch (on the GPU in use) give the photos
    OpenCV gives in the workers, within OpenCV's fixed-point rounding: a training run sees the same data."""
    from edgehound.train.augment import AugmentConfig, augment_batch, batch_params, draw

    photos = np.stack([cv2.resize(cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB), (160, 160))
                       for p in sample_photos(SAMOYED, 12)])
    cfg = AugmentConfig(crop_scale=crop_scale)
    opencv = np.stack([augment(p, np.random.default_rng([1, 2, j]), cfg) for j, p in enumerate(photos)])
    draws = [draw(160, 160, np.random.default_rng([1, 2, j]), cfg) for j in range(len(photos))]
    batched = augment_batch(torch.from_numpy(photos), batch_params(draws, 160, 160))
    assert batched.dtype == torch.uint8 and batched.shape == photos.shape
    diff = np.abs(opencv.astype(int) - batched.numpy().astype(int))
    assert diff.mean() < 0.2 and diff.max() <= 3  # measured: 0.04 and 2
    assert not np.array_equal(batched.numpy(), photos)


def test_colour_jitter_as_one_matrix_is_the_step_by_step_formula():
    """saturation (blend with grey), contrast (about the mean), brightness, in float: within one level (OpenCV rounds, with
    fixed-point coefficients for 8-bit photos; the float code it replaced truncated)."""
    from edgehound.train.augment import colour_matrix

    img = cv2.resize(cv2.imread(str(sample_photos(SAMOYED, 1)[0]))[..., ::-1], (96, 96))
    for s, c, b in [(1.0, 1.0, 1.0), (0.8, 1.2, 0.9), (1.2, 0.8, 1.2), (0.0, 1.0, 1.0), (1.0, 3.0, 1.0)]:
        x = img.astype(np.float64)
        grey = x @ np.array([0.299, 0.587, 0.114])
        x = grey[..., None] + (x - grey[..., None]) * s
        x = x.mean() + (x - x.mean()) * c
        want = np.clip(x * b, 0, 255)
        got = cv2.transform(img, colour_matrix(cv2.mean(img)[:3], s, c, b))
        assert got.dtype == np.uint8 and np.abs(got - want).max() < 1, (s, c, b)
    assert np.array_equal(cv2.transform(img, colour_matrix(cv2.mean(img)[:3], 1, 1, 1)), img)  # no jitter: the photo
    assert (cv2.transform(img, colour_matrix(cv2.mean(img)[:3], 0, 1, 1)).std(axis=2) <= 0.5).all()  # grey: channels equal


def test_every_family_is_built_by_name_and_counted():
    from edgehound.train.model import BasicBlock, InvertedResidual, SqueezeExcite, build_model, model_table

    rows = {r["name"]: r for r in model_table()}
    assert rows["resnet18"]["family"] == "resnet" and rows["edge"]["family"] == "mobilenet"
    assert rows["seed"]["family"] == "vgg" and rows["efficient"]["family"] == "vgg"
    # ResNet-18 at 160 px: 11.2 M parameters, 0.93 GMACs (the teacher); the edge model within 100 MMACs
    assert 11.0e6 < rows["resnet18"]["params"] < 11.4e6 and 0.90e9 < rows["resnet18"]["macs"] < 0.95e9
    assert rows["edge"]["macs"] <= 100e6
    assert {r["input_size"] for r in model_table(64)} == {64}
    assert model_table(64)[0]["macs"] < rows[model_table(64)[0]["name"]]["macs"]

    resnet = build_model(load_config("resnet18").model, 3)
    edge = build_model(load_config("edge", ["model.se=true"]).model, 2)
    assert sum(isinstance(m, BasicBlock) for m in resnet.modules()) == 8
    blocks = [m for m in edge.modules() if isinstance(m, InvertedResidual)]
    assert any(b.residual for b in blocks) and any(not b.residual for b in blocks)
    assert any(isinstance(m, SqueezeExcite) for m in edge.modules())
    for model, size, n in ((resnet, 160, 3), (edge, 160, 2)):
        assert model(torch.zeros(2, 3, size, size)).shape == (2, n)
        assert isinstance(list(model.features)[-1], torch.nn.ReLU) or isinstance(list(model.features)[-1], BasicBlock)


def test_a_config_that_does_not_fit_together_is_a_clear_error():
    import pytest

    from edgehound.runtime.errors import EdgehoundError
    from edgehound.train.model import build_model

    with pytest.raises(EdgehoundError, match="one count per stage"):
        build_model(load_config("edge", ["model.blocks=[1, 2]"]).model, 2)
    with pytest.raises(EdgehoundError, match="family 'vit'"):
        build_model(load_config("edge", ["model.family=vit"]).model, 2)


def test_random_resized_crop_takes_a_part_of_the_photo():
    from edgehound.train.augment import AugmentConfig

    # red encodes x (0..255 across the width), green encodes y: a crop of a quarter of the area at aspect 1
    # spans half the width and half the height, so each channel covers about half of its range
    ramp = np.arange(256, dtype=np.uint8)
    img = np.stack([np.tile(ramp, (256, 1)), np.tile(ramp[:, None], (1, 256)), np.zeros((256, 256), np.uint8)], -1)
    cfg = AugmentConfig(crop_scale=(0.25, 0.25), crop_ratio=(1.0, 1.0), flip=False, brightness=0, contrast=0, saturation=0)
    for seed in range(5):
        out = augment(img, np.random.default_rng(seed), cfg)
        for channel in (0, 1):
            span = int(out[..., channel].max()) - int(out[..., channel].min())
            assert 120 <= span <= 130, (seed, channel, span)
        assert np.array_equal(out, augment(img, np.random.default_rng(seed), cfg))
    whole = augment(img, np.random.default_rng(0), AugmentConfig(crop_scale=(1.0, 1.0), crop_ratio=(1.0, 1.0), flip=False,
                                                              brightness=0, contrast=0, saturation=0))
    assert np.abs(whole.astype(int) - img).max() <= 1  # the whole area: the photo itself


def test_fixed_holdout_is_the_same_photos_whatever_the_seed_or_the_breeds():
    from edgehound.runtime.datasets import split_indices

    keys = [f"n{c}/photo_{i}.JPEG" for c in range(4) for i in range(500)]
    labels = np.repeat(np.arange(4), 500)
    a = split_indices(labels, seed=0, test_frac=0.2, holdout="fixed", keys=keys)
    b = split_indices(labels, seed=7, test_frac=0.2, holdout="fixed", keys=keys)
    assert np.array_equal(a.test, b.test) and not np.array_equal(a.val, b.val)
    assert 0.17 < len(a.test) / len(labels) < 0.23
    assert not set(a.test) & (set(a.train) | set(a.val)) and len(a.train) + len(a.val) + len(a.test) == len(labels)
    # the pair alone (the first 1000 photos, shuffled): the same photos of the pair are test
    order = np.random.default_rng(1).permutation(1000)
    pair = split_indices(labels[order], seed=3, test_frac=0.2, holdout="fixed", keys=[keys[i] for i in order])
    assert {keys[order[i]] for i in pair.test} == {keys[i] for i in a.test if i < 1000}
    seeded = split_indices(labels, seed=0, test_frac=0.2)
    assert not np.array_equal(seeded.test, split_indices(labels, seed=1, test_frac=0.2).test)


def test_balanced_accuracy_is_the_mean_of_the_per_class_accuracies():
    from edgehound.runtime.metrics import classification_report, format_report

    # 90 of class 0 (81 right), 10 of class 1 (2 right): accuracy 83%, balanced (0.9 + 0.2) / 2 = 55%
    y_true = np.array([0] * 90 + [1] * 10)
    y_pred = np.array([0] * 81 + [1] * 9 + [1] * 2 + [0] * 8)
    report = classification_report(y_true, y_pred, ["a", "b"])
    assert report["accuracy"] == 0.83 and abs(report["balanced_accuracy"] - 0.55) < 1e-12
    assert "balanced accuracy 55.00%" in format_report(report)


def test_paired_comparison_counts_the_photos_one_model_alone_gets_right():
    from edgehound.runtime.metrics import format_comparison, paired_comparison

    def report(right):  # photo i: right or wrong
        return {"photos": [{"photo": f"p{i}", "true": "a", "pred": "a" if r else "b"} for i, r in enumerate(right)]}

    # 100 photos: both right on 80, only A on 10, only B on 0, neither on 10; B also has a photo A lacks
    a = report([True] * 90 + [False] * 10)
    b = report([True] * 80 + [False] * 20 + [True])
    c = paired_comparison(a, b)
    assert (c["n"], c["both_right"], c["only_a_right"], c["only_b_right"], c["both_wrong"]) == (100, 80, 10, 0, 10)
    assert c["accuracy_a"] == 0.9 and c["accuracy_b"] == 0.8
    assert c["mcnemar_p"] == pytest.approx(2 / 2 ** 10)  # exact: both tails of 10 coin flips all one way
    assert "A is better (p < 0.05)" in format_comparison(c, "A", "B")
    # 5 to 3 is a coin's doing: p = 2 * P(X <= 3 | n=8) = 2 * 93 / 256
    close = paired_comparison(report([True] * 5 + [False] * 3), report([False] * 5 + [True] * 3))
    assert close["mcnemar_p"] == pytest.approx(2 * 93 / 256)
    assert "no significant difference" in format_comparison(close, "A", "B")
    assert paired_comparison(a, a)["mcnemar_p"] == 1.0


def test_log_loss_counts_how_sure_the_answers_were_where_accuracy_ties():
    import math

    from edgehound.runtime.metrics import format_comparison, format_report, log_loss, paired_comparison

    def report(p_true):  # every photo of breed "a", answered with probability p_true for it
        photos = [{"photo": f"p{i}", "true": "a", "pred": "a" if q > 0.5 else "b", "p": {"a": q, "b": 1 - q}}
                  for i, q in enumerate(p_true)]
        return {"photos": photos}

    sure, unsure = report([0.99, 0.99, 0.2]), report([0.6, 0.6, 0.4])
    assert log_loss(sure["photos"]) == pytest.approx(-(2 * math.log(0.99) + math.log(0.2)) / 3)
    assert log_loss(unsure["photos"]) == pytest.approx(-(2 * math.log(0.6) + math.log(0.4)) / 3)
    c = paired_comparison(sure, unsure)
    assert c["accuracy_a"] == c["accuracy_b"] and c["log_loss_a"] < c["log_loss_b"]  # same photos right, surer
    assert f"(log loss {c['log_loss_a']:.3f} and {c['log_loss_b']:.3f})" in format_comparison(c, "A", "B")
    # a probability of 0 for the true breed is a large finite loss, not infinity; answers without probabilities
    # (reports of older versions) have none
    assert math.isfinite(log_loss(report([0.0])["photos"]))
    assert log_loss([{"photo": "x", "true": "a", "pred": "a"}]) is None
    assert "log loss" not in format_report({"accuracy": 1.0, "n": 1, "per_class": {}, "classes": ["a"],
                                            "confusion": [[1]], "log_loss": None})


def test_models_command_lists_every_config_and_times_training():
    import subprocess

    from conftest import edgehound_cmd
    from edgehound.train.config import CONFIG_DIR
    from edgehound.train.model import training_speed

    out = subprocess.run([*edgehound_cmd(), "models", "--size", "64"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    names = {line.split()[0] for line in out.stdout.splitlines()[1:]}
    assert names == {p.stem for p in CONFIG_DIR.glob("*.toml")} - {"study"}  # the study plan is not a model
    assert all(" 64 " in line for line in out.stdout.splitlines()[1:])
    assert training_speed(load_config("tiny").model, steps=1, batch=4) > 0
