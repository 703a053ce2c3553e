"""Hostile input: each case a defect once reproduced, now a clear error or the right result, never lost work."""

import _ctypes
import json
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import GOLDEN, SAMOYED, SAMPLE, edgehound_cmd, sample_photos, write_jpeg
from edgehound.runtime.classifier import Classifier
from edgehound.runtime.errors import EdgehoundError, ImageError
from edgehound.runtime.preprocess import MAX_PIXELS, decode_image, load_image
from edgehound.util import sha256_file

BEAGLE = "n02088364"


def cli(*args, cwd=None, timeout=600):
    return subprocess.run([*edgehound_cmd(), *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=timeout)


def copy_export(tiny_export, dest: Path) -> Path:
    shutil.copytree(tiny_export, dest)
    return dest


def edit_manifest(folder: Path, change) -> Path:
    path = folder / "manifest.json"
    manifest = json.loads(path.read_text())
    path.write_text(json.dumps(change(manifest)))
    return path


# ---- 1. the ssh device: nothing outside the export's own folder is removed, nothing is run from a profile

def test_ssh_remote_paths_never_widen_what_is_removed(tmp_path, monkeypatch):
    from edgehound.devices.ssh import _remote_command, _remote_paths

    export = tmp_path / "my-export"
    export.mkdir()
    monkeypatch.chdir(export)  # `edgehound bench .` once made the remote command `rm -rf /home/pi/`
    assert _remote_paths({"remote_dir": "/home/pi"}, Path(".")) == (
        "/home/pi", "/home/pi/my-export", "/home/pi/results-my-export")
    for bad in ("", "/", "a b", "x;rm -rf ~", "../up", "$(reboot)"):
        with pytest.raises(EdgehoundError, match="remote_dir"):
            _remote_paths({"remote_dir": bad}, export)
    odd = tmp_path / "odd name"
    odd.mkdir()
    with pytest.raises(EdgehoundError, match="cannot be used on the device"):
        _remote_paths({}, odd)
    assert _remote_command("edgehound; rm -rf ~") == "'edgehound;' rm -rf '~'"  # words, never shell syntax
    assert _remote_command("~/venv/bin/edgehound") == '"$HOME"/venv/bin/edgehound'
    assert _remote_command("python3 -m edgehound.cli") == "python3 -m edgehound.cli"


def test_ssh_host_that_looks_like_an_option_is_refused(tiny_export):
    from edgehound.devices.ssh import bench_over_ssh

    profile = {"name": "evil", "reach": {"kind": "ssh", "host": "-oProxyCommand=touch /tmp/pwned", "timeout": 5}}
    with pytest.raises(EdgehoundError, match="would be read as an ssh option"):
        bench_over_ssh(profile, tiny_export, [])


# ---- 2. resume checks the data, not only the config

def test_resume_with_other_breeds_or_photos_is_refused(tmp_path):
    data = tmp_path / "data"
    for wnid in (GOLDEN, SAMOYED, BEAGLE):
        (data / wnid).mkdir(parents=True)
        for p in sample_photos(wnid, 12):
            shutil.copy(p, data / wnid / p.name)
    out = tmp_path / "run"
    base = ["train", "--data", data, "--out", out, "--config", "tiny", "--no-progress", "--set", "train.epochs=1"]
    assert cli(*base).returncode == 0
    swapped = cli(*base, "--resume", "--breeds", SAMOYED, GOLDEN)  # once: 22% accuracy on swapped labels
    assert swapped.returncode == 2 and "was trained on breeds" in swapped.stderr, swapped.stderr
    three = cli(*base, "--resume", "--breeds", GOLDEN, SAMOYED, BEAGLE)  # once: a size-mismatch traceback
    assert three.returncode == 2 and "was trained on breeds" in three.stderr and "Traceback" not in three.stderr
    next(iter((data / GOLDEN).iterdir())).unlink()
    fewer = cli(*base, "--resume")
    assert fewer.returncode == 2 and "the photos (--data, --exclude) differ" in fewer.stderr, fewer.stderr


@pytest.mark.parametrize("case", ["optimizer missing", "schedule not a state", "loop state not JSON",
                                  "epoch as text"])
def test_a_damaged_training_state_is_refused_on_resume_and_left_in_place(tmp_path, case):
    import torch

    out = tmp_path / "run"
    base = ["train", "--data", SAMPLE, "--out", out, "--config", "tiny", "--no-progress", "--set", "train.epochs=1"]
    assert cli(*base).returncode == 0
    saved = torch.load(out / "last.pt", weights_only=True)
    state = json.loads(saved["state"])
    damaged = {
        "optimizer missing": lambda: {k: v for k, v in saved.items() if k != "optimizer"},
        "schedule not a state": lambda: {**saved, "schedule": "every step"},
        "loop state not JSON": lambda: {**saved, "state": "{epoch: 1"},
        "epoch as text": lambda: {**saved, "state": json.dumps({**state, "epoch": "one"})},
    }[case]()
    torch.save(damaged, out / "last.pt")
    before = (out / "last.pt").read_bytes()
    result = cli(*base, "--resume")
    assert result.returncode == 2 and "last.pt" in result.stderr and "cannot be resumed" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    assert (out / "last.pt").read_bytes() == before  # the run's file is kept for whoever can mend it


def test_training_needs_two_distinct_breeds_and_leaves_no_empty_folder(tmp_path):
    one = cli("train", "--data", SAMPLE, "--out", tmp_path / "one", "--config", "tiny", "--breeds", "golden_retriever")
    assert one.returncode == 2 and "at least two breeds" in one.stderr
    same = cli("train", "--data", SAMPLE, "--out", tmp_path / "same", "--config", "tiny",
               "--breeds", "golden_retriever", GOLDEN)
    assert same.returncode == 2 and "more than once" in same.stderr
    assert not (tmp_path / "one").exists() and not (tmp_path / "same").exists()  # refused: no empty --out


@pytest.mark.parametrize("args", [
    ["train", "--data", SAMPLE, "--out", "OUT", "--threads", "0"],  # was torch's RuntimeError from set_num_threads
    ["train", "--data", SAMPLE, "--out", "OUT", "--workers", "-1"],  # was DataLoader's ValueError
    ["train", "--data", SAMPLE, "--out", "OUT", "--folds", "1"],  # was NumPy's "need at least one array"
    ["bench", "runtime/models/edge", "--runs", "0", "--out", "OUT"],  # was an IndexError over no timings
    ["export", "runtime/models/edge/best.pt", "--out", "OUT", "--calib-photos", "0"],
    ["classify", "runtime/models/edge", "tests/sample", "--threads", "0"],
])
def test_a_count_below_its_least_is_a_usage_error(tmp_path, args):
    result = cli(*[tmp_path / "out" if a == "OUT" else a for a in args])
    assert result.returncode == 2 and "must be at least" in result.stderr and "Traceback" not in result.stderr, result.stderr
    assert not (tmp_path / "out").exists()


def test_an_out_folder_that_is_a_file_is_refused_before_any_work_and_the_file_kept(tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("keep")
    model = SAMPLE.parents[1] / "runtime" / "models" / "edge"
    for args in (["train", "--data", SAMPLE, "--config", "tiny", "--out", notes],  # was FileExistsError after the cache
                 ["bench", model, "--runs", "2", "--out", notes / "bench"],  # was FileExistsError after all the timing
                 ["export", model / "best.pt", "--targets", "onnx", "--out", notes],
                 ["evaluate", model, "--data", SAMPLE, "--json", tmp_path],  # was refused only after scoring
                 ["evaluate", model, "--data", SAMPLE, "--json", notes / "report.json"],
                 ["narrow", model / "best.pt", "--breeds", "golden_retriever", "Samoyed", "--out", tmp_path]):
        result = cli(*args)
        named = tmp_path if args[-1] == tmp_path else notes
        # argparse's refusal ("usage:"): before a photo is read or a model loaded
        assert result.returncode == 2 and "usage:" in result.stderr and str(named) in result.stderr, result.stderr
        assert "Traceback" not in result.stderr
    assert notes.read_text() == "keep" and sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_a_place_that_cannot_be_written_is_refused_before_any_work(tmp_path):
    model = SAMPLE.parents[1] / "runtime" / "models" / "edge"
    for args, place in ((["evaluate", model, "--data", SAMPLE, "--json", "/proc/edgehound/report.json"], "/proc"),
                        (["train", "--data", SAMPLE, "--config", "tiny", "--out", "/sys/edgehound-run"], "/sys")):
        result = cli(*args)  # was: `evaluate` scored every photo, then could not write its report
        assert result.returncode == 2 and f"{place}: cannot write there" in result.stderr, result.stderr
        assert "Traceback" not in result.stderr and "accuracy" not in result.stdout


@pytest.mark.parametrize("args, problem", [
    (["train", "--data", SAMPLE, "--config", "tiny", "--set", "trian.epochs=5", "--out", "OUT"],
     "unknown section(s) trian"),  # was ignored: the run trained with the config's own epochs
    (["train", "--data", SAMPLE, "--config", "study", "--out", "OUT"], "unknown section(s)"),  # the study's plan
    (["models", "--size", "100000"], "must be at most 2048"),  # was a failed 120 GB allocation's traceback
    (["models", "--classes", "100000000"], "must be at most 1000"),
    (["export", SAMPLE.parents[1] / "runtime" / "models" / "edge" / "manifest.json", "--out", "OUT"],
     "manifest.json: not a model checkpoint"),  # was torch's page about weights_only and pickles
    (["evaluate", SAMPLE.parents[1] / "runtime" / "models" / "edge", "--data", SAMPLE, "--breeds", "beagle", "Samoyed"],
     "does not know beagle; it knows golden retriever, Samoyed"),  # was WordNet ids
])
def test_a_misspelt_setting_an_oversized_count_or_a_foreign_file_is_a_clear_error(tmp_path, args, problem):
    result = cli(*[tmp_path / "out" if a == "OUT" else a for a in args])
    assert result.returncode == 2 and problem in result.stderr and "Traceback" not in result.stderr, result.stderr
    assert not (tmp_path / "out").exists()


GOOD_PROFILE = 'name = "lab-pi"\narch = "aarch64"\nformats = ["onnx"]\nreach = { kind = "ssh", host = "pi@lab" }\n'


@pytest.mark.parametrize("case, text, problem", [
    ("not TOML", "name = \"lab-pi\"\nformats = [\n", "not a readable device profile"),  # was TOMLDecodeError
    ("formats as text", GOOD_PROFILE.replace('["onnx"]', '"onnx"'), "formats must be a list"),  # was "unknown target 'o'"
    ("an unknown format", GOOD_PROFILE.replace('"onnx"', '"onnx-fp16"'), "not 'onnx-fp16'"),
    ("no reach", GOOD_PROFILE.split("reach")[0], "the profile has no reach"),  # was KeyError: 'reach'
    ("reach as text", GOOD_PROFILE.replace('{ kind = "ssh", host = "pi@lab" }', '"ssh"'), "reach must be a dict"),
    ("ssh without a host", GOOD_PROFILE.replace(', host = "pi@lab"', ""), "a ssh reach needs host"),
    ("port as text", GOOD_PROFILE.replace(' }', ', port = "22" }'), "reach.port = '22'"),
    # name and tuning become folders under devices/tuning, where tuning appends records
    ("a name that is a path", GOOD_PROFILE.replace('"lab-pi"', '"../lab-pi"'), "name must be a plain name"),
    ("tuning outside devices/tuning", GOOD_PROFILE + 'tuning = "../../home"\n', "tuning must be a plain name"),
])
def test_a_malformed_device_profile_is_a_clear_error_naming_the_file(tiny_export, tmp_path, case, text, problem):
    profile = tmp_path / "lab-pi.toml"
    profile.write_text(text)
    result = cli("bench", tiny_export, "--device", profile, "--runs", "2", "--out", tmp_path / "bench")
    assert result.returncode == 2 and str(profile) in result.stderr and problem in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "bench").exists()


# ---- 3. the camera never loses a recording or a whole run silently

def test_camera_recording_to_an_unwritable_place_is_an_error(tiny_export, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    for target in (tmp_path / "missing" / "out.mp4", blocker / "out.mp4", tmp_path):
        result = cli("camera", tiny_export, "--source", SAMPLE / GOLDEN, "--headless", "--max-frames", "2",
                     "--record", target)
        assert result.returncode in (1, 2) and "edgehound: error:" in result.stderr, (target, result.stderr)
        assert "Traceback" not in result.stderr
    good = cli("camera", tiny_export, "--source", SAMPLE / GOLDEN, "--headless", "--max-frames", "3",
               "--record", tmp_path / "ok.mp4")
    assert good.returncode == 0 and (tmp_path / "ok.mp4").stat().st_size > 0


def test_camera_on_only_unreadable_images_fails(tiny_export, tmp_path):
    folder = tmp_path / "broken"
    folder.mkdir()
    for i in range(3):
        (folder / f"{i}.jpg").write_bytes(b"not a jpeg at all")
    result = cli("camera", tiny_export, "--source", folder, "--headless")
    assert result.returncode == 1 and "no frame could be classified" in result.stderr
    gifs = tmp_path / "gifs"
    gifs.mkdir()
    (gifs / "dog.gif").write_bytes(b"GIF89a")
    result = cli("camera", tiny_export, "--source", gifs, "--headless")
    assert result.returncode == 2 and "no images of a supported type" in result.stderr and ".gif" in result.stderr
    zero = cli("camera", tiny_export, "--source", SAMPLE / GOLDEN, "--headless", "--every", "0")
    assert zero.returncode == 2 and "must be at least 1" in zero.stderr and "Traceback" not in zero.stderr


# ---- 4 and 7. a manifest is hostile input too

@pytest.mark.parametrize("file", ["../outside.onnx", "/etc/passwd", "sub/../../outside.onnx"])
def test_manifest_cannot_point_outside_its_folder(tiny_export, tmp_path, file):
    folder = copy_export(tiny_export, tmp_path / "x")
    outside = tmp_path / "outside.onnx"
    shutil.copy(folder / "model.onnx", outside)

    def point_out(m):
        for e in m["artifacts"]:
            if e["name"] == "onnx":
                e["file"] = file
                e["size_bytes"], e["sha256"] = outside.stat().st_size, sha256_file(outside)  # the hash "matches"
        return m

    edit_manifest(folder, point_out)
    with pytest.raises(EdgehoundError, match="outside the export folder"):
        Classifier.load(folder, "onnx")


@pytest.mark.parametrize("case, problem", [("cut short", "not a readable manifest"), ("not UTF-8", "not a readable manifest"),
                                           ("a folder", "not a readable manifest"), ("a list", r"not a manifest \(a JSON list")])
def test_a_json_file_from_outside_is_one_clear_error_naming_it(tmp_path, case, problem):
    """The one reader of manifests, baselines, bench results and pack records (each of its callers was a
    JSONDecodeError, UnicodeDecodeError or TypeError traceback once)."""
    from edgehound.util import read_json_object

    path = tmp_path / "manifest.json"
    if case == "a folder":
        path.mkdir()
    else:
        path.write_bytes({"cut short": b'{"schema": 1, "arti', "not UTF-8": b'{"name": "\xff\xfe"}',
                          "a list": b"[1, 2]"}[case])
    with pytest.raises(EdgehoundError, match=f"^{re.escape(str(path))}: {problem}"):
        read_json_object(path, "manifest")
    with pytest.raises(EdgehoundError, match=f"^--merge {re.escape(str(path))}: "):  # where the file was named
        read_json_object(path, "manifest", where=f"--merge {path}")
    path.rmdir() if path.is_dir() else path.write_text('{"schema": 1}')
    if case != "a folder":
        assert read_json_object(path, "manifest") == {"schema": 1}


@pytest.mark.parametrize("case", ["list", "string entry", "no file", "size as text", "default as a list"])
def test_malformed_manifests_are_clear_errors(tiny_export, tmp_path, case):
    folder = copy_export(tiny_export, tmp_path / "x")
    changes = {
        "list": lambda m: m["artifacts"],
        "string entry": lambda m: {**m, "artifacts": ["onnx"]},
        "no file": lambda m: {**m, "artifacts": [{k: v for k, v in e.items() if k != "file"} for e in m["artifacts"]]},
        "size as text": lambda m: {**m, "artifacts": [{**e, "size_bytes": "big"} for e in m["artifacts"]]},
        "default as a list": lambda m: {**m, "default": ["onnx"]},  # was a TypeError: unhashable type
    }
    edit_manifest(folder, changes[case])
    chosen = [] if case == "default as a list" else ["--artifact", "onnx"]
    result = cli("classify", folder, sample_photos(GOLDEN, 1)[0], *chosen)
    assert result.returncode == 2 and "manifest.json" in result.stderr and "Traceback" not in result.stderr, result.stderr


@pytest.mark.parametrize("case", ["std of zero", "size as text", "classes without names"])
def test_manifest_preprocessing_and_classes_are_checked_before_a_photo_is_read(tiny_export, tmp_path, case):
    folder = copy_export(tiny_export, tmp_path / "x")
    changes = {
        "std of zero": lambda e: {**e, "preprocess": {**e["preprocess"], "std": [0, 0, 0]}},
        "size as text": lambda e: {**e, "preprocess": {**e["preprocess"], "size": "big"}},
        "classes without names": lambda e: {**e, "classes": [{"wnid": c["wnid"]} for c in e["classes"]]},
    }
    edit_manifest(folder, lambda m: {**m, "artifacts": [changes[case](e) for e in m["artifacts"]]})
    result = cli("classify", folder, sample_photos(GOLDEN, 1)[0], "--artifact", "onnx")
    assert result.returncode == 2 and "manifest.json" in result.stderr and "Traceback" not in result.stderr, result.stderr
    assert ("preprocess field" in result.stderr) != (case == "classes without names"), result.stderr


@pytest.mark.parametrize("case", ["meta not JSON", "no classes", "split seed as text", "size as text",
                                  "config of the wrong type"])
def test_malformed_checkpoint_meta_is_a_clear_error_naming_the_file(tiny_run, tmp_path, case):
    import torch

    ckpt = torch.load(tiny_run / "best.pt", weights_only=True)
    meta = json.loads(ckpt["meta"])
    changes = {
        "meta not JSON": lambda: "{not json",
        "no classes": lambda: json.dumps({k: v for k, v in meta.items() if k != "classes"}),
        "split seed as text": lambda: json.dumps({**meta, "split": {**meta["split"], "seed": "zero"}}),
        "size as text": lambda: json.dumps({**meta, "preprocess": {**meta["preprocess"], "size": "big"}}),
        "config of the wrong type": lambda: json.dumps({**meta, "config": {**meta["config"], "model": {"input_size": [1]}}}),
    }
    bad = tmp_path / "bad.pt"
    torch.save({**ckpt, "meta": changes[case]()}, bad)
    for command in (["evaluate", bad, "--data", SAMPLE], ["export", bad, "--out", tmp_path / "out", "--targets", "onnx"]):
        result = cli(*command)
        assert result.returncode == 2 and f"{bad}:" in result.stderr and "Traceback" not in result.stderr, result.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("artifact", ["onnx", "tflite"])
def test_manifest_input_shape_that_is_not_the_files_is_refused(tiny_export, tmp_path, artifact):
    folder = copy_export(tiny_export, tmp_path / "x")

    def grow(m):
        for e in m["artifacts"]:
            e["input"]["shape"] = [d * 2 if isinstance(d, int) and d > 3 else d for d in e["input"]["shape"]]
            e["preprocess"]["size"] *= 2
        return m

    edit_manifest(folder, grow)
    result = cli("classify", folder, sample_photos(GOLDEN, 1)[0], "--artifact", artifact)
    assert result.returncode == 2 and "the manifest does not describe this file" in result.stderr, result.stderr


@pytest.mark.skipif(os.uname().machine != "x86_64", reason="the shipped libraries of other hosts are aarch64 ones")
@pytest.mark.parametrize("artifact", ["tvm-aarch64", "tvm-cuda-sm87"])
def test_a_library_for_another_architecture_is_refused_by_name(artifact):
    # was dlopen's "cannot open shared object file: No such file or directory", of a file that is there
    result = cli("classify", SAMPLE.parents[1] / "runtime" / "models" / "edge", sample_photos(GOLDEN, 1)[0],
                 "--artifact", artifact)
    assert result.returncode == 2 and "built for aarch64" in result.stderr and "this host is x86_64" in result.stderr
    assert "No such file" not in result.stderr, result.stderr


@pytest.mark.skipif(os.uname().machine != "x86_64", reason="uses the shipped x86 and aarch64 libraries")
@pytest.mark.parametrize("library, problem", [
    ("README.md", "not an ELF file"),
    ("runtime/models/edge/model.aarch64.so", "built for aarch64"),
    (_ctypes.__file__, "not a LiteRT external delegate"),  # a loadable library: was a traceback, then another
    # from the half-made delegate's __del__
])
def test_a_delegate_that_is_not_one_is_refused_by_name(library, problem):
    root = SAMPLE.parents[1]
    result = cli("classify", root / "runtime" / "models" / "edge", sample_photos(GOLDEN, 1)[0], "--artifact", "tflite-int8",
                 "--delegate", root / library)
    assert result.returncode == 2 and problem in result.stderr and "Traceback" not in result.stderr, result.stderr


def test_download_checksum_without_a_name_is_a_usage_error(tmp_path):
    result = cli("data", "download", "--root", tmp_path, "--sha256", "deadbeef")
    assert result.returncode == 2 and "expected NAME=HEX" in result.stderr and "Traceback" not in result.stderr


# ---- 5 and 8. images: size limits before decoding, truncation, silly sizes

def png_header_only(width: int, height: int) -> bytes:
    """A PNG that announces width x height: the header a decompression bomb carries."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    idat = zlib.compress(b"\0" * 1024)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)) + \
        chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def test_huge_images_are_refused_before_decoding(tmp_path):
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_header_only(30000, 30000))
    t0 = time.perf_counter()
    with pytest.raises(ImageError, match="900 megapixels, over the limit"):
        load_image(bomb)
    assert time.perf_counter() - t0 < 2  # refused from the header, nothing decoded
    assert MAX_PIXELS == 50_000_000


def test_truncated_jpeg_with_its_end_marker_added_back_is_refused():
    data = sample_photos(GOLDEN, 1)[0].read_bytes()
    assert decode_image(data).shape[2] == 3
    with pytest.raises(ImageError, match="truncated JPEG"):
        decode_image(data[: len(data) * 3 // 4] + b"\xff\xd9")
    with pytest.raises(ImageError, match="truncated JPEG"):
        decode_image(data[: len(data) * 3 // 4])
    grey = cv2.imencode(".jpg", np.full((64, 64, 3), 128, np.uint8))[1].tobytes()
    assert decode_image(grey).shape == (64, 64, 3)  # a flat grey picture is not a truncated one


def test_tiny_images_are_refused(tmp_path, tiny_export):
    one = write_jpeg(tmp_path / "one.jpg", np.full((1, 1, 3), 200, np.uint8))
    with pytest.raises(ImageError, match="too small to classify"):
        load_image(one)
    result = cli("classify", tiny_export, one)
    assert result.returncode == 1 and "too small" in result.stdout


# ---- 9. nothing skipped without a word

def test_classify_names_unsupported_files_and_fails_when_nothing_was_classified(tiny_export, tmp_path):
    folder = tmp_path / "gifs"
    folder.mkdir()
    (folder / "a.gif").write_bytes(b"GIF89a")
    (folder / "b.GIF").write_bytes(b"GIF89a")
    result = cli("classify", tiny_export, folder)
    assert result.returncode == 1 and "a.gif: skipped: not a supported image type" in result.stderr
    assert "b.GIF: skipped" in result.stderr and "0 classified" in result.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    result = cli("classify", tiny_export, empty)
    assert result.returncode == 1 and f"{empty}: no files in this folder" in result.stderr
    # a checkpoint given where an export folder belongs: the error names the file given, not "manifest.json"
    loose = tmp_path / "loose" / "model.pt"
    loose.parent.mkdir()
    loose.write_bytes(b"weights")
    result = cli("classify", loose, empty)
    assert result.returncode == 2 and f"{loose}: no manifest.json beside this file" in result.stderr, result.stderr


# ---- 6 and 10. a killed command leaves the previous good state and no leftovers

def test_killed_reexport_keeps_the_old_export_whole(tiny_run, tiny_export, tmp_path):
    folder = copy_export(tiny_export, tmp_path / "x")
    before = (folder / "manifest.json").read_bytes()
    proc = subprocess.Popen([*edgehound_cmd(), "export", str(tiny_run / "best.pt"), "--out", str(folder),
                             "--targets", "onnx", "onnx-int8", "tflite", "--no-progress"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while not list(folder.glob(".staging.tmp*/model.onnx")):  # the new export is under way
        assert proc.poll() is None and time.monotonic() < deadline, "the export ended before it could be killed"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert (folder / "manifest.json").read_bytes() == before  # the old export is still whole and loads
    for entry in json.loads(before)["artifacts"]:
        if entry["status"] == "ok":
            assert sha256_file(folder / entry["file"]) == entry["sha256"], entry["name"]
    Classifier.load(folder, "onnx-int8").classify(sample_photos(GOLDEN, 1)[0])

    again = cli("export", tiny_run / "best.pt", "--out", folder, "--targets", "onnx", "--no-progress")
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-2000:]
    manifest = json.loads((folder / "manifest.json").read_text())
    assert [e["name"] for e in manifest["artifacts"]] == ["pytorch", "onnx"]
    assert sorted(p.name for p in folder.iterdir()) == ["best.pt", "manifest.json", "model.onnx"]  # old files and leftovers gone


def test_killed_cache_build_leaves_no_temp_file(tmp_path):
    from edgehound.runtime.preprocess import PreprocessSpec
    from edgehound.train.cache import _key, load_cached
    from edgehound.runtime.datasets import read_dataset

    samples = read_dataset(SAMPLE, [GOLDEN, SAMOYED]).samples[:4]
    spec = PreprocessSpec(size=32)
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = tmp_path / f"{_key(samples, spec)}.tmp{dead.pid}.npy"  # what a killed build leaves
    stale.write_bytes(b"half")
    load_cached(samples, spec, tmp_path, progress=False)
    assert not stale.exists() and not list(tmp_path.glob("*.tmp*"))


@pytest.mark.parametrize("damage", ["cut short", "another shape", "meta not JSON"])
def test_a_damaged_photo_cache_is_decoded_again(tmp_path, damage):
    from edgehound.runtime.datasets import read_dataset
    from edgehound.runtime.preprocess import PreprocessSpec
    from edgehound.train.cache import _key, load_cached

    samples = read_dataset(SAMPLE, [GOLDEN, SAMOYED]).samples[:4]
    spec = PreprocessSpec(size=32)
    good = np.array(load_cached(samples, spec, tmp_path, progress=False).images)
    data, meta = (tmp_path / f"{_key(samples, spec)}{suffix}" for suffix in (".npy", ".json"))
    if damage == "cut short":  # was NumPy's ValueError from the memory map
        data.write_bytes(data.read_bytes()[:1000])
    elif damage == "another shape":  # was used as it was: the wrong pixels for every photo
        np.save(data, np.zeros((2, 16, 16, 3), np.uint8))
    else:  # was a JSONDecodeError
        meta.write_text("{ok")
    again = load_cached(samples, spec, tmp_path, progress=False)
    assert np.array_equal(np.array(again.images), good) and again.ok.all()


def test_onnxruntime_profile_folder_is_removed(tiny_export, tmp_path):
    script = f"""
import numpy as np
from edgehound.runtime.backends import load_backend
backend = load_backend("onnxruntime", {str(tiny_export / "model.onnx")!r}, profile=True)
backend.predict(np.zeros((1, 3, 96, 96), np.float32))
assert backend.top_operators()
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            env={**os.environ, "TMPDIR": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    assert not list(tmp_path.glob("edgehound-ort-*"))  # gone once the process ended


# ---- 11. packaging: the Python versions of the devices

def test_python_requirement_matches_what_the_code_imports():
    from edgehound.util import tomllib

    project = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())["project"]
    assert project["requires-python"] == ">=3.10"  # JetPack 6 ships Ubuntu 22.04's Python 3.10
    assert any(d.startswith("tomli") and "python_version < '3.11'" in d for d in project["dependencies"])
    repo = Path(__file__).parents[1]
    direct = [p for p in repo.glob("[!.]*/*.py") if re.search(r"^\s*import tomllib", p.read_text(), re.M)]
    assert direct == [], f"import tomllib through edgehound.util (tomli on 3.10): {direct}"
