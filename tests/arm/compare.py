"""Compare the emulated Pi's outputs with this host's: labels identical, logits within tolerance.

    python tests/arm/compare.py runs/arm runtime/models/efficient

Reads OUT/arm and OUT/x86 (written by tests/arm/commands.sh), writes OUT/summary.json and prints
one line per artifact. Exit 1 when any label differs or a logit is out of tolerance. The tolerance
is the artifact's export parity tolerance (fp32); int8 artifacts, which have none, get INT8_TOLERANCE.
The TVM row compares the aarch64 library there with the x86 one here (both fp32, same graph).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

INT8_TOLERANCE = 0.05  # logits; the same int8 graph should agree across CPUs up to rounding
X86_NAME = {"tvm-aarch64": "tvm-x86"}


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def compare(out: Path, manifest: dict) -> list[dict]:
    tolerances = {e["name"]: (e.get("parity") or {}).get("tolerance") for e in manifest["artifacts"]}
    rows = []
    for arm_file in sorted((out / "arm").glob("classify-*.jsonl")):
        name = arm_file.stem.removeprefix("classify-")
        x86 = X86_NAME.get(name, name)
        tolerance = tolerances.get(x86) or INT8_TOLERANCE
        arm_lines = {Path(r["path"]).name: r for r in read_jsonl(arm_file)}
        x86_lines = {Path(r["path"]).name: r for r in read_jsonl(out / "x86" / f"classify-{x86}.jsonl")}
        same_photos = arm_lines.keys() == x86_lines.keys()
        shared = sorted(arm_lines.keys() & x86_lines.keys())
        label_diff = [p for p in shared if arm_lines[p]["label"] != x86_lines[p]["label"]]
        logit_diff = max((abs(a - b) for p in shared for a, b in zip(arm_lines[p]["logits"], x86_lines[p]["logits"])),
                         default=float("inf"))
        arm_eval = json.loads((out / "arm" / f"evaluate-{name}.json").read_text())
        x86_eval = json.loads((out / "x86" / f"evaluate-{x86}.json").read_text())
        arm_cam = [r for r in read_jsonl(out / "arm" / f"camera-{name}.jsonl") if "frame" in r]
        x86_cam = [r for r in read_jsonl(out / "x86" / f"camera-{x86}.jsonl") if "frame" in r]
        camera_same = [r["label"] for r in arm_cam] == [r["label"] for r in x86_cam] and len(arm_cam) > 0
        ok = (same_photos and not label_diff and logit_diff <= tolerance and camera_same
              and arm_eval["confusion"] == x86_eval["confusion"])
        rows.append({"artifact": name, "x86_artifact": x86, "photos": len(shared), "labels_differ": label_diff,
                     "max_abs_logit_diff": logit_diff, "tolerance": tolerance,
                     "accuracy_arm": arm_eval["accuracy"], "accuracy_x86": x86_eval["accuracy"],
                     "confusion_identical": arm_eval["confusion"] == x86_eval["confusion"],
                     "camera_frames": len(arm_cam), "camera_labels_identical": camera_same, "ok": ok})
    return rows


def main(argv: list[str]) -> int:
    out, model = Path(argv[0]), Path(argv[1])
    manifest = json.loads((model / "manifest.json").read_text())
    rows = compare(out, manifest)
    seconds = {}
    for where in ("arm", "x86"):
        path = out / where / "seconds.txt"
        for line in path.read_text().splitlines() if path.exists() else []:
            name, s = line.split()
            seconds.setdefault(name, {})[where] = int(s)
    for row in rows:
        row["seconds"] = {"emulated_arm": seconds.get(row["artifact"], {}).get("arm"),
                          "x86": seconds.get(row["x86_artifact"], {}).get("x86")}
        print(f"{row['artifact']:<12} vs x86 {row['x86_artifact']:<12} {row['photos']} photos, "
              f"{len(row['labels_differ'])} labels differ, max |logit diff| {row['max_abs_logit_diff']:.2e} "
              f"(tolerance {row['tolerance']:g}), accuracy {row['accuracy_arm']:.4f} vs {row['accuracy_x86']:.4f}, "
              f"camera {row['camera_frames']} frames {'same' if row['camera_labels_identical'] else 'DIFFERENT'}, "
              f"{row['seconds']['emulated_arm']} s emulated: {'ok' if row['ok'] else 'MISMATCH'}")
    (out / "summary.json").write_text(json.dumps({"timings": "emulated (qemu-user), not device figures",
                                                  "rows": rows}, indent=2) + "\n")
    return 0 if rows and all(r["ok"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
