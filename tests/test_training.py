"""Training end to end on real photos: exact resume after a kill, corrupt photos, evaluate's report."""

import json
import os
import signal
import subprocess
import time

import torch

from conftest import GOLDEN, SAMOYED, SAMPLE, edgehound_cmd, sample_photos
from edgehound.train import checkpoint

# Small but not instant: each step must take long enough to be killed in the middle of an epoch.
SMALL = ["model.input_size=160", "model.conv_channels=[8, 16, 32, 32, 32]", "model.fc_widths=[16]",
         "train.epochs=2", "train.batch_size=4", "data.augment=true", "model.fc_dropout=0.3"]


def train_cmd(data, out, *extra):
    return [*edgehound_cmd(), "train", "--data", str(data), "--out", str(out), "--config", "tiny",
            "--threads", "1", "--no-progress", "--save-every", "1", "--set", *SMALL, *extra]


def run(cmd, env=None):
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def state_dict(path):
    return checkpoint.load(path)["model"]


def test_killed_training_resumes_exactly(tmp_path):
    env = {**os.environ}
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    run(train_cmd(SAMPLE, straight), env)

    proc = subprocess.Popen(train_cmd(SAMPLE, killed), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 300
    while not (killed / "last.pt").exists():  # the first mid-epoch save
        assert proc.poll() is None and time.monotonic() < deadline, "training ended before it could be killed"
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    state = json.loads(checkpoint.load(killed / "last.pt")["state"])
    assert state["epoch"] == 0 and 0 < state["step"], f"not killed mid-epoch: {state}"
    assert not (killed / "summary.json").exists()

    refused = subprocess.run(train_cmd(SAMPLE, killed), capture_output=True, text=True, env=env)
    assert refused.returncode == 2 and "--resume" in refused.stderr  # never silently overwrites a run

    out = run(train_cmd(SAMPLE, killed, "--resume"), env).stdout
    assert "resuming" in out
    a, b = state_dict(straight / "best.pt"), state_dict(killed / "best.pt")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    metrics = [json.loads(line) for line in (killed / "metrics.jsonl").read_text().splitlines()]
    assert [m["epoch"] for m in metrics] == [1, 2]
    s1, s2 = (json.loads((d / "summary.json").read_text()) for d in (straight, killed))
    assert s1["test"] == s2["test"]
    last_a, last_b = (checkpoint.load(d / "last.pt") for d in (straight, killed))  # the whole training state too
    assert all(torch.equal(last_a["model"][k], last_b["model"][k]) for k in last_a["model"])
    opt_a, opt_b = last_a["optimizer"]["state"], last_b["optimizer"]["state"]
    assert opt_a.keys() == opt_b.keys() and all(torch.equal(opt_a[i]["exp_avg"], opt_b[i]["exp_avg"]) for i in opt_a)
    timing = ("seconds", "images_per_s")  # the only figures a kill may change
    history = [[{k: v for k, v in row.items() if k not in timing} for row in json.loads(x["state"])["history"]]
               for x in (last_a, last_b)]
    assert history[0] == history[1] and [r["train_loss"] for r in history[0]] == [m["train_loss"] for m in metrics]


def test_corrupt_photos_are_skipped_counted_and_named(tmp_path, pair_folder):
    (pair_folder / GOLDEN / "garbage.jpg").write_text("not a jpeg")
    data = sample_photos(SAMOYED, 1)[0].read_bytes()
    (pair_folder / SAMOYED / "truncated.jpg").write_bytes(data[:3000])
    out = tmp_path / "run"
    result = run(train_cmd(pair_folder, out, "--set", "train.epochs=1"))
    assert "2 unreadable photos skipped" in result.stdout
    summary = json.loads((out / "summary.json").read_text())
    assert len(summary["skipped"]) == 2
    assert any("garbage.jpg" in s for s in summary["skipped"]) and any("truncated.jpg" in s for s in summary["skipped"])

    report_path = tmp_path / "eval.json"
    ev = run([*edgehound_cmd(), "evaluate", str(out / "best.pt"), "--data", str(pair_folder), "--json",
              str(report_path), "--no-progress"])
    report = json.loads(report_path.read_text())
    assert report["skipped"] == 2 and report["n"] == 40
    assert "skipped: " in ev.stdout and "garbage.jpg" in ev.stdout


def test_evaluate_scores_only_the_breeds_the_model_knows(tmp_path):
    out = tmp_path / "run"
    run(train_cmd(SAMPLE, out, "--set", "train.epochs=1"))
    report_path = tmp_path / "eval.json"
    result = run([*edgehound_cmd(), "evaluate", str(out / "best.pt"), "--data", str(SAMPLE), "--json",
                  str(report_path), "--no-progress"])
    report = json.loads(report_path.read_text())
    assert set(report) >= {"accuracy", "n", "skipped", "per_class", "confusion"}
    assert report["n"] == 100  # the sample also holds 50 hound photos the model does not know
    assert 0.0 <= report["accuracy"] <= 1.0
    assert set(report["per_class"]) == {"golden retriever", "Samoyed"}
    assert sum(map(sum, report["confusion"])) == 100
    assert "confusion" in result.stdout

    # --split test scores exactly the run's held-out photos, with the training run's own result
    run([*edgehound_cmd(), "evaluate", str(out / "best.pt"), "--data", str(SAMPLE), "--split", "test",
         "--json", str(report_path), "--no-progress"])
    held_out = json.loads(report_path.read_text())
    summary = json.loads((out / "summary.json").read_text())
    assert held_out["n"] == summary["split"]["test"] == 50
    assert held_out["accuracy"] == summary["test"]["accuracy"]
    assert held_out["confusion"] == summary["test"]["confusion"]


def test_bad_inputs_give_one_line_errors(tmp_path):
    truncated = tmp_path / "model.pt"
    truncated.write_bytes(b"PK\x03\x04 not really a checkpoint")
    for cmd, expected in [
        ([*edgehound_cmd(), "evaluate", str(truncated), "--data", str(SAMPLE)], "not a readable edgehound checkpoint"),
        (train_cmd(SAMPLE, tmp_path / "x", "--set", "model.depth=3"), "unknown setting(s) in [model]: depth"),
        ([*edgehound_cmd(), "train", "--data", str(SAMPLE), "--out", str(tmp_path / "y"), "--breeds", "labradoodle"],
         "unknown breed 'labradoodle'"),
    ]:
        result = subprocess.run(cmd, capture_output=True, text=True)
        assert result.returncode == 2, result.stderr
        assert expected in result.stderr and "Traceback" not in result.stderr


def test_every_command_has_help():
    for args in (["--help"], ["data", "--help"], ["data", "info", "--help"], ["data", "download", "--help"],
                 ["train", "--help"], ["evaluate", "--help"]):
        result = subprocess.run([*edgehound_cmd(), *args], capture_output=True, text=True)
        assert result.returncode == 0 and "usage: edgehound" in result.stdout
