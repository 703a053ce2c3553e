"""The on-device runtime: torch-free, same preprocessing as training, classify and camera CLIs."""

import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import cv2
import numpy as np
import pytest

from conftest import GOLDEN, SAMOYED, SAMPLE, edgehound_cmd, sample_photos
from edgehound.runtime.classifier import Classifier
from edgehound.runtime.errors import EdgehoundError

HEAVY = ("torch", "onnx", "tensorflow", "tvm", "litert_torch", "jax")


def test_runtime_never_imports_the_training_stack(tiny_export):
    script = f"""
import sys
from edgehound.runtime.classifier import Classifier
for artifact in ("onnx", "tflite", "tflite-int8"):
    clf = Classifier.load({str(tiny_export)!r}, artifact)
    label, confidence, scores = clf.classify({str(sample_photos(GOLDEN, 1)[0])!r})
    assert label in clf.labels and 0.5 <= confidence <= 1 and abs(scores.sum() - 1) < 1e-5
heavy = sorted(m for m in sys.modules if m.split(".")[0] in {HEAVY!r})
print("HEAVY", heavy)
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "HEAVY []" in result.stdout


def test_runtime_preprocessing_is_trainings(tiny_export, tmp_path):
    from edgehound.runtime.preprocess import normalize
    from edgehound.train.cache import load_cached
    from edgehound.runtime.datasets import read_dataset

    clf = Classifier.load(tiny_export, "onnx")
    samples = read_dataset(SAMPLE, [GOLDEN, SAMOYED]).samples[:12]
    cached = load_cached(samples, clf.spec, tmp_path / "cache", progress=False)
    runtime = np.stack([clf.prepare(s.path) for s in samples])
    assert np.array_equal(np.asarray(cached.images), runtime)
    assert np.array_equal(normalize(np.asarray(cached.images), clf.spec), normalize(runtime, clf.spec))
    bgr = cv2.imread(str(samples[0].path))  # the camera's path: resize the BGR frame, then swap channels
    assert np.array_equal(clf.prepare(bgr)[..., ::-1], runtime[0])
    assert np.array_equal(normalize(clf.prepare(bgr)[None, ..., ::-1], clf.spec), normalize(runtime[:1], clf.spec))


def test_int8_input_straight_from_pixels_is_the_float_paths(tiny_export):
    """A model with int8 input gets its integers from one table lookup per pixel (no float work):
    the same integers the backend makes from the normalised float input, so the same logits."""
    from edgehound.runtime.preprocess import normalize

    clf = Classifier.load(tiny_export, "tflite-int8")
    q = clf.input_quantization
    assert q["dtype"] == "int8" and q["scale"] > 0
    images = np.stack([clf.prepare(p) for p in sample_photos(GOLDEN, 3) + sample_photos(SAMOYED, 3)])
    direct = clf.to_input(images)
    assert direct.dtype == np.int8 and direct.shape == (6, *clf.input_shape[1:])
    from edgehound.runtime.backends import quantize

    as_float = normalize(images, clf.spec)
    assert np.array_equal(direct, quantize(as_float, "int8", q["scale"], q["zero_point"]))
    assert np.array_equal(clf.predict(direct), clf.predict(as_float))
    assert Classifier.load(tiny_export, "onnx").input_quantization is None  # float input: normalised floats


def test_smoothing_follows_a_change_of_scene_within_its_window():
    from edgehound.runtime.camera import Smoother

    a, b, unsure_b = np.array([0.9, 0.1]), np.array([0.1, 0.9]), np.array([0.45, 0.55])
    fps = 30.0
    # no takeover: the label changes once the new scene's frames outweigh the old ones in the window
    s = Smoother(window_s=0.5, takeover=1.0)
    labels = [int(s.update(i / fps, a if i < 30 else unsure_b).argmax()) for i in range(60)]
    switch = labels.index(1, 30)
    assert 30 < switch <= 30 + 0.5 * fps and all(x == 1 for x in labels[switch:])
    # a confident new label takes over on its first frame; an unsure one waits for the window
    s = Smoother(window_s=0.5, takeover=0.6)
    labels = [int(s.update(i / fps, a if i < 30 else b).argmax()) for i in range(40)]
    assert labels[29] == 0 and labels[30] == 1
    # the window is time, not frames: at 10 FPS 0.5 s hold 5 frames, at 30 FPS 15
    for rate, held in ((10.0, 5), (30.0, 15)):
        s = Smoother(window_s=0.5, takeover=1.0)
        for i in range(40):
            s.update(i / rate, a)
        assert len(s.frames) == held
    s = Smoother(window_s=0.0)  # 0: no smoothing, the newest frame alone
    s.update(0.0, a)
    assert np.array_equal(s.update(0.1, unsure_b), unsure_b)


def test_smoothed_label_keeps_up_on_a_video_whose_scene_changes(tmp_path):
    """The issue's video: a new held-out photo every 8 frames at 30 FPS, through the shipped model's
    int8 artifact. Per-frame and smoothed accuracy are both measured; the time window with takeover
    stays within 3 pp of per-frame, where a 0.5 s window without takeover lags behind every change."""
    from edgehound.benchmarks.camera_study import run_camera_process, scene_video, score
    from edgehound.runtime.commands import SHIPPED_MODEL as model  # the camera's default

    labels = [c["name"] for c in Classifier.load(model, "tflite-int8").classes]
    photos = [(p, label) for pair in zip(sample_photos(GOLDEN, 12), sample_photos(SAMOYED, 12))
              for label, p in enumerate(pair)]
    photos = [photos[i] for i in np.random.default_rng(0).permutation(len(photos))]
    truth = scene_video(photos, tmp_path / "scenes.mp4", frames_per_photo=8)
    records, summary = run_camera_process(model, "tflite-int8", tmp_path / "scenes.mp4", [])
    timed = score(records, truth, labels)
    lagging = score(run_camera_process(model, "tflite-int8", tmp_path / "scenes.mp4",
                                       ["--smooth", "0.5", "--takeover", "1"])[0], truth, labels)
    print("per-frame", timed["per_frame_accuracy"], "smoothed", timed["smoothed_accuracy"],
          "0.5 s window without takeover", lagging["smoothed_accuracy"])
    assert timed["frames"] == len(truth) == 192 and summary["frames_classified"] == 192
    assert timed["per_frame_accuracy"] >= 0.8  # held-out photos: the shipped model knows these breeds
    assert timed["smoothed_accuracy"] >= timed["per_frame_accuracy"] - 0.03
    assert lagging["smoothed_accuracy"] < timed["smoothed_accuracy"] - 0.05
    assert summary["peak_rss_mb"] is None or 20 < summary["peak_rss_mb"] < 1000


def test_batch_and_single_agree_and_shapes_are_checked(tiny_export):
    clf = Classifier.load(tiny_export / "manifest.json", "tflite-int8")
    photos = sample_photos(GOLDEN, 3)
    batch = clf.classify_batch(photos)
    single = [clf.classify(p) for p in photos]
    assert [b.label for b in batch] == [s.label for s in single]
    assert np.allclose([b.confidence for b in batch], [s.confidence for s in single], atol=1e-6)
    with pytest.raises(EdgehoundError, match="input shape .* does not match"):
        clf.predict(np.zeros((1, 3, 96, 96), np.float32))  # NCHW into an NHWC artifact


def test_missing_backend_names_what_to_install(tiny_export):
    script = f"""
import sys
sys.modules["ai_edge_litert"] = None
sys.modules["tflite_runtime"] = None
from edgehound.runtime.classifier import Classifier
from edgehound.runtime.errors import EdgehoundError
try:
    Classifier.load({str(tiny_export)!r}, "tflite")
except EdgehoundError as e:
    print("ERROR", e)
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True).stdout
    assert "ERROR the litert backend is not installed" in out and 'edgehound[runtime-tflite]' in out


def test_without_the_picks_backend_the_first_artifact_that_runs_here_is_used_and_named(tiny_export):
    """A Pi with only the runtime-tflite extra: with no --artifact, the manifest's pick (onnx) cannot load, so
    the first of its artifacts whose backend is here answers, and a note says which; --artifact onnx is still
    refused with the install hint, and nothing changes where the pick's backend is installed."""
    photo = str(sample_photos(GOLDEN, 1)[0])

    def classify(*args, blocked=("onnxruntime",)):
        result = subprocess.run([sys.executable, "-c", BLOCK_HEAVY.format(blocked=set(blocked)), "classify",
                                 str(tiny_export), photo, "--json", *args], capture_output=True, text=True, timeout=120)
        return result.returncode, result.stdout, result.stderr

    manifest = json.loads((tiny_export / "manifest.json").read_text())
    assert manifest["default"] == "onnx"
    litert = next(e["name"] for e in manifest["artifacts"] if e["backend"] == "litert" and e["status"] == "ok")
    code, out, err = classify()
    assert code == 0 and f"with {litert} (litert)" in err, err[-2000:]
    assert f"note: onnx (onnxruntime), the manifest's pick, cannot run here: using {litert} (litert)" in err
    assert json.loads(out.splitlines()[-1])["label"] in ("golden retriever", "Samoyed")
    code, _, err = classify("--artifact", "onnx")
    assert code == 2 and 'edgehound[runtime-onnx]' in err and "Traceback" not in err
    code, _, err = classify(blocked=())
    assert code == 0 and "with onnx (onnxruntime)" in err and "note:" not in err


def test_tvm_artifacts_load_tvms_runtime_library_alone():
    """A compiled CPU library runs on TVM's runtime library; the compiler's (libtvm_compiler, 259 MB)
    would double the process's memory on a device. The same logits come out as with the compiler loaded
    (TVM_USE_RUNTIME_LIB=0, the user's choice, is kept), and the variable does not leak to the TVM
    compiles this process may start later."""
    from edgehound.export.tvm_env import tvm_python

    script = """
import json, os, sys
import numpy as np
from edgehound.runtime.classifier import Classifier
clf = Classifier.load("runtime/models/edge", "tvm-x86")
logits = clf.predict(clf.to_input(np.stack([clf.prepare(p) for p in sys.argv[1:]])))
import tvm.base
print(json.dumps({"libs": sorted(tvm.base._LOADED_LIBS), "env": os.environ.get("TVM_USE_RUNTIME_LIB"),
                  "logits": logits.tolist()}))
"""
    photos = [str(p) for p in sample_photos("n02099601", 2) + sample_photos("n02111889", 2)]
    runs = {}
    for setting in (None, "0"):
        env = {k: v for k, v in os.environ.items() if k != "TVM_USE_RUNTIME_LIB"}
        env.update({"TVM_USE_RUNTIME_LIB": setting} if setting else {})
        proc = subprocess.run([tvm_python(), "-c", script, *photos], capture_output=True, text=True, env=env,
                              cwd=SAMPLE.parents[1])
        assert proc.returncode == 0, proc.stderr[-2000:]
        runs[setting] = json.loads(proc.stdout.strip().splitlines()[-1])
    assert runs[None]["libs"] == ["tvm_runtime"] and runs[None]["env"] is None
    assert "tvm_compiler" in runs["0"]["libs"] and runs["0"]["env"] == "0"
    assert np.array_equal(runs[None]["logits"], runs["0"]["logits"]) and np.shape(runs[None]["logits"]) == (4, 2)


def test_classify_cli_reports_unreadable_images_and_goes_on(tiny_export, tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    for p in sample_photos(GOLDEN, 3):
        (folder / p.name).write_bytes(p.read_bytes())
    (folder / "broken.jpg").write_bytes(b"\xff\xd8 garbage")
    result = subprocess.run([*edgehound_cmd(), "classify", str(tiny_export), str(folder), "--json"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(lines) == 4
    bad = [x for x in lines if "error" in x]
    assert len(bad) == 1 and "broken.jpg" in bad[0]["error"]
    good = [x for x in lines if "label" in x]
    assert all(x["label"] in ("golden retriever", "Samoyed") and x["ms"] > 0 for x in good)
    assert "3 classified, 1 unreadable" in result.stderr


def write_video(path, fourcc="mp4v", n_photos=10, repeat=3):
    photos = sample_photos(GOLDEN, n_photos // 2) + sample_photos(SAMOYED, n_photos - n_photos // 2)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), 15, (320, 240))
    for p in photos:
        frame = cv2.resize(cv2.imread(str(p)), (320, 240))
        for _ in range(repeat):
            writer.write(frame)
    writer.release()
    return n_photos * repeat


def camera(tiny_export, source, *extra):
    result = subprocess.run([*edgehound_cmd(), "camera", str(tiny_export), "--source", str(source), "--headless",
                             *extra], capture_output=True, text=True, timeout=120)
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    return result, [x for x in lines if "frame" in x], lines[-1]["summary"]


def test_camera_on_a_video_file_classifies_every_frame_and_records(tiny_export, tmp_path):
    video = tmp_path / "dogs.mp4"
    n = write_video(video)
    record = tmp_path / "annotated.mp4"
    result, frames, summary = camera(tiny_export, video, "--record", str(record))
    assert result.returncode == 0, result.stderr
    assert len(frames) == n == summary["frames_classified"] == summary["frames_read"]
    assert all(f["label"] in ("golden retriever", "Samoyed") for f in frames)
    assert summary["fps"] > 0 and summary["latency_ms"]["p50"] > 0
    assert set(summary["share_of_frame_time"]) == {"wait_for_capture", "preprocess", "inference"}
    recorded = cv2.VideoCapture(str(record))
    assert recorded.isOpened() and int(recorded.get(cv2.CAP_PROP_FRAME_COUNT)) == n

    _, every, summary = camera(tiny_export, video, "--every", "3", "--artifact", "tflite-int8")
    assert len(every) == summary["frames_classified"] == n // 3


def test_camera_gives_up_cleanly_on_a_file_broken_midway(tiny_export, tmp_path):
    video = tmp_path / "dogs.avi"
    n = write_video(video, "MJPG")
    cut = tmp_path / "cut.avi"
    data = video.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    result, frames, summary = camera(tiny_export, cut, "--reconnects", "2")
    assert result.returncode == 1
    assert 0 < len(frames) < n
    assert "source dropped" in result.stderr and "attempt 2/2" in result.stderr
    assert "source lost after 2 reconnect attempts" in summary["error"]
    assert "Traceback" not in result.stderr


def test_camera_reconnects_to_a_stream_that_drops(tiny_export, tmp_path):
    video = tmp_path / "stream.avi"
    n = write_video(video, "MJPG")
    data = video.read_bytes()
    served = []

    class Flaky(BaseHTTPRequestHandler):
        def do_GET(self):  # the first connection breaks halfway, the next one is whole
            body = data[: len(data) // 2] if not served else data
            served.append(len(body))
            self.send_response(200)
            self.send_header("Content-Type", "video/x-msvideo")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            try:
                self.wfile.write(body)
            except OSError:
                pass

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Flaky)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        # a live stream never "ends": it is reconnected until --max-frames
        result, frames, summary = camera(tiny_export, f"http://127.0.0.1:{server.server_address[1]}/dogs.avi",
                                         "--reconnects", "3", "--max-frames", str(n + n // 3))
    finally:
        server.shutdown()
    assert "source dropped" in result.stderr
    assert summary["reconnects"] >= 1 and len(served) >= 2
    assert summary["frames_classified"] == n + n // 3  # the broken first half, then the stream again


@pytest.mark.parametrize("stop", ["SIGINT", "SIGTERM"])  # Ctrl-C, and systemd stopping the service
def test_ctrl_c_ends_the_camera_with_a_summary(tiny_export, tmp_path, stop):
    import signal
    import time

    video = tmp_path / "long.avi"
    write_video(video, "MJPG", n_photos=10, repeat=300)  # 3,000 frames: still running when interrupted
    # a shell's background job inherits SIGINT ignored; a terminal's foreground process does not
    proc = subprocess.Popen([*edgehound_cmd(), "camera", str(tiny_export), "--source", str(video), "--headless"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    first = proc.stdout.readline()  # the loop is running once the first frame is out
    assert json.loads(first)["frame"] == 1
    time.sleep(1)
    proc.send_signal(getattr(signal, stop))
    out, err = proc.communicate(timeout=60)
    summary = json.loads(out.splitlines()[-1])["summary"]
    assert proc.returncode == 0 and summary["interrupted"], err
    assert 0 < summary["frames_classified"] < 3000 and "Traceback" not in err


def test_camera_on_a_folder_and_a_missing_source(tiny_export, tmp_path):
    result, frames, summary = camera(tiny_export, SAMPLE / GOLDEN, "--max-frames", "5")
    assert result.returncode == 0 and len(frames) == 5 == summary["frames_classified"]
    not_a_video = tmp_path / "cam.mp4"
    not_a_video.write_text("not a video")
    for source, problem in (("/nowhere/cam.mp4", "no such camera, file, folder or URL"),
                            (str(not_a_video), "cam.mp4: cannot open: not a video OpenCV's FFmpeg can decode"),
                            ("99", "99: cannot open: no camera at index 99")):
        bad = subprocess.run([*edgehound_cmd(), "camera", str(tiny_export), "--source", source, "--headless"],
                             capture_output=True, text=True)
        assert bad.returncode == 2 and problem in bad.stderr and "Traceback" not in bad.stderr, bad.stderr


def test_camera_labels_are_the_classifiers_and_smoothing_averages(tiny_export, tmp_path):
    """Each frame's label and confidence equal Classifier.classify on the same photo (so the BGR->RGB swap
    and the preprocessing are right). A folder is a slideshow of one photo per second, so --smooth 3
    (with no takeover) is the argmax of the last 3 photos' mean scores."""
    import shutil

    folder = tmp_path / "frames"
    folder.mkdir()
    photos = [p for pair in zip(sample_photos(GOLDEN, 5), sample_photos(SAMOYED, 5)) for p in pair]
    for i, p in enumerate(photos):
        shutil.copy(p, folder / f"{i:02d}.jpg")
    clf = Classifier.load(tiny_export, "onnx")
    expected = [clf.classify(p) for p in sorted(folder.iterdir())]

    _, frames, _ = camera(tiny_export, folder, "--artifact", "onnx", "--smooth", "1")
    assert [f["frame_label"] for f in frames] == [e.label for e in expected]
    assert [f["label"] for f in frames] == [e.label for e in expected]
    assert np.allclose([f["confidence"] for f in frames], [e.confidence for e in expected], atol=2e-4)

    _, frames, _ = camera(tiny_export, folder, "--artifact", "onnx", "--smooth", "3", "--takeover", "1")
    scores = np.array([e.scores for e in expected])
    smoothed = [scores[max(0, i - 2):i + 1].mean(0) for i in range(len(scores))]
    assert [f["label"] for f in frames] == [clf.labels[int(s.argmax())] for s in smoothed]
    assert np.allclose([f["confidence"] for f in frames], [s.max() for s in smoothed], atol=2e-4)


# None in sys.modules is Python's "not installed": import raises ModuleNotFoundError, find_spec says None.
BLOCK_HEAVY = """
import sys
sys.modules.update(dict.fromkeys({blocked!r}))
from edgehound.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize("command", ["classify", "camera"])
def test_runtime_commands_run_where_the_training_stack_cannot_import(tiny_export, command):
    """A device has no torch, onnx, TensorFlow, TVM's compiler, matplotlib or rich: the CLI must not need them."""
    blocked = {"torch", "onnx", "onnxscript", "tensorflow", "tvm", "tvm_ffi", "litert_torch", "matplotlib", "rich",
               "jax"}
    args = {"classify": [str(tiny_export), str(SAMPLE / GOLDEN), "--artifact", "tflite-int8"],
            "camera": [str(tiny_export), "--source", str(SAMPLE / GOLDEN), "--headless", "--max-frames", "3",
                       "--artifact", "onnx"]}[command]
    result = subprocess.run([sys.executable, "-c", BLOCK_HEAVY.format(blocked=blocked), command, *args],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "ModuleNotFoundError" not in result.stderr


FAKE_PICAMERA2 = '''"""A stand-in for picamera2: frames from photos, in the byte order the real one gives for "RGB888"
(B, G, R in memory, as OpenCV expects), and a camera that stops delivering after DROP_AFTER frames."""
import os
import cv2

PHOTOS = os.environ["FAKE_PICAMERA_PHOTOS"].split(os.pathsep)
DROP_AFTER = int(os.environ.get("FAKE_PICAMERA_DROP_AFTER", "0"))


class Picamera2:
    read = 0  # frames delivered by every instance: a reconnect does not revive a dead camera

    def __init__(self):
        pass

    def create_video_configuration(self, main):
        assert main["format"] == "RGB888"
        print("picamera2 asked for", main, file=__import__("sys").stderr)
        return main

    def configure(self, config):
        pass

    def start(self):
        pass

    def capture_array(self):
        Picamera2.read += 1
        if DROP_AFTER and Picamera2.read > DROP_AFTER:
            return None
        return cv2.imread(PHOTOS[(Picamera2.read - 1) % len(PHOTOS)])
'''


def fake_picamera(tmp_path, photos, drop_after=0):
    site = tmp_path / "fake-site"
    site.mkdir(exist_ok=True)
    (site / "picamera2.py").write_text(FAKE_PICAMERA2)
    import os

    path = os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path, "FAKE_PICAMERA_PHOTOS": os.pathsep.join(map(str, photos)),
            "FAKE_PICAMERA_DROP_AFTER": str(drop_after)}


def test_picamera2_frames_are_classified_in_the_right_colour_order(tiny_export, tmp_path):
    photos = sample_photos(GOLDEN, 2) + sample_photos(SAMOYED, 2)
    env = fake_picamera(tmp_path, photos)
    result = subprocess.run([*edgehound_cmd(), "camera", str(tiny_export), "--artifact", "onnx", "--source", "picamera2",
                             "--headless", "--smooth", "0", "--max-frames", "12"],
                            capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    frames, summary = [x for x in lines if "frame" in x], lines[-1]["summary"]
    clf = Classifier.load(tiny_export, "onnx")
    expected = [clf.classify(p) for p in photos]
    for f in frames:  # a live source: the newest frame wins, so frame ids skip; each is still the right photo
        e = expected[(f["frame"] - 1) % len(photos)]
        assert f["frame_label"] == e.label and abs(f["confidence"] - e.confidence) < 2e-4
    ids = [f["frame"] for f in frames]
    assert ids == sorted(ids) and len(set(ids)) == len(ids) == 12
    # the camera is asked for the smallest 4:3 mode that still fills the model's input (tiny: 96 px)
    assert "picamera2 asked for {'format': 'RGB888', 'size': (320, 240)}" in result.stderr
    assert summary["frames_read"] >= summary["frames_classified"] == 12


def test_a_live_source_that_drops_is_reconnected_with_exponential_backoff(tiny_export, tmp_path):
    import time

    env = fake_picamera(tmp_path, sample_photos(GOLDEN, 1), drop_after=2)
    t0 = time.monotonic()
    result = subprocess.run([*edgehound_cmd(), "camera", str(tiny_export), "--source", "picamera2", "--headless",
                             "--reconnects", "3"], capture_output=True, text=True, timeout=120, env=env)
    elapsed = time.monotonic() - t0
    delays = [line.split("reconnecting in ")[1].split(" s")[0] for line in result.stderr.splitlines()
              if "reconnecting in" in line]
    assert delays == ["0.5", "1.0", "2.0"], result.stderr  # 0.5 s doubling, once per attempt
    assert elapsed >= 3.5  # it really waited between attempts
    assert result.returncode == 1 and "source lost after 3 reconnect attempts" in result.stderr


def _report(right: list[bool], classes=("golden retriever", "Samoyed"), start=0) -> dict:
    """A saved report whose photo i is a golden retriever, answered right or wrong."""
    return {"classes": list(classes), "photos": [
        {"photo": f"g/{start + i}.jpg", "true": classes[0], "pred": classes[0 if ok else 1],
         "p": {classes[0]: 0.8 if ok else 0.3, classes[1]: 0.2 if ok else 0.7}} for i, ok in enumerate(right)]}


def test_compare_pairs_two_saved_reports_photo_by_photo(tmp_path):
    # 10 photos only A gets right, 2 only B, 8 both, plus 3 photos only A was scored on
    a = _report([True] * 10 + [False] * 2 + [True] * 8 + [True] * 3)
    b = _report([False] * 10 + [True] * 2 + [True] * 8)
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "cv.json").write_text(json.dumps(a))
    (tmp_path / "b.json").write_text(json.dumps(b))
    out = subprocess.run([*edgehound_cmd(), "compare", str(tmp_path / "a" / "cv.json"), str(tmp_path / "b.json")],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "3 of the 23 photos of" in out.stdout  # left out, said so
    assert "paired on 20 photos: a 90.00%, " in out.stdout  # a cv.json is named by its run folder
    assert "right only by a: 10, only by " in out.stdout
    assert "p = 0.039; a is better" in out.stdout  # 2 * (1 + 12 + 66) / 2**12


@pytest.mark.parametrize("change, problem", [
    (lambda r: r.update(classes=["golden retriever"]), "two or more distinct breed names"),
    (lambda r: r.update(photos=[]), "non-empty list of answers"),
    (lambda r: r["photos"][1].update(true="beagle"), "photos[1]: 'true' is 'beagle'"),
    (lambda r: r["photos"][2].update(photo=r["photos"][0]["photo"]), "photos[2]: photo 'g/0.jpg' is answered twice"),
    (lambda r: r["photos"][0]["p"].update(Samoyed=7), "photos[0]: 'p' does not give each class a probability"),
    (lambda r: r["photos"].append("g/9.jpg"), "photos[3]: not an answer with a photo name"),
])
def test_compare_refuses_a_malformed_report_naming_the_file_and_photo(tmp_path, change, problem):
    good, bad = _report([True, False, True]), _report([True, False, True])
    change(bad)
    (tmp_path / "good.json").write_text(json.dumps(good))
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    out = subprocess.run([*edgehound_cmd(), "compare", str(tmp_path / "good.json"), str(tmp_path / "bad.json")],
                         capture_output=True, text=True)
    assert out.returncode == 2 and f"bad.json: " in out.stderr and problem in out.stderr, out.stderr
    assert "Traceback" not in out.stderr


def test_compare_refuses_reports_of_other_breeds_or_other_photos(tmp_path):
    for name, report in {"pair": _report([True] * 3), "hounds": _report([True] * 3, ("beagle", "English foxhound")),
                         "others": _report([True] * 3, start=10), "text": None}.items():
        (tmp_path / f"{name}.json").write_text(json.dumps(report) if report else "not json")
    for other, problem in (("hounds", "compare reports of the same breeds"), ("others", "no photo is in both"),
                           ("text", "text.json: not a readable report of evaluate --json")):
        out = subprocess.run([*edgehound_cmd(), "compare", str(tmp_path / "pair.json"), str(tmp_path / f"{other}.json")],
                             capture_output=True, text=True)
        assert out.returncode == 2 and problem in out.stderr and "Traceback" not in out.stderr, out.stderr
