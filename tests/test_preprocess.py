import cv2
import numpy as np
import pytest

from conftest import GOLDEN, SAMPLE, sample_photos, write_jpeg
from edgehound.runtime.errors import ImageError
from edgehound.runtime.preprocess import PreprocessSpec, load_image, normalize, prepare, preprocess


def test_photo_becomes_normalised_chw_tensor():
    spec = PreprocessSpec()
    x = preprocess(sample_photos(GOLDEN, 1)[0], spec)
    assert x.shape == (3, 300, 300) and x.dtype == np.float32
    assert -2.2 < x.min() < 0 < x.max() < 2.7  # ImageNet-normalised range


def test_greyscale_jpeg_gives_three_equal_channels():
    grey = [p for p in SAMPLE.rglob("*.JPEG") if cv2.imread(str(p), cv2.IMREAD_UNCHANGED).ndim == 2]
    assert grey, "the committed sample holds a greyscale photo"
    rgb = load_image(grey[0])
    assert rgb.shape[2] == 3
    assert np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 1], rgb[..., 2])


def test_bgr_is_converted_to_rgb(tmp_path):
    img = np.zeros((40, 40, 3), np.uint8)
    img[..., 2] = 255  # pure red in OpenCV's BGR order
    rgb = load_image(write_jpeg(tmp_path / "red.jpg", img))
    assert rgb[20, 20, 0] > 240 and rgb[20, 20, 2] < 15


def halves_image():
    img = np.zeros((200, 400, 3), np.uint8)
    img[:, :200] = (255, 0, 0)  # left half red (RGB)
    img[:, 200:] = (0, 0, 255)  # right half blue
    return img


def test_box_crops_to_the_dog_plus_margin():
    spec = PreprocessSpec(size=32, use_boxes=True, box_margin=0.1)
    out = prepare(halves_image(), spec, box=(250, 50, 350, 150))  # inside the blue half, margin stays inside
    assert (out[..., 2] > 250).all() and (out[..., 0] < 5).all()


def test_box_is_ignored_when_the_spec_does_not_use_boxes():
    out = prepare(halves_image(), PreprocessSpec(size=32, crop="none"), box=(250, 50, 350, 150))
    assert out[16, 2, 0] > 250 and out[16, 29, 2] > 250  # whole frame: red left, blue right


def test_fallback_crops():
    img = np.zeros((100, 300, 3), np.uint8)
    img[:, :100] = 255  # white only in the left third
    centre = prepare(img, PreprocessSpec(size=50, crop="center"))
    assert centre.max() == 0  # the centred square never sees the left third
    whole = prepare(img, PreprocessSpec(size=60, crop="none"))
    assert whole[:, :15].min() == 255 and whole[:, 25:].max() == 0


def test_normalize_batch_matches_single_and_layouts():
    imgs = np.random.default_rng(0).integers(0, 256, (2, 8, 8, 3), dtype=np.uint8)
    spec = PreprocessSpec(size=8)
    batch = normalize(imgs, spec)
    assert batch.shape == (2, 3, 8, 8)
    assert np.array_equal(batch[1], normalize(imgs[1], spec))
    nhwc = normalize(imgs, PreprocessSpec(size=8, layout="NHWC"))
    assert np.array_equal(nhwc.transpose(0, 3, 1, 2), batch)
    assert np.allclose(batch[0, 0, 0, 0], (imgs[0, 0, 0, 0] / 255 - 0.485) / 0.229, atol=1e-5)


def test_normalize_by_table_is_the_float_formula_bit_for_bit():
    """The lookup table holds (v - mean*255) / (std*255) in float32 for every 8-bit value, so the
    table path gives the very numbers of computing it per pixel (training and export use it too)."""
    spec = PreprocessSpec(size=16, mean=(0.5, 0.25, 0.75), std=(0.2, 0.3, 0.1))
    every_value = np.arange(256, dtype=np.uint8).repeat(3).reshape(1, 16, 16, 3)
    mean = np.asarray(spec.mean, np.float32) * 255.0
    formula = (every_value.astype(np.float32) - mean) * (1.0 / (np.asarray(spec.std, np.float32) * 255.0))
    assert np.array_equal(normalize(every_value, spec), formula.transpose(0, 3, 1, 2))
    q = normalize(every_value, PreprocessSpec(size=16, layout="NHWC"), {"dtype": "uint8", "scale": 0.01, "zero_point": 128})
    assert q.dtype == np.uint8 and q.min() == 0 and q.max() == 255  # rounded and clipped to the type


def test_corrupt_and_truncated_files_name_the_file(tmp_path):
    bad = tmp_path / "not_a_photo.jpg"
    bad.write_text("hello")
    with pytest.raises(ImageError, match="not_a_photo.jpg: not a readable image"):
        load_image(bad)
    with pytest.raises(ImageError, match="missing.jpg: cannot read"):
        load_image(tmp_path / "missing.jpg")
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    with pytest.raises(ImageError, match="empty.jpg"):
        load_image(empty)


def test_spec_round_trips_through_json_dict():
    spec = PreprocessSpec(size=128, crop="none", use_boxes=True)
    assert PreprocessSpec.from_dict(spec.to_dict()) == spec
    with pytest.raises(ValueError):
        PreprocessSpec(crop="saliency")


def test_truncated_jpeg_is_refused(tmp_path):
    data = sample_photos(GOLDEN, 1)[0].read_bytes()
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageError, match="cut.jpg: truncated JPEG"):
        load_image(cut)
