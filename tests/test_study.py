"""The improvement study: plan, sharded resumable runs, and the report written into a markdown file."""

import json
import subprocess

import pytest

from conftest import SAMPLE, edgehound_cmd
from edgehound.runtime.errors import EdgehoundError
from edgehound.train.study import BEGIN, END, load_study, parse_shard, verdict

PLAN = """
base = "tiny"
overrides = ["model.input_size=48", "train.batch_size=16"]
seeds = [0, 1]

[pairs]
default = ["golden retriever", "Samoyed"]

[settings]
full = ["train.epochs=2"]

[levers]
baseline = []
dropout = ["model.fc_dropout=0.5"]
"""


def study(*args):
    result = subprocess.run([*edgehound_cmd(), "study", *args], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    return result


def test_plan_adds_the_all_lever_and_orders_cells_seed_major():
    s = load_study("study")  # the committed plan
    cells = s.cells()
    assert len(cells) == len(s.seeds) * len(s.settings) * len(s.pairs) * len(s.levers) == 84
    assert s.levers["all"] == [o for k, v in s.levers.items() if k not in ("baseline", "all") for o in v]
    assert {c.seed for c in cells[:len(cells) // 3]} == {0}  # a study stopped early has every row's first seed
    assert "train.seed=2" in cells[-1].overrides and cells[-1].config(s.base).train.seed == 2


def test_verdict_needs_a_difference_beyond_twice_its_standard_error():
    assert verdict((0.90, 0.01, 3), (0.80, 0.01, 3)) == "helps"
    assert verdict((0.70, 0.01, 3), (0.80, 0.01, 3)) == "hurts"
    assert verdict((0.81, 0.05, 3), (0.80, 0.05, 3)) == "within noise"
    assert verdict((0.90, float("nan"), 1), (0.80, 0.01, 3)).startswith("n/a")
    with pytest.raises(EdgehoundError, match="--shard"):
        parse_shard("2/2")


def test_sharded_study_runs_resumes_and_reports(tmp_path):
    plan, out, report = tmp_path / "plan.toml", tmp_path / "runs", tmp_path / "STUDY.md"
    plan.write_text(PLAN)
    common = ["--plan", str(plan), "--data", str(SAMPLE), "--out", str(out), "--exclude", "--threads", "1"]
    first = study("run", *common, "--shard", "0/2")
    assert first.stdout.count("test acc") == 3  # cells 0, 2 and 4 of 6
    study("run", *common, "--shard", "1/2")
    done = sorted(str(p.parent.relative_to(out)) for p in out.glob("*/*/*/*/summary.json"))
    assert done == ["full/default/all/seed0", "full/default/all/seed1", "full/default/baseline/seed0",
                    "full/default/baseline/seed1", "full/default/dropout/seed0", "full/default/dropout/seed1"]
    again = study("run", *common)
    assert "test acc" not in again.stdout and "all cells of this shard done" in again.stdout  # finished cells are skipped

    report.write_text(f"# My study\n\nhand-written protocol\n\n{BEGIN}\nold table\n{END}\n\nhand-written notes\n")
    study("report", "--plan", str(plan), "--data", str(SAMPLE), "--out", str(out), "--report", str(report))
    text = report.read_text()
    assert "hand-written protocol" in text and "hand-written notes" in text and "old table" not in text
    assert "Finished cells: 6 of 6" in text and "| baseline |" in text and "| dropout |" in text
    rows = json.loads((tmp_path / "study-figures" / "results.json").read_text())
    accs = {r["lever"]: r for r in rows}
    summaries = [json.loads((out / f"full/default/dropout/seed{s}/summary.json").read_text()) for s in (0, 1)]
    assert accs["dropout"]["mean"] == pytest.approx(sum(s["test"]["accuracy"] for s in summaries) / 2)
    assert accs["dropout"]["n"] == 2 and accs["dropout"]["verdict"] in ("helps", "hurts", "within noise")
    for png in ("accuracy_per_lever.png", "learning_curves.png"):
        assert (tmp_path / "study-figures" / png).read_bytes()[:4] == b"\x89PNG"
