"""The camera loop on a video with known labels: where the frame time goes, peak memory, and how
often the per-frame and the smoothed label are right when the scene changes.

    python -m edgehound.benchmarks.camera_study runtime/models/efficient --artifact tflite-int8 \\
        --data ../shared/data/imagewoof2-320 --photos 100 --frames-per-photo 8 --out runs/camera-study

The video shows held-out photos (the test part of the model's training split, read from its
checkpoint) one after the other, each for --frames-per-photo frames at 30 FPS (640x480 unless
--frame-size says otherwise), as a camera panning from dog to dog would. `edgehound camera
--headless` runs on it in its own process (it reports its own peak RSS), and every JSON line is
scored against the photo on screen. The summary goes to OUT/summary.json.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np

from edgehound.runtime.errors import EdgehoundError
from edgehound.runtime.manifest import read_manifest
from edgehound.runtime.preprocess import load_image
from edgehound.util import at_least, atomic_write_json, folder

FPS = 30.0


def scene_video(photos: list[tuple[Path, int]], path: Path, frames_per_photo: int, noise: float = 0.0,
                size: tuple[int, int] = (640, 480), seed: int = 0) -> list[int]:
    """Write the photos as a video of `size`, each for frames_per_photo frames, with Gaussian noise of
    standard deviation `noise` (in 0-255 pixel units) drawn anew for every frame, as a camera's sensor
    adds it; returns the true class per frame."""
    rng = np.random.default_rng(seed)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), FPS, size)
    if not writer.isOpened():
        raise EdgehoundError(f"{path}: this OpenCV cannot write mp4v video")
    truth = []
    for photo, label in photos:
        frame = cv2.resize(cv2.cvtColor(load_image(photo), cv2.COLOR_RGB2BGR), size, interpolation=cv2.INTER_AREA)
        for _ in range(frames_per_photo):
            noisy = frame if not noise else np.clip(frame + rng.normal(0, noise, frame.shape), 0, 255).astype(np.uint8)
            writer.write(noisy)
            truth.append(label)
    writer.release()
    return truth


def held_out_photos(model: Path, data: Path, count: int, part: str = "test", seed: int = 0
                    ) -> tuple[list[tuple[Path, int]], list[str]]:
    """`count` photos of one part of the model's split, shuffled so that the breed changes at random."""
    from edgehound.train.checkpoint import load_model
    from edgehound.runtime.datasets import split_samples

    manifest, folder = read_manifest(model)
    _, meta = load_model(folder / Path(manifest["model"]["checkpoint"]).name)
    wnids = [c["wnid"] for c in meta["classes"]]
    samples = split_samples(meta["split"], wnids, part, data)
    order = np.random.default_rng(seed).permutation(len(samples))[:count]
    return [(samples[i].path, wnids.index(samples[i].wnid)) for i in order], [c["name"] for c in meta["classes"]]


def run_camera_process(model: Path, artifact: str, video: Path, extra: list[str]) -> tuple[list[dict], dict]:
    """`edgehound camera --headless` on the video: its JSON lines and its summary."""
    cmd = [sys.executable, "-m", "edgehound.cli", "camera", str(model), "--artifact", artifact, "--source", str(video),
           "--headless", *extra]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        raise EdgehoundError(f"{' '.join(cmd)} failed: {result.stderr.strip()[-500:]}")
    records = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    return records, records.pop()["summary"]


def score(records: list[dict], truth: list[int], labels: list[str]) -> dict:
    frame_right = [labels.index(r["frame_label"]) == truth[r["frame"] - 1] for r in records]
    smoothed_right = [labels.index(r["label"]) == truth[r["frame"] - 1] for r in records]
    return {"frames": len(records), "per_frame_accuracy": round(float(np.mean(frame_right)), 4),
            "smoothed_accuracy": round(float(np.mean(smoothed_right)), 4)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model", type=Path, help="an export folder with the checkpoint it was exported from")
    p.add_argument("--artifact", default="tflite-int8")
    p.add_argument("--data", type=Path, required=True, help="the dataset the model was trained on")
    p.add_argument("--photos", type=at_least(1), default=100)
    p.add_argument("--part", choices=("val", "test"), default="test",
                   help="which part of the split to show: choose camera settings on val, report on test")
    p.add_argument("--frames-per-photo", type=at_least(1), default=8)
    p.add_argument("--noise", type=float, default=0.0, help="sensor noise per frame, standard deviation in pixel units")
    p.add_argument("--frame-size", default="640x480", help="WxH of the video's frames (what the camera delivers)")
    p.add_argument("--out", type=folder, required=True)
    p.add_argument("--camera-args", default="", help="extra arguments for `edgehound camera`, e.g. '--smooth 0.3'")
    a = p.parse_args(argv)
    a.out.mkdir(parents=True, exist_ok=True)
    photos, labels = held_out_photos(a.model, a.data, a.photos, a.part)
    video = a.out / "scenes.mp4"
    size = tuple(int(v) for v in a.frame_size.split("x"))
    truth = scene_video(photos, video, a.frames_per_photo, a.noise, size)
    records, summary = run_camera_process(a.model, a.artifact, video, a.camera_args.split())
    result = {"model": str(a.model), "artifact": a.artifact, "part": a.part,
              "video": {"photos": len(photos), "frames": len(truth),
              "frames_per_photo": a.frames_per_photo, "noise": a.noise, "fps": FPS, "size": list(size)},
              **score(records, truth, labels), "peak_rss_mb": summary.get("peak_rss_mb"),
              "camera_args": a.camera_args, "summary": summary}
    atomic_write_json(a.out / "summary.json", result)
    print(json.dumps({k: v for k, v in result.items() if k != "summary"}))
    print(json.dumps({k: summary[k] for k in ("fps", "mean_ms", "share_of_frame_time")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
