import numpy as np
import torch

from edgehound.train.augment import augment
from edgehound.train.config import load_config
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


def test_augment_is_deterministic_per_seed_and_changes_the_photo():
    img = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    a = augment(img, np.random.default_rng([1, 2, 3]))
    b = augment(img, np.random.default_rng([1, 2, 3]))
    c = augment(img, np.random.default_rng([1, 2, 4]))
    assert a.shape == img.shape and a.dtype == np.uint8
    assert np.array_equal(a, b) and not np.array_equal(a, c) and not np.array_equal(a, img)
