"""The three layout readers, on fixtures in each real format built from the committed photos."""

import shutil

import numpy as np
import pytest

from conftest import GOLDEN, SAMOYED, SAMPLE, sample_photos
from edgehound.runtime.errors import EdgehoundError
from edgehound.runtime.datasets import (detect_layout, photo_key, read_dataset, seen_photos, split_indices,
                                        split_parts, split_samples)
from edgehound.runtime.preprocess import load_image

VOC = """<annotation><folder>{wnid}</folder><filename>{stem}</filename>
<size><width>500</width><height>375</height><depth>3</depth></size>
<object><name>{name}</name><bndbox><xmin>{x0}</xmin><ymin>{y0}</ymin><xmax>{x1}</xmax><ymax>{y1}</ymax></bndbox></object>
<object><name>{name}</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>20</xmax><ymax>20</ymax></bndbox></object>
</annotation>"""


def make_stanford(root, n=5, with_boxes=True):
    for wnid, folder in ((GOLDEN, "n02099601-golden_retriever"), (SAMOYED, "n02111889-Samoyed")):
        (root / "Images" / folder).mkdir(parents=True)
        (root / "Annotation" / folder).mkdir(parents=True)
        for i, p in enumerate(sample_photos(wnid, n)):
            stem = f"{wnid}_{1000 + i}"
            shutil.copy(p, root / "Images" / folder / f"{stem}.jpg")
            if with_boxes and i % 2 == 0:  # only some photos have a box
                (root / "Annotation" / folder / stem).write_text(
                    VOC.format(wnid=wnid, stem=stem, name=folder.split("-", 1)[1], x0=10 + i, y0=20, x1=200, y1=210))
    return root


def test_stanford_layout_reads_images_and_boxes(tmp_path):
    root = make_stanford(tmp_path / "stanford")
    assert detect_layout(root) == "stanford"
    ds = read_dataset(root, ["golden retriever", "samoyed"])
    assert [b.wnid for b in ds.classes] == [GOLDEN, SAMOYED]
    assert ds.counts() == {GOLDEN: 5, SAMOYED: 5}
    boxed = {s.path.stem: s.box for s in ds.samples if s.box}
    assert len(boxed) == 6  # photos 0, 2, 4 of each breed
    assert boxed[f"{GOLDEN}_1002"] == (12, 20, 200, 210)  # the larger of the two boxes


def test_stanford_broken_annotation_is_noted_not_fatal(tmp_path):
    root = make_stanford(tmp_path / "stanford")
    (root / "Annotation" / "n02099601-golden_retriever" / f"{GOLDEN}_1000").write_text("<annotation><object>")
    (root / "Annotation" / "n02099601-golden_retriever" / f"{GOLDEN}_1002").write_text(  # was an OverflowError
        "<annotation><object><bndbox><xmin>0</xmin><ymin>0</ymin><xmax>inf</xmax><ymax>9</ymax></bndbox></object></annotation>")
    ds = read_dataset(root)
    assert len(ds.samples) == 10
    assert all(any(f"{GOLDEN}_{n}" in note and "box ignored" in note for note in ds.notes) for n in (1000, 1002))


def test_kaggle_csv_layout(tmp_path):
    root = tmp_path / "kaggle"
    (root / "train").mkdir(parents=True)
    rows = ["id,breed"]
    for breed, wnid in (("golden_retriever", GOLDEN), ("samoyed", SAMOYED)):
        for i, p in enumerate(sample_photos(wnid, 4)):
            image_id = f"{wnid[-4:]}{i:04d}abcdef"
            shutil.copy(p, root / "train" / f"{image_id}.jpg")
            rows.append(f"{image_id},{breed}")
    rows.append("missing0000,samoyed")  # listed but absent: noted, not fatal
    outside = tmp_path / "outside.jpg"  # an id that climbs out of train/ is not read, even when the file exists
    shutil.copy(sample_photos(GOLDEN, 1)[0], outside)
    rows += ["../../outside,golden_retriever", "short-row"]
    (root / "labels.csv").write_text("\n".join(rows) + "\n")
    assert detect_layout(root) == "kaggle"
    ds = read_dataset(root, ["n02099601-golden_retriever", "n02111889"])
    assert ds.counts() == {GOLDEN: 4, SAMOYED: 4}
    assert any("missing0000" in n for n in ds.notes)
    assert sum("not an image id and a breed" in n for n in ds.notes) == 2
    (root / "labels.csv").write_bytes(b"\xff\xfeid,breed\n")  # UTF-16 from a spreadsheet: was a UnicodeDecodeError
    with pytest.raises(EdgehoundError, match="labels.csv: not a readable CSV file"):
        read_dataset(root)


def test_folder_per_breed_layout_with_breed_names(tmp_path):
    root = tmp_path / "named"
    for folder, wnid in (("Golden_Retriever", GOLDEN), ("samoyed", SAMOYED)):
        (root / folder).mkdir(parents=True)
        for p in sample_photos(wnid, 3):
            shutil.copy(p, root / folder / p.name)
    ds = read_dataset(root)
    assert detect_layout(root) == "folders"
    assert {b.wnid for b in ds.classes} == {GOLDEN, SAMOYED}
    assert len(ds.samples) == 6


def test_committed_sample_is_a_wordnet_folder_dataset():
    ds = read_dataset(SAMPLE, ["golden_retriever", "Samoyed"])
    assert ds.layout == "folders"
    assert ds.counts() == {GOLDEN: 50, SAMOYED: 50}


def test_exclude_leaves_out_photos_by_name(pair_folder):
    ds = read_dataset(pair_folder, exclude=[SAMPLE / GOLDEN])
    assert ds.counts() == {SAMOYED: 20}


def test_missing_breed_and_missing_folder_are_clear_errors(pair_folder, tmp_path):
    with pytest.raises(EdgehoundError, match="no photos of beagle"):
        read_dataset(pair_folder, ["golden retriever", "beagle"])
    with pytest.raises(EdgehoundError, match="no such dataset folder"):
        read_dataset(tmp_path / "nowhere")
    # photos that --exclude left out are counted in the error, not silently missing
    with pytest.raises(EdgehoundError, match=r"no photos of golden retriever \(found: Samoyed; 20 left out as excluded\)"):
        read_dataset(pair_folder, [GOLDEN], exclude=[SAMPLE / GOLDEN])
    with pytest.raises(EdgehoundError, match=r"no images found \(folders layout; 40 left out as excluded\)"):
        read_dataset(pair_folder, exclude=[SAMPLE / GOLDEN, SAMPLE / SAMOYED])


def test_split_is_stratified_deterministic_and_disjoint():
    labels = np.array([0] * 100 + [1] * 60)
    a = split_indices(labels, seed=3)
    b = split_indices(labels, seed=3)
    c = split_indices(labels, seed=4)
    assert all(np.array_equal(getattr(a, k), getattr(b, k)) for k in ("train", "val", "test"))
    assert not np.array_equal(a.test, c.test)
    assert np.bincount(labels[a.test]).tolist() == [50, 30]  # 50% of each breed
    everything = np.concatenate([a.train, a.val, a.test])
    assert len(set(everything.tolist())) == len(everything) == 160
    assert np.bincount(labels[a.val]).tolist() == [5, 3]  # 10% of each pool


def test_per_class_limit_and_kfold():
    labels = np.array([0] * 100 + [1] * 100)
    small = split_indices(labels, seed=0, per_class=20, val_frac=0.1)
    assert np.bincount(labels[small.train]).tolist() == [18, 18]
    assert len(small.test) == 100  # the test part is unchanged
    folds = [split_indices(labels, seed=0, folds=5, fold=k) for k in range(5)]
    vals = np.concatenate([f.val for f in folds])
    assert len(vals) == len(set(vals.tolist())) == 100  # each pool photo is validation exactly once
    assert all(np.array_equal(f.test, folds[0].test) for f in folds)
    with pytest.raises(EdgehoundError):
        split_indices(labels, folds=5, fold=5)


def test_a_pack_holds_the_same_photos_names_and_split_in_small_squares(tmp_path):
    from edgehound.train.pack import pack_dataset

    src = tmp_path / "src"
    shutil.copytree(SAMPLE, src)  # folder layout, four breeds
    before = sorted((p.name, p.stat().st_size) for p in src.rglob("*") if p.is_file())
    record = pack_dataset(src, tmp_path / "pack", size=64, quality=80, progress=False)
    packed = read_dataset(tmp_path / "pack")
    original = read_dataset(src)
    assert record["photos"] == len(packed.samples) == len(original.samples) and record["skipped"] == []
    assert [(s.wnid, s.path.name) for s in packed.samples] == [(s.wnid, s.path.name) for s in original.samples]
    assert {load_image(s.path).shape for s in packed.samples} == {(64, 64, 3)}
    assert record["bytes"] < sum(s.path.stat().st_size for s in original.samples) / 4
    fixed = {"data": str(src), "exclude": [], "seed": 0, "test_frac": 0.2, "val_frac": 0.1, "per_class": 0,
             "holdout": "fixed", "folds": None, "fold": 0}
    for part in ("train", "val", "test"):  # the fixed holdout and the seeded validation draw see the same photos
        assert [s.path.name for s in split_samples(fixed, [GOLDEN, SAMOYED], part, tmp_path / "pack")] == \
               [s.path.name for s in split_samples(fixed, [GOLDEN, SAMOYED], part, src)]
    assert pack_dataset(src, tmp_path / "pack", size=64, quality=80, progress=False)["written"] == 0  # resumes
    assert sorted((p.name, p.stat().st_size) for p in src.rglob("*") if p.is_file()) == before  # never writes there

    with pytest.raises(EdgehoundError, match="other size"):
        pack_dataset(src, tmp_path / "pack", size=96, progress=False)
    with pytest.raises(EdgehoundError, match="inside the dataset"):
        pack_dataset(src, src / "pack", progress=False)
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "keep.txt").write_text("keep")
    with pytest.raises(EdgehoundError, match="other files in it"):
        pack_dataset(src, tmp_path / "notes", progress=False)
    small = pack_dataset(src, tmp_path / "small", per_breed=3, progress=False)
    assert small["photos"] == 3 * len(original.classes)
    (tmp_path / "small" / "pack.json").write_text("{ cut short")  # a hostile or half-written record
    with pytest.raises(EdgehoundError, match=r"small/pack.json: not a readable pack record"):
        pack_dataset(src, tmp_path / "small", per_breed=3, progress=False)


def test_seen_photos_are_a_run_s_train_and_val_parts_over_the_folder_it_trained_on(pair_folder, tmp_path):
    split = {"data": str(pair_folder), "exclude": [], "seed": 0, "test_frac": 0.5, "val_frac": 0.1, "per_class": 0,
             "holdout": "seeded", "folds": None, "fold": 0, "wnids": [GOLDEN, SAMOYED]}
    ds = read_dataset(pair_folder)
    parts = split_parts(ds, split)
    seen = seen_photos(split, [GOLDEN, SAMOYED], tmp_path / "elsewhere")  # its own folder is here: drawn there
    assert seen == {photo_key(ds.samples[i]) for i in (*parts.train, *parts.val)} and 0 < len(seen) < 40
    assert seen_photos(split, ["n02088364"], tmp_path / "elsewhere") == set()  # beagle: a breed the run never had
