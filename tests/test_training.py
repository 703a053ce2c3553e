"""Training end to end on real photos: exact resume after a kill, corrupt photos, evaluate's report."""

import json
import os
import shutil
import signal
import subprocess
import time

import numpy as np
import pytest
import torch

from conftest import GOLDEN, SAMOYED, SAMPLE, edgehound_cmd, sample_photos
from edgehound.train import checkpoint
from edgehound.util import sha256_file

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
    timing = ("seconds", "images_per_s", "waiting_s")  # the only figures a kill may change
    history = [[{k: v for k, v in row.items() if k not in timing} for row in json.loads(x["state"])["history"]]
               for x in (last_a, last_b)]
    assert history[0] == history[1] and [r["train_loss"] for r in history[0]] == [m["train_loss"] for m in metrics]


def test_resume_on_a_run_not_yet_begun_starts_it_from_init(tmp_path, tiny_run):
    """A script that always passes --resume (so that a rerun continues) must not lose --init on the first run."""
    fresh, resumed = tmp_path / "fresh", tmp_path / "resumed"
    init = ["--init", str(tiny_run / "best.pt"), "--set", "train.epochs=1"]
    run(train_cmd(SAMPLE, fresh, *init))
    out = run(train_cmd(SAMPLE, resumed, *init, "--resume")).stdout
    assert "tensors initialised" in out and "resuming" not in out
    a, b = state_dict(fresh / "best.pt"), state_dict(resumed / "best.pt")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_a_sealed_run_scores_no_test_photo_until_asked(tmp_path):
    """--seal-test: a candidate whose figures must not be seen before a choice gets no test figure at the end;
    the test part is scored once, later, by evaluate on the same split."""
    out = run(train_cmd(SAMPLE, tmp_path / "sealed", "--set", "train.epochs=1", "--seal-test")).stdout
    assert "test split: sealed, not scored" in out and "accuracy" not in out.split("test split:")[1]
    summary = json.loads((tmp_path / "sealed" / "summary.json").read_text())
    assert summary["test_sealed"] is True and summary["test"] is None and summary["test_flip"] is None
    report = tmp_path / "test.json"
    run([*edgehound_cmd(), "evaluate", str(tmp_path / "sealed" / "best.pt"), "--data", str(SAMPLE), "--split", "test",
         "--no-progress", "--json", str(report)])
    assert json.loads(report.read_text())["n"] == summary["split"]["test"] > 0


def test_worker_processes_augment_the_same_pixels_in_every_epoch(tmp_path):
    """--workers 2 (persistent: started once, then handed each epoch's batches) ends with the weights of a
    run that augments in its own process: the same draws, epoch after epoch."""
    run(train_cmd(SAMPLE, tmp_path / "none"))
    out = run(train_cmd(SAMPLE, tmp_path / "two", "--workers", "2")).stdout
    assert "2 workers" in out
    a, b = state_dict(tmp_path / "none" / "last.pt"), state_dict(tmp_path / "two" / "last.pt")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    history = [json.loads((tmp_path / d / "metrics.jsonl").read_text().splitlines()[-1]) for d in ("none", "two")]
    assert history[0]["epoch"] == history[1]["epoch"] == 2 and history[0]["train_loss"] == history[1]["train_loss"]
    # the time blocked on the loader is counted within the epoch's time (augmenting in-process counts too)
    assert all(0 < row["waiting_s"] <= row["seconds"] for row in history)
    assert "waiting for photos" in out


def test_a_compiled_model_computes_the_eager_models_step_with_the_same_dropout():
    """torch.compile changes kernels, not the function: with dropout on and the same seed, the same output
    and gradients, to float rounding (an inductor that drew its own masks would train another model)."""
    from edgehound.train.config import load_config
    from edgehound.train.model import build_model
    from edgehound.train.trainer import _compiled
    model = build_model(load_config("tiny", ["model.fc_dropout=0.5"]).model, 2).train()
    x = torch.randn(4, 3, 64, 64)
    grads = []
    for m in (model, _compiled(model)):
        model.zero_grad()
        torch.manual_seed(1)
        out = m(x)
        out.square().sum().backward()
        grads.append((out.detach(), [p.grad.clone() for p in model.parameters()]))
    (eager_out, eager_grads), (compiled_out, compiled_grads) = grads
    assert torch.allclose(eager_out, compiled_out, atol=1e-5)
    assert all(torch.allclose(a, b, rtol=1e-3, atol=1e-5) for a, b in zip(eager_grads, compiled_grads))


def test_a_compiled_run_saves_the_model_it_trained_under_plain_names(tmp_path, tiny_run):
    """--compile (for GPUs): the saved weights are the trained ones, under the model's own parameter names
    (not the compiled wrapper's `_orig_mod.`), loadable without compiling; the teacher is compiled too."""
    from edgehound.train.config import load_config
    from edgehound.train.model import build_model
    teacher = ["--teacher", str(tiny_run / "best.pt")]
    run(train_cmd(SAMPLE, tmp_path / "eager", *teacher))
    out = run(train_cmd(SAMPLE, tmp_path / "compiled", *teacher, "--compile")).stdout
    assert "teacher" in out
    eager, compiled = state_dict(tmp_path / "eager" / "last.pt"), state_dict(tmp_path / "compiled" / "last.pt")
    assert compiled.keys() == eager.keys()
    torch.manual_seed(0)  # the weights both runs started from, as the trainer draws them
    init = build_model(load_config("tiny", SMALL).model, 2).state_dict()
    learnt = [k for k in eager if k.endswith(("weight", "bias"))]
    moved = [sum(float((w[k] - init[k]).norm()) for k in learnt) for w in (eager, compiled)]
    # AdamW at batch 4 turns rounding into other weights (apart by 0.04 to 0.5 of the movement, seeds 1 to 3),
    # but as far from the start (measured: 1.001 to 1.005 times); weights left untrained would be 0 times
    assert moved[0] > 1 and 0.9 < moved[1] / moved[0] < 1.1
    losses = [[json.loads(line)["train_loss"] for line in (tmp_path / d / "metrics.jsonl").read_text().splitlines()]
              for d in ("eager", "compiled")]
    assert len(losses[1]) == 2 and all(abs(a - b) < 0.01 for a, b in zip(*losses))  # measured: at most 0.001
    model, _ = checkpoint.load_model(tmp_path / "compiled" / "best.pt")
    assert next(model.parameters()).device.type == "cpu"
    a, b = (json.loads((tmp_path / d / "summary.json").read_text()) for d in ("eager", "compiled"))
    assert (a["compiled"], b["compiled"]) == (False, True)


def test_photos_augmented_on_the_device_train_the_same_way_twice(tmp_path):
    """--augment-on device (the GPU path, run here on the CPU): the whole cache on the device, the same draws
    as OpenCV's workers make, drawn in this process or in worker processes alike; a run repeats exactly, and
    learns from the photos as OpenCV's run does."""
    out = run(train_cmd(SAMPLE, tmp_path / "a", "--augment-on", "device")).stdout
    assert "photos augmented on the device" in out
    assert "2 workers" in run(train_cmd(SAMPLE, tmp_path / "b", "--augment-on", "device", "--workers", "2")).stdout
    run(train_cmd(SAMPLE, tmp_path / "workers"))
    a, b, w = (state_dict(tmp_path / d / "last.pt") for d in ("a", "b", "workers"))
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], w[k]) for k in a)  # pixels a level apart: not the same weights
    rows = [[json.loads(line) for line in (tmp_path / d / "metrics.jsonl").read_text().splitlines()] for d in ("a", "workers")]
    # the same photos, draws and dropout: the first epoch's training loss barely differs (a level or two a pixel)
    assert abs(rows[0][0]["train_loss"] - rows[1][0]["train_loss"]) < 0.02
    assert json.loads((tmp_path / "a" / "summary.json").read_text())["augment_on"] == "device"


def test_batches_are_normalised_on_the_device_to_the_runtimes_numbers():
    """Workers hand over uint8 photos; to_input must give, bit for bit, what the runtime's normalize gives
    (a model trained on one and run on the other would otherwise see other inputs), in channels-last memory."""
    from edgehound.runtime.preprocess import PreprocessSpec, normalize
    from edgehound.train.trainer import to_input
    spec = PreprocessSpec(size=8, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))
    photos = np.random.default_rng(0).integers(0, 256, (3, 8, 8, 3), dtype=np.uint8)
    x = to_input(torch.from_numpy(photos), spec, torch.device("cpu"))
    assert x.dtype == torch.float32 and x.shape == (3, 3, 8, 8) and x.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(x, torch.from_numpy(normalize(photos, spec)))


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

    # --split val scores the photos that chose its epochs, as training scored them
    out_text = run([*edgehound_cmd(), "evaluate", str(out / "best.pt"), "--data", str(SAMPLE), "--split", "val",
                    "--json", str(report_path), "--no-progress"]).stdout
    val = json.loads(report_path.read_text())
    assert val["n"] == summary["split"]["val"] > 0 and val["split"] == "val" and out_text.startswith("val part")
    assert val["accuracy"] == json.loads(checkpoint.load(out / "best.pt")["meta"])["val_acc"]


def test_bad_inputs_give_one_line_errors(tmp_path):
    truncated = tmp_path / "model.pt"
    truncated.write_bytes(b"PK\x03\x04 not really a checkpoint")
    for cmd, expected in [
        ([*edgehound_cmd(), "evaluate", str(truncated), "--data", str(SAMPLE)], "not a readable edgehound checkpoint"),
        (train_cmd(SAMPLE, tmp_path / "x", "--set", "model.depth=3"), "unknown setting(s) in [model]: depth"),
        ([*edgehound_cmd(), "train", "--data", str(SAMPLE), "--out", str(tmp_path / "y"), "--breeds", "labradoodle"],
         "unknown breed 'labradoodle'"),
        # settings of the wrong type or range: refused when the config is read (these were tracebacks
        # from PreprocessSpec, the optimizer or a division by the batch size)
        (train_cmd(SAMPLE, tmp_path / "z", "--set", "train.logit_adjust=-1"), "train.logit_adjust = -1: expected 0 or more"),
        (train_cmd(SAMPLE, tmp_path / "z", "--set", "data.crop=middle"), "data.crop = 'middle': expected one of center, none"),
        (train_cmd(SAMPLE, tmp_path / "z", "--set", "train.epochs=ten"), "train.epochs = 'ten': expected int"),
        (train_cmd(SAMPLE, tmp_path / "z", "--set", "train.lr=0"), "train.lr = 0: expected more than 0"),
        (train_cmd(SAMPLE, tmp_path / "z", "--set", "train.batch_size=0"), "train.batch_size = 0: expected 1 or more"),
        (train_cmd(SAMPLE, tmp_path / "z", "--set", "model.input_size=100000"), "preprocess field 'size'"),
    ]:
        result = subprocess.run(cmd, capture_output=True, text=True)
        assert result.returncode == 2, result.stderr
        assert expected in result.stderr and "Traceback" not in result.stderr, result.stderr
    assert not (tmp_path / "z").exists()  # refused before the run folder was made


def test_every_command_has_help():
    for args in (["--help"], ["data", "--help"], ["data", "info", "--help"], ["data", "download", "--help"],
                 ["train", "--help"], ["evaluate", "--help"]):
        result = subprocess.run([*edgehound_cmd(), *args], capture_output=True, text=True)
        assert result.returncode == 0 and "usage: edgehound" in result.stdout


# The small-data recipe on the edge family: random-resized crop, mixup or CutMix per batch, a moving
# average of the weights, and a teacher (the tiny model: another input size, same crop).
RECIPE = ["model.input_size=64", "model.conv_channels=[8, 16, 16, 24, 32]", "train.epochs=2", "train.batch_size=4",
          "data.use_boxes=false", "data.crop=center", "train.mixup=0.2", "train.cutmix=1.0", "train.ema=0.9"]


def recipe_cmd(data, out, teacher, *extra):
    return [*edgehound_cmd(), "train", "--data", str(data), "--out", str(out), "--config", "edge", "--threads", "1",
            "--no-progress", "--save-every", "1", "--teacher", str(teacher), "--set", *RECIPE, *extra]


def test_distilled_recipe_run_resumes_exactly_and_loads_on_the_cpu(tmp_path, tiny_run):
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    first = run(recipe_cmd(SAMPLE, straight, tiny_run / "best.pt")).stdout
    assert "teacher" in first and "(mobilenet)" in first
    proc = subprocess.Popen(recipe_cmd(SAMPLE, killed, tiny_run / "best.pt"), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 300
    while not (killed / "last.pt").exists():
        assert proc.poll() is None and time.monotonic() < deadline, "training ended before it could be killed"
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert json.loads(checkpoint.load(killed / "last.pt")["state"])["epoch"] == 0
    refused = subprocess.run(recipe_cmd(SAMPLE, killed, straight / "best.pt", "--resume"), capture_output=True, text=True)
    assert refused.returncode == 2 and "another --teacher" in refused.stderr
    run(recipe_cmd(SAMPLE, killed, tiny_run / "best.pt", "--resume"))
    for name in ("best.pt", "last.pt"):
        a, b = (checkpoint.load(d / name) for d in (straight, killed))
        assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    ema_a, ema_b = (checkpoint.load(d / "last.pt")["ema"] for d in (straight, killed))
    assert all(torch.equal(ema_a[k], ema_b[k]) for k in ema_a)
    # best.pt holds the moving average (what was validated), not the raw weights
    best, last = checkpoint.load(straight / "best.pt"), checkpoint.load(straight / "last.pt")
    assert not all(torch.equal(best["model"][k], last["model"][k]) for k in best["model"])
    model, meta = checkpoint.load_model(straight / "best.pt")
    assert meta["teacher"]["sha256"] and next(model.parameters()).device.type == "cpu"
    assert meta["epoch"] == 2  # the edge config keeps the last epoch, not the luckiest validation score
    summary = json.loads((straight / "summary.json").read_text())
    assert summary["device"] == "cpu" and 0 <= summary["test_flip"]["accuracy"] <= 1


def test_an_ensemble_teacher_teaches_the_mean_of_its_members_logits(tmp_path, tiny_run):
    from edgehound.runtime.breeds import resolve_breed
    from edgehound.runtime.preprocess import PreprocessSpec
    from edgehound.train.trainer import Teacher

    a, b = tiny_run / "best.pt", tmp_path / "other.pt"
    ckpt = checkpoint.load(a)
    torch.save({**ckpt, "model": {k: v * 0.5 if v.is_floating_point() else v for k, v in ckpt["model"].items()}}, b)
    meta = json.loads(ckpt["meta"])
    spec, classes = PreprocessSpec.from_dict(meta["preprocess"]), [resolve_breed(c["wnid"]) for c in meta["classes"]]
    x = torch.randn(3, 3, 80, 80)  # another size than the teachers' own: each resizes it
    one, two, both = (Teacher(paths, classes, spec, torch.device("cpu")) for paths in ([a], [b], [a, b]))
    assert not torch.allclose(one.logits(x), two.logits(x))
    assert torch.allclose(both.logits(x), (one.logits(x) + two.logits(x)) / 2, atol=1e-5)
    assert one.digest == sha256_file(a)  # a one-teacher run from before ensembles still resumes
    assert len({one.digest, two.digest, both.digest}) == 3
    out = tmp_path / "run"
    cmd = recipe_cmd(SAMPLE, out, a)
    cmd.insert(cmd.index("--set"), str(b))  # --teacher a b
    run(cmd)
    recorded = json.loads(checkpoint.load(out / "best.pt")["meta"])["teacher"]
    assert recorded["sha256"] == both.digest and [m["path"] for m in recorded["members"]] == [str(a), str(b)]


def test_evaluate_scores_an_ensemble_by_its_members_mean_logits(tmp_path, tiny_run):
    """evaluate MODEL --ensemble OTHER...: each photo's answer is the argmax of the members' mean logits (what a
    student distilled from those teachers learns from); members answering otherwise are refused."""
    from edgehound.runtime.classifier import Classifier
    from edgehound.runtime.preprocess import preprocess
    from edgehound.runtime.datasets import read_dataset, photo_key
    from edgehound.train.checkpoint import checkpoint_artifact

    a, b, swapped = tiny_run / "best.pt", tmp_path / "b.pt", tmp_path / "swapped.pt"
    ckpt = checkpoint.load(a)
    torch.save({**ckpt, "model": {k: v * 1.5 if v.is_floating_point() else v for k, v in ckpt["model"].items()}}, b)
    meta = json.loads(ckpt["meta"])
    torch.save({**ckpt, "meta": json.dumps({**meta, "classes": meta["classes"][::-1]})}, swapped)
    out = run([*edgehound_cmd(), "evaluate", str(a), "--data", str(SAMPLE), "--ensemble", str(b), "--no-progress",
               "--json", str(tmp_path / "ens.json")]).stdout
    assert "ensemble of 2 models" in out
    report = json.loads((tmp_path / "ens.json").read_text())
    assert report["ensemble"] == [str(b)] and report["n"] == 100
    members = [Classifier(checkpoint_artifact(str(p))) for p in (a, b)]
    samples = {photo_key(s): s for s in read_dataset(SAMPLE).samples}
    photos = [p["photo"] for p in report["photos"]]
    x = np.stack([preprocess(samples[k].path, members[0].spec, samples[k].box) for k in photos])
    logits = [m.predict(x) for m in members]
    names = report["classes"]
    assert [p["pred"] for p in report["photos"]] == [names[i] for i in ((logits[0] + logits[1]) / 2).argmax(1)]
    assert (logits[0].argmax(1) != ((logits[0] + logits[1]) / 2).argmax(1)).any()  # not one member's answers
    refused = subprocess.run([*edgehound_cmd(), "evaluate", str(a), "--data", str(SAMPLE), "--ensemble", str(swapped)],
                             capture_output=True, text=True)
    assert refused.returncode == 2 and "(in that order)" in refused.stderr and "Traceback" not in refused.stderr


def test_an_ensemble_file_answers_with_its_members_mean_and_exports_whole(tmp_path, tiny_run):
    """edgehound ensemble A B: one model file whose logits are the members' mean, MACs their sum, each member's
    sha256 recorded; it exports as one graph (onnx and tflite-int8 checked against it), and models that answer
    otherwise, trained on another split, or are ensembles themselves are refused in one line."""
    from edgehound.benchmarks.saliency import gradcam
    from edgehound.train.model import count_macs

    a, b, ens = tiny_run / "best.pt", tmp_path / "b.pt", tmp_path / "ens.pt"
    ckpt = checkpoint.load(a)
    torch.save({**ckpt, "model": {k: v * 1.5 if v.is_floating_point() else v for k, v in ckpt["model"].items()}}, b)
    printed = run([*edgehound_cmd(), "ensemble", str(a), str(b), "--out", str(ens)]).stdout
    (one, meta), (two, _), (both, both_meta) = (checkpoint.load_model(p) for p in (a, b, ens))
    x = torch.randn(4, 3, 96, 96)
    with torch.no_grad():
        assert torch.allclose(both(x), (one(x) + two(x)) / 2, atol=1e-5)
        assert not torch.allclose(both(x), one(x), atol=1e-3)
    assert count_macs(both, 96)[0] == 2 * count_macs(one, 96)[0]
    assert f"{2 * count_macs(one, 96)[0] / 1e6:.1f} MMACs" in printed
    assert [m["sha256"] for m in both_meta["ensemble"]] == [sha256_file(a), sha256_file(b)]
    assert both_meta["split"] == meta["split"] and both_meta["classes"] == meta["classes"]

    exported = tmp_path / "export"
    run([*edgehound_cmd(), "export", str(ens), "--out", str(exported), "--targets", "onnx", "tflite-int8", "--no-progress"])
    manifest = json.loads((exported / "manifest.json").read_text())
    assert manifest["model"]["macs"] == 2 * count_macs(one, 96)[0]
    assert [m["sha256"] for m in manifest["model"]["ensemble"]] == [sha256_file(a), sha256_file(b)]
    built = {e["name"]: e for e in manifest["artifacts"]}
    assert built["onnx"]["status"] == "ok" and built["onnx"]["parity"]["max_abs_logit_diff"] < 1e-4
    assert built["tflite-int8"]["status"] == "ok"
    from edgehound.benchmarks.card import render

    assert "an ensemble of 2 `tiny` models" in render(exported)  # the card says what runs on the device
    doc = json.loads((exported / "manifest.json").read_text())  # a member fine-tuned and distilled: the card says from what
    doc["model"]["ensemble"][1].update(init={"path": "runs/x/pair.pt", "sha256": "a" * 64, "trained_on": ["a", "b", "c"]},
                                       teacher={"path": "runs/t/best.pt", "sha256": "b" * 64})
    (exported / "manifest.json").write_text(json.dumps(doc))
    listed = [line for line in render(exported).splitlines() if line.startswith("- `")]
    assert listed == [f"- `{a}` (sha256 {sha256_file(a)[:12]})", f"- `{b}` (sha256 {sha256_file(b)[:12]}): started from "
                      "`pair.pt`, trained on 3 breeds; distilled from `runs/t/best.pt` (sha256 bbbbbbbbbbbb)"]
    del doc["model"]["ensemble"][0]["path"]  # an ensemble made before paths were recorded: its file name
    (exported / "manifest.json").write_text(json.dumps(doc))
    assert f"- `best.pt` (sha256 {sha256_file(a)[:12]})" in render(exported).splitlines()

    twin = tmp_path / "twin.pt"  # two copies of one model: the same map as the model's own
    run([*edgehound_cmd(), "ensemble", str(a), str(a), "--out", str(twin)])
    chw = np.random.default_rng(0).random((3, 96, 96), dtype=np.float32)
    assert np.allclose(gradcam(checkpoint.load_model(twin)[0], chw, 1), gradcam(one, chw, 1), atol=1e-5)

    other_split, swapped, hostile = tmp_path / "split.pt", tmp_path / "swapped.pt", tmp_path / "hostile.pt"
    torch.save({**ckpt, "meta": json.dumps({**meta, "split": {**meta["split"], "seed": 7}})}, other_split)
    torch.save({**ckpt, "meta": json.dumps({**meta, "ensemble": [{}] * 10**5})}, hostile)  # not 10^5 models built
    other_model = tmp_path / "other_model.pt"  # another dropout: the same weights, another config's model
    torch.save({**ckpt, "meta": json.dumps({**meta, "config": {**meta["config"], "model": {
        **meta["config"]["model"], "fc_dropout": 0.1 + meta["config"]["model"].get("fc_dropout", 0)}}})}, other_model)
    torch.save({**ckpt, "meta": json.dumps({**meta, "classes": meta["classes"][::-1]})}, swapped)
    for cmd, says in ([["ensemble", str(a), str(other_split), "--out", str(tmp_path / "x.pt")], "another split"],
                      [["ensemble", str(a), str(swapped), "--out", str(tmp_path / "x.pt")], "(in that order)"],
                      [["ensemble", str(ens), str(a), "--out", str(tmp_path / "x.pt")], "itself an ensemble"],
                      [["ensemble", str(a), str(other_model), "--out", str(tmp_path / "x.pt")], "another model"],
                      [["narrow", str(ens), "--breeds", GOLDEN, SAMOYED, "--out", str(tmp_path / "x.pt")], "narrow each member"],
                      [train_cmd(SAMPLE, tmp_path / "init", "--init", str(ens))[len(edgehound_cmd()):], "--init from one"],
                      [["evaluate", str(hostile), "--data", str(SAMPLE)], "not a list of 2 to 8 member records"]):
        refused = subprocess.run([*edgehound_cmd(), *cmd], capture_output=True, text=True)
        assert refused.returncode == 2 and says in refused.stderr and "Traceback" not in refused.stderr, refused.stderr
    assert not (tmp_path / "x.pt").exists()
    # a pair head and the multi-breed model it was narrowed from record other photos' digests (their own breeds')
    # over the same parts: they join
    head = tmp_path / "head.pt"
    torch.save({**ckpt, "meta": json.dumps({**meta, "split": {**meta["split"], "photos_digest": "0" * 64}})}, head)
    run([*edgehound_cmd(), "ensemble", str(a), str(head), "--out", str(tmp_path / "joined.pt")])


def test_a_teacher_that_crops_otherwise_and_a_missing_gpu_are_refused(tmp_path, tiny_run):
    refused = subprocess.run(recipe_cmd(SAMPLE, tmp_path / "a", tiny_run / "best.pt", "data.crop=none"),
                             capture_output=True, text=True)
    assert refused.returncode == 2 and "crops or normalises photos differently" in refused.stderr
    assert not (tmp_path / "a").exists()
    if not torch.cuda.is_available():
        gpu = subprocess.run(train_cmd(SAMPLE, tmp_path / "b", "--device", "cuda"), capture_output=True, text=True)
        assert gpu.returncode == 2 and "no CUDA device" in gpu.stderr and "Traceback" not in gpu.stderr


def test_a_multi_breed_model_is_scored_on_a_pair_by_the_pairs_outputs(tmp_path):
    out = tmp_path / "all"
    run(train_cmd(SAMPLE, out, "--breeds", "all", "--set", "train.epochs=1"))
    _, meta = checkpoint.load_model(out / "best.pt")
    assert len(meta["classes"]) == 4  # every breed of the sample
    report_path = tmp_path / "pair.json"
    run([*edgehound_cmd(), "evaluate", str(out / "best.pt"), "--data", str(SAMPLE), "--breeds", GOLDEN, SAMOYED,
         "--json", str(report_path), "--no-progress"])
    report = json.loads(report_path.read_text())
    assert set(report["per_class"]) == {"golden retriever", "Samoyed"} and len(report["confusion"]) == 2
    assert report["n"] == 100

    # --init: a pair model starts from the multi-breed backbone (the head, of another shape, starts anew)
    from edgehound.train.config import load_config
    from edgehound.train.model import build_model
    from edgehound.train.trainer import _init_from

    cfg = load_config("tiny", SMALL)
    pair = build_model(cfg.model, 2)
    ckpt = checkpoint.load(out / "best.pt")
    assert _init_from(pair, cfg.model.family, out / "best.pt", ckpt, checkpoint.read_meta(out / "best.pt", ckpt)) > 0
    source = ckpt["model"]
    assert torch.equal(pair.state_dict()["features.0.weight"], source["features.0.weight"])
    assert pair.state_dict()[list(pair.state_dict())[-1]].shape[0] == 2


def test_a_narrowed_model_answers_as_the_multi_breed_one_on_the_pairs_outputs(tmp_path):
    wide, narrow = tmp_path / "all", tmp_path / "pair.pt"
    run(train_cmd(SAMPLE, wide, "--breeds", "all", "--set", "train.epochs=1"))
    run([*edgehound_cmd(), "narrow", str(wide / "best.pt"), "--breeds", SAMOYED, GOLDEN, "--out", str(narrow)])
    big, big_meta = checkpoint.load_model(wide / "best.pt")
    small, meta = checkpoint.load_model(narrow)
    assert [c["wnid"] for c in meta["classes"]] == [SAMOYED, GOLDEN]  # the order asked for
    columns = [[c["wnid"] for c in big_meta["classes"]].index(w) for w in (SAMOYED, GOLDEN)]
    x = torch.randn(3, 3, 160, 160)
    with torch.no_grad():
        assert torch.allclose(small(x), big(x)[:, columns], atol=1e-6)

    # scored on its test part, it is the multi-breed model scored by the pair's outputs: the same photos
    # (the split is drawn over the four breeds it was trained on, not redrawn over two)
    reports = []
    for model, extra in ((narrow, []), (wide / "best.pt", ["--breeds", GOLDEN, SAMOYED])):
        path = tmp_path / f"{len(reports)}.json"
        run([*edgehound_cmd(), "evaluate", str(model), "--data", str(SAMPLE), "--split", "test", *extra,
             "--json", str(path), "--no-progress"])
        reports.append(json.loads(path.read_text()))
    assert reports[0]["n"] == reports[1]["n"] > 0
    assert {k: v["n"] for k, v in reports[0]["per_class"].items()} == {k: v["n"] for k, v in reports[1]["per_class"].items()}
    assert reports[0]["accuracy"] == reports[1]["accuracy"]
    from edgehound.runtime.datasets import split_samples

    own = [s.path for s in split_samples(meta["split"], [GOLDEN, SAMOYED], "test")]
    assert own == [s.path for s in split_samples(big_meta["split"], [c["wnid"] for c in big_meta["classes"]], "test")
                   if s.wnid in (GOLDEN, SAMOYED)]
    redrawn = {k: v for k, v in meta["split"].items() if k != "wnids"}
    assert own != [s.path for s in split_samples(redrawn, [GOLDEN, SAMOYED], "test")]  # what the record prevents

    # a pair head fine-tuned from the narrowed model validates on photos the multi-breed model never trained on
    tuned = tmp_path / "tuned"
    out = run(train_cmd(SAMPLE, tuned, "--breeds", SAMOYED, GOLDEN, "--init", str(narrow), "--set", "train.epochs=1")).stdout
    assert "split drawn over the 4 breeds" in out
    tuned_meta = json.loads(checkpoint.load(tuned / "best.pt")["meta"])
    assert tuned_meta["split"]["wnids"] == big_meta["split"].get("wnids", [c["wnid"] for c in big_meta["classes"]])
    assert tuned_meta["init"]["trained_on"] == [c["name"] for c in big_meta["classes"]]  # provenance, for the card
    refused = subprocess.run(train_cmd(SAMPLE, tuned, "--breeds", SAMOYED, GOLDEN, "--set", "train.epochs=1", "--resume"),
                             capture_output=True, text=True)  # without --init the split would be drawn anew
    assert refused.returncode != 0 and "(--init)" in refused.stderr and "Traceback" not in refused.stderr
    big_split = {"wnids": [c["wnid"] for c in big_meta["classes"]], **big_meta["split"]}
    big_train = {s.path for s in split_samples(big_split, [GOLDEN, SAMOYED], "train")}
    tuned_val = {s.path for s in split_samples(tuned_meta["split"], [GOLDEN, SAMOYED], "val")}
    assert tuned_val and not tuned_val & big_train
    assert {s.path for s in split_samples(tuned_meta["split"], [GOLDEN, SAMOYED], "test")} == set(own)
    redrawn_val = {s.path for s in split_samples(redrawn, [GOLDEN, SAMOYED], "val")}
    assert redrawn_val & big_train  # what drawing over the four breeds prevents
    refused = subprocess.run(train_cmd(SAMPLE, tmp_path / "swapped", "--breeds", GOLDEN, SAMOYED, "--init", str(narrow)),
                             capture_output=True, text=True)
    assert refused.returncode != 0 and "in the order" in refused.stderr and "Traceback" not in refused.stderr

    refused = subprocess.run([*edgehound_cmd(), "narrow", str(wide / "best.pt"), "--breeds", GOLDEN, "pug",
                              "--out", str(tmp_path / "x.pt")], capture_output=True, text=True)
    assert refused.returncode != 0 and "does not know pug" in refused.stderr and "Traceback" not in refused.stderr
    before = (wide / "best.pt").read_bytes()
    refused = subprocess.run([*edgehound_cmd(), "narrow", str(wide / "best.pt"), "--breeds", GOLDEN, SAMOYED,
                              "--out", str(wide / "best.pt")], capture_output=True, text=True)
    assert refused.returncode != 0 and (wide / "best.pt").read_bytes() == before


def test_unseen_by_keeps_only_photos_no_model_trained_on(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    run(train_cmd(SAMPLE, a, "--set", "train.epochs=1"))
    run(train_cmd(SAMPLE, b, "--set", "train.epochs=1", "train.seed=3"))
    report_path = tmp_path / "both.json"
    run([*edgehound_cmd(), "evaluate", str(a / "best.pt"), "--data", str(SAMPLE), "--split", "test",
         "--unseen-by", str(b / "best.pt"), "--json", str(report_path), "--no-progress"])
    both = json.loads(report_path.read_text())["n"]
    assert 0 < both < 50  # the two seeds' test halves overlap in part

    # a model of other breeds: the other split is drawn over the other model's breeds, not this one's
    from edgehound.runtime.datasets import photo_key, split_samples

    wide = tmp_path / "wide"
    run(train_cmd(SAMPLE, wide, "--breeds", "all", "--set", "train.epochs=1"))
    run([*edgehound_cmd(), "evaluate", str(wide / "best.pt"), "--data", str(SAMPLE), "--split", "test", "--breeds",
         GOLDEN, SAMOYED, "--unseen-by", str(b / "best.pt"), "--json", str(report_path), "--no-progress"])
    metas = [json.loads(checkpoint.load(d / "best.pt")["meta"]) for d in (wide, b)]
    tests = [{photo_key(s) for s in split_samples(m["split"], [c["wnid"] for c in m["classes"]], "test")
              if s.wnid in (GOLDEN, SAMOYED)} for m in metas]
    both = tests[0] & tests[1]
    per_class = json.loads(report_path.read_text())["per_class"]
    # (drawn over the four breeds, seed 3's test part would give 16 and 16 here instead)
    assert [per_class[name]["n"] for name in ("golden retriever", "Samoyed")] == \
        [sum(k.startswith(w) for k in both) for w in (GOLDEN, SAMOYED)]


def test_unseen_by_draws_the_other_split_over_the_folder_it_trained_on(tmp_path):
    """--data a part of the folder OTHER trained on: OTHER's split is drawn over its own folder, not over
    --data (the same settings over fewer photos are another split)."""
    from edgehound.runtime.datasets import photo_key, read_dataset, split_samples

    folder, part = tmp_path / "folder", tmp_path / "part"
    shutil.copytree(SAMPLE, folder)
    shutil.copytree(SAMPLE, part)
    for breed in (GOLDEN, SAMOYED):
        for photo in sorted((part / breed).iterdir())[::2]:
            photo.unlink()
    other, model = tmp_path / "other", tmp_path / "model"
    run(train_cmd(folder, other, "--set", "train.epochs=1"))
    run(train_cmd(SAMPLE, model, "--set", "train.epochs=1", "train.seed=3"))
    report_path = tmp_path / "unseen.json"
    run([*edgehound_cmd(), "evaluate", str(model / "best.pt"), "--data", str(part), "--unseen-by",
         str(other / "best.pt"), "--json", str(report_path), "--no-progress"])
    meta = json.loads(checkpoint.load(other / "best.pt")["meta"])
    seen = {photo_key(s) for p in ("train", "val") for s in split_samples(meta["split"], [GOLDEN, SAMOYED], p)}
    expected = {photo_key(s) for s in read_dataset(part, [GOLDEN, SAMOYED]).samples} - seen
    assert 0 < len(expected) < 25
    assert {p["photo"] for p in json.loads(report_path.read_text())["photos"]} == expected


def test_a_fixed_split_seed_compares_training_seeds_on_the_same_photos(tmp_path):
    from edgehound.runtime.datasets import split_samples

    a, b = tmp_path / "a", tmp_path / "b"
    run(train_cmd(SAMPLE, a, "--set", "train.epochs=1"))
    run(train_cmd(SAMPLE, b, "--set", "train.epochs=1", "train.seed=3", "data.split_seed=0"))
    metas = [json.loads(checkpoint.load(d / "best.pt")["meta"]) for d in (a, b)]
    assert metas[1]["split"]["seed"] == 0 and metas[1]["config"]["train"]["seed"] == 3
    for part in ("train", "val", "test"):
        assert [s.path for s in split_samples(metas[0]["split"], [GOLDEN, SAMOYED], part)] == \
            [s.path for s in split_samples(metas[1]["split"], [GOLDEN, SAMOYED], part)]
    assert not torch.equal(state_dict(a / "best.pt")["features.0.weight"], state_dict(b / "best.pt")["features.0.weight"])


def test_logit_adjustment_moves_answers_toward_the_rarer_breed(tmp_path):
    data = tmp_path / "skewed"  # five golden retrievers to each Samoyed
    for wnid, n in ((GOLDEN, 40), (SAMOYED, 8)):
        (data / wnid).mkdir(parents=True)
        for p in sample_photos(wnid, n):
            shutil.copy(p, data / wnid / p.name)
    answered_samoyed = []
    for tau in (0, 2):
        out, report = tmp_path / f"tau{tau}", tmp_path / f"tau{tau}.json"
        run(train_cmd(data, out, "--set", "train.epochs=8", "train.keep=last", f"train.logit_adjust={tau}"))
        run([*edgehound_cmd(), "evaluate", str(out / "best.pt"), "--data", str(SAMPLE), "--json", str(report), "--no-progress"])
        answered_samoyed.append(sum(row[1] for row in json.loads(report.read_text())["confusion"]))
    assert answered_samoyed[1] > answered_samoyed[0], answered_samoyed


def test_cross_validation_answers_each_pool_photo_once_by_the_fold_run_that_never_trained_on_it(tmp_path, tiny_run):
    from edgehound.runtime.datasets import photo_key, split_samples

    out = tmp_path / "cv"
    # every fold starts from a model that trained on most of the pool: said, since their answers are not out of sample
    cmd = [*train_cmd(SAMPLE, out, "train.epochs=1", "train.keep=last"), "--folds", "3", "--init", str(tiny_run / "best.pt")]
    printed = run(cmd).stdout
    cv = json.loads((out / "cv.json").read_text())
    wnids = [GOLDEN, SAMOYED]
    metas = [checkpoint.read_meta(p, checkpoint.load(p)) for p in (out / f"fold-{i}" / "best.pt" for i in range(3))]
    parts = [{part: {photo_key(s) for s in split_samples(m["split"], wnids, part)} for part in ("train", "val", "test")}
             for m in metas]
    answered = [p["photo"] for p in cv["photos"]]
    assert len(answered) == len(set(answered)) == cv["n"]  # each photo once
    assert set(answered) == parts[0]["train"] | parts[0]["val"]  # the whole training pool ...
    assert not set(answered) & parts[0]["test"]  # ... and no test photo
    for i, f in enumerate(cv["cross_validation"]["per_fold"]):
        assert parts[i]["test"] == parts[0]["test"] and not parts[i]["val"] & parts[i]["train"]
        assert f["n"] == len(parts[i]["val"])  # fold i's photos were answered by the run that left them out
    assert sum(f["n"] for f in cv["cross_validation"]["per_fold"]) == cv["n"]
    assert cv["accuracy"] == pytest.approx(np.mean([p["pred"] == p["true"] for p in cv["photos"]]))
    assert f"out of fold, 3 folds: accuracy {cv['accuracy'] * 100:.2f}% on {cv['n']} photos" in printed
    assert "optimistic" not in printed  # keep=last: no photo chose the epoch that answers it
    # test-time resolution out of fold: every fold model answers its own photos at the size asked for
    larger = run([*edgehound_cmd(), "evaluate", str(out), "--data", str(SAMPLE), "--split", "val", "--input-size", "128",
                  "--json", str(tmp_path / "at128.json"), "--no-progress"]).stdout
    at128 = json.loads((tmp_path / "at128.json").read_text())
    assert at128["input_size"] == 128 and cv["input_size"] == metas[0]["preprocess"]["size"] != 128
    assert "out of fold, 3 folds, at 128 px" in larger
    assert sorted(p["photo"] for p in at128["photos"]) == sorted(answered)
    assert [p["p"] for p in at128["photos"]] != [p["p"] for p in cv["photos"]]
    # test-time flip out of fold: each fold model's answers are its own evaluate --flip on its validation fold
    flipped = run([*edgehound_cmd(), "evaluate", str(out), "--data", str(SAMPLE), "--split", "val", "--flip",
                   "--json", str(tmp_path / "flip.json"), "--no-progress"]).stdout
    run([*edgehound_cmd(), "evaluate", str(out / "fold-1" / "best.pt"), "--data", str(SAMPLE), "--split", "val", "--flip",
         "--json", str(tmp_path / "fold1-flip.json"), "--no-progress"])
    by_photo = {p["photo"]: p["p"] for p in json.loads((tmp_path / "flip.json").read_text())["photos"]}
    fold1 = json.loads((tmp_path / "fold1-flip.json").read_text())["photos"]
    assert "out of fold, 3 folds, with test-time flip" in flipped and sorted(by_photo) == sorted(answered)
    assert fold1 and all(by_photo[p["photo"]] == pytest.approx(p["p"]) for p in fold1)
    assert [by_photo[p["photo"]] for p in cv["photos"]] != [p["p"] for p in cv["photos"]]
    init_meta = checkpoint.read_meta(tiny_run / "best.pt", checkpoint.load(tiny_run / "best.pt"))
    seen = set(answered) & {photo_key(s) for s in split_samples(init_meta["split"], wnids, "train")}
    assert 0 < len(seen) < cv["n"] and cv["cross_validation"]["seen_by_init"] == len(seen)
    assert f"trained on {len(seen)} of these {cv['n']} photos" in printed

    weights = sha256_file(out / "fold-2" / "best.pt")
    again = subprocess.run(cmd, capture_output=True, text=True)
    assert again.returncode == 2 and "--resume" in again.stderr  # a finished cross-validation is never overwritten
    resumed = run([*cmd, "--resume"]).stdout
    assert sha256_file(out / "fold-2" / "best.pt") == weights and "resuming" in resumed
    assert json.loads((out / "cv.json").read_text())["photos"] == cv["photos"]

    lone = subprocess.run(train_cmd(SAMPLE, tmp_path / "lone", "--fold", "1"), capture_output=True, text=True)
    assert lone.returncode == 2 and "--fold needs --folds" in lone.stderr and not (tmp_path / "lone").exists()


def test_a_pair_head_on_a_cross_validated_backbone_is_cross_validated_fold_by_fold(tmp_path):
    """--init and --teacher given as a four-breed backbone's cross-validation folder: each fold of the pair
    head starts from and learns from the backbone fold that never trained on its photos (leak-free), though
    every backbone fold trained on most of the pair's photos."""
    from edgehound.runtime.datasets import photo_key, split_samples, trained_photos

    backbone, head = tmp_path / "backbone", tmp_path / "head"
    quick = ["train.epochs=1", "train.keep=last"]
    run([*train_cmd(SAMPLE, backbone, *quick), "--breeds", "all", "--folds", "2"])
    printed = run([*train_cmd(SAMPLE, head, *quick), "--breeds", GOLDEN, SAMOYED, "--folds", "2",
                   "--init", str(backbone), "--teacher", str(backbone)]).stdout
    cv = json.loads((head / "cv.json").read_text())["cross_validation"]
    assert cv["seen_by_init"] == 0 and cv["seen_by_teacher"] == 0 and "warning" not in printed
    answered = 0
    for fold in range(2):
        meta = checkpoint.read_meta(head / f"fold-{fold}" / "best.pt", checkpoint.load(head / f"fold-{fold}" / "best.pt"))
        start = backbone / f"fold-{fold}" / "best.pt"
        assert meta["init"]["path"] == str(start) and meta["teacher"]["path"] == str(start)
        assert len(meta["split"]["wnids"]) == 4  # drawn over the backbone's breeds, as the backbone's fold was
        start_meta = checkpoint.read_meta(start, checkpoint.load(start))
        val = {photo_key(s) for s in split_samples(meta["split"], [GOLDEN, SAMOYED], "val")}
        start_trained = trained_photos(start_meta["split"], [c["wnid"] for c in start_meta["classes"]], str(start))
        assert val and not val & start_trained and len(start_trained) > len(val)  # it trained on the rest of the pair's pool
        answered += len(val)
    assert answered == json.loads((head / "cv.json").read_text())["n"]

    # the backbone's folds answering among the pair alone (the narrowed recipe) are scored out of fold on the
    # very photos of the head's folds, so the two recipes compare photo by photo
    narrowed = tmp_path / "narrowed.json"
    printed = run([*edgehound_cmd(), "evaluate", str(backbone), "--data", str(SAMPLE), "--split", "val", "--breeds",
                   GOLDEN, SAMOYED, "--json", str(narrowed), "--no-progress"]).stdout
    report, head_cv = json.loads(narrowed.read_text()), json.loads((head / "cv.json").read_text())
    assert {p["photo"] for p in report["photos"]} == {p["photo"] for p in head_cv["photos"]}
    folds = report["cross_validation"]  # the folds sit where cv.json keeps them
    assert folds["folds"] == 2 and [f["n"] for f in folds["per_fold"]] == [f["n"] for f in head_cv["cross_validation"]["per_fold"]]
    assert set(report["classes"]) == {"golden retriever", "Samoyed"} and "out of fold, 2 folds" in printed
    compared = run([*edgehound_cmd(), "compare", str(narrowed), str(head / "cv.json")]).stdout
    assert f"paired on {answered} photos" in compared
    whole_part = subprocess.run([*edgehound_cmd(), "evaluate", str(backbone), "--data", str(SAMPLE)],
                                capture_output=True, text=True)
    assert whole_part.returncode == 2 and "give --split val" in whole_part.stderr, whole_part.stderr

    # a single start model that trained on the pool is counted and warned of, as before
    whole = run([*train_cmd(SAMPLE, tmp_path / "whole", *quick), "--breeds", GOLDEN, SAMOYED, "--folds", "2",
                 "--init", str(backbone / "fold-0" / "best.pt")]).stdout
    assert json.loads((tmp_path / "whole" / "cv.json").read_text())["cross_validation"]["seen_by_init"] > 0
    assert "warning: --init" in whole

    # a folder that is not a cross-validation of the same folds is refused before anything trains
    shuffled, half = tmp_path / "shuffled", tmp_path / "half"
    for fold in (0, 1):
        (shuffled / f"fold-{fold}").mkdir(parents=True)
        shutil.copy(backbone / f"fold-{1 - fold}" / "best.pt", shuffled / f"fold-{fold}" / "best.pt")
    shutil.copytree(backbone / "fold-0", half / "fold-0")
    for folds, start, message in (("3", backbone, "was not trained with fold 0 of 3 left out"),
                                  ("2", shuffled, "was not trained with fold 0 of 2 left out"),
                                  ("2", half, "fold-1/best.pt is missing")):
        refused = subprocess.run([*train_cmd(SAMPLE, tmp_path / "refused", *quick), "--breeds", GOLDEN, SAMOYED,
                                  "--folds", folds, "--init", str(start)], capture_output=True, text=True)
        assert refused.returncode == 2 and message in refused.stderr and "Traceback" not in refused.stderr
        assert not (tmp_path / "refused").exists()
    one = run([*train_cmd(SAMPLE, tmp_path / "one", *quick), "--breeds", GOLDEN, SAMOYED, "--folds", "2", "--fold", "1",
               "--init", str(backbone)]).stdout  # one fold's run takes its own fold's model too
    assert f"initialised from {backbone / 'fold-1' / 'best.pt'}" in one
