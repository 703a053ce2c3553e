"""The improvement study: every lever alone and all together, on two breed pairs, two data settings
and several seeds, then a report (tables and plots) written into train/STUDY.md.

The plan comes from a TOML file (train/configs/study.toml). Each cell is an ordinary training run in
OUT/<setting>/<pair>/<lever>/seed<N>/; a finished cell (summary.json present) is skipped and a killed
one resumes from its last.pt, so `study run` can be stopped and restarted at any time. `--shard I/N`
splits the cells between N processes (e.g. two single-thread workers on a 2-core machine).
"""

from __future__ import annotations

import json
import math
import shlex
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgehound.runtime.errors import EdgehoundError
from edgehound.train.config import CONFIG_DIR, Config, load_config
from edgehound.util import atomic_write_text, tomllib

ALL_LEVERS = "all"
BEGIN, END = "<!-- study:begin (written by `edgehound study report`) -->", "<!-- study:end -->"


@dataclass(frozen=True)
class Cell:
    setting: str
    pair: str
    lever: str
    seed: int
    breeds: tuple[str, ...]
    overrides: tuple[str, ...]  # --set values on top of the base config

    @property
    def key(self) -> str:
        return f"{self.setting}/{self.pair}/{self.lever}/seed{self.seed}"

    def config(self, base: str) -> Config:
        return load_config(base, list(self.overrides))


@dataclass
class Study:
    base: str
    seeds: list[int]
    pairs: dict[str, list[str]]
    settings: dict[str, list[str]]
    levers: dict[str, list[str]]  # includes "all", the union of the others
    common: list[str]

    def cells(self) -> list[Cell]:
        """Seed-major order, so a study stopped early has every cell's first seed."""
        return [Cell(setting, pair, lever, seed, tuple(breeds),
                     tuple([*self.common, *self.settings[setting], *self.levers[lever], f"train.seed={seed}"]))
                for seed in self.seeds for setting in self.settings for pair, breeds in self.pairs.items()
                for lever in self.levers]


def load_study(path: str | Path = "study") -> Study:
    path = Path(path)
    if not path.is_file():
        path = CONFIG_DIR / f"{path}.toml"
    try:
        d = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise EdgehoundError(f"study plan {path}: {e}") from None
    missing = {"pairs", "settings", "levers", "seeds"} - set(d)
    if missing:
        raise EdgehoundError(f"study plan {path}: missing {', '.join(sorted(missing))}")
    levers = dict(d["levers"])
    if ALL_LEVERS not in levers:
        levers[ALL_LEVERS] = [o for name, values in levers.items() if name != "baseline" for o in values]
    return Study(d.get("base", "seed"), list(d["seeds"]), dict(d["pairs"]), dict(d["settings"]), levers,
                 list(d.get("overrides", [])))


def parse_shard(text: str) -> tuple[int, int]:
    try:
        i, n = (int(x) for x in text.split("/"))
        assert 0 <= i < n
    except (ValueError, AssertionError):
        raise EdgehoundError(f"--shard {text!r}: expected I/N with 0 <= I < N, e.g. 0/2") from None
    return i, n


def run_study(study: Study, data: Path, out: Path, exclude: tuple = (), shard: tuple[int, int] = (0, 1),
              threads: int | None = None, only: str | None = None) -> list[str]:
    """Train every cell of this shard that has no summary yet; returns the keys of cells that failed."""
    from edgehound.train.trainer import RunOptions, train

    cells = [c for k, c in enumerate(study.cells()) if k % shard[1] == shard[0] and (not only or only in c.key)]
    failed = []
    for k, cell in enumerate(cells, 1):
        run_dir = out / cell.key
        if (run_dir / "summary.json").is_file():
            continue
        print(f"[{k}/{len(cells)}] {cell.key}", flush=True)
        t0 = time.monotonic()
        try:
            summary = train(cell.config(study.base), RunOptions(data=data, out=run_dir, breeds=list(cell.breeds),
                                                                exclude=exclude, resume=True, progress=False,
                                                                threads=threads))
        except EdgehoundError as e:
            print(f"[{k}/{len(cells)}] {cell.key} failed: {e}", flush=True)
            failed.append(cell.key)
            continue
        print(f"[{k}/{len(cells)}] {cell.key}: test acc {summary['test']['accuracy']:.4f} "
              f"({time.monotonic() - t0:.0f} s)", flush=True)
    return failed


# ---- report ---------------------------------------------------------------------------------------

def collect(study: Study, out: Path) -> dict[str, dict]:
    """Finished cells: key -> summary.json plus the per-epoch metrics."""
    results = {}
    for cell in study.cells():
        run_dir = out / cell.key
        if (run_dir / "summary.json").is_file():
            summary = json.loads((run_dir / "summary.json").read_text())
            summary["history"] = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
            results[cell.key] = summary
    return results


def _stats(values: list[float]) -> tuple[float, float, int]:
    a = np.asarray(values, float)
    return float(a.mean()), float(a.std(ddof=1)) if len(a) > 1 else float("nan"), len(a)


def verdict(lever: tuple[float, float, int], baseline: tuple[float, float, int]) -> str:
    """'helps'/'hurts' when the mean difference exceeds twice its standard error, else 'within noise'."""
    (m1, s1, n1), (m0, s0, n0) = lever, baseline
    if n1 < 2 or n0 < 2:
        return "n/a (one seed)"
    se = math.sqrt(s1 ** 2 / n1 + s0 ** 2 / n0)
    diff = m1 - m0
    if diff > 2 * se and diff > 0:
        return "helps"
    if diff < -2 * se and diff < 0:
        return "hurts"
    return "within noise"


def summarize(study: Study, results: dict[str, dict]) -> list[dict]:
    """One row per (setting, pair, lever) with the mean and sd of test accuracy over the seeds that finished."""
    rows = []
    for setting in study.settings:
        for pair in study.pairs:
            groups = {}
            for lever in study.levers:
                runs = [results[k] for k in (f"{setting}/{pair}/{lever}/seed{s}" for s in study.seeds) if k in results]
                if runs:
                    groups[lever] = runs
            base = _stats([r["test"]["accuracy"] for r in groups["baseline"]]) if "baseline" in groups else None
            for lever, runs in groups.items():
                acc = _stats([r["test"]["accuracy"] for r in runs])
                rows.append({
                    "setting": setting, "pair": pair, "lever": lever, "mean": acc[0], "sd": acc[1], "n": acc[2],
                    "accs": [r["test"]["accuracy"] for r in runs],
                    "delta": acc[0] - base[0] if base else float("nan"),
                    "verdict": "" if lever == "baseline" or not base else verdict(acc, base),
                    "params": runs[0]["params"], "macs": runs[0]["macs"],
                    "train_n": runs[0]["split"]["train"], "test_n": runs[0]["split"]["test"],
                    "s_per_epoch": float(np.mean([r["seconds_per_epoch"] for r in runs])),
                    "train_s": float(np.mean([r["total_train_seconds"] for r in runs])),
                })
    return rows


def _plots(study: Study, results: dict, rows: list[dict], fig_dir: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig_dir.mkdir(parents=True, exist_ok=True)
    settings, pairs, levers = list(study.settings), list(study.pairs), list(study.levers)
    paths = []

    fig, axes = plt.subplots(len(settings), len(pairs), figsize=(5.5 * len(pairs), 3.6 * len(settings)), squeeze=False)
    for i, setting in enumerate(settings):
        for j, pair in enumerate(pairs):
            ax = axes[i][j]
            cell_rows = {r["lever"]: r for r in rows if r["setting"] == setting and r["pair"] == pair}
            names = [lv for lv in levers if lv in cell_rows]
            means = [100 * cell_rows[lv]["mean"] for lv in names]
            sds = [100 * (cell_rows[lv]["sd"] if cell_rows[lv]["n"] > 1 else 0) for lv in names]
            ax.bar(names, means, yerr=sds, capsize=3, color=["grey" if lv == "baseline" else "C0" for lv in names])
            for x, lv in enumerate(names):
                ax.scatter([x] * cell_rows[lv]["n"], [100 * a for a in cell_rows[lv]["accs"]], color="k", s=8, zorder=3)
            if means:
                ax.set_ylim(max(0, min(means) - 15), min(100, max(means) + 8))
            ax.set_title(f"{setting} data, {pair} pair")
            ax.set_ylabel("test accuracy (%)")
            ax.tick_params(axis="x", rotation=30)
    fig.suptitle("Test accuracy per lever (bars: mean over seeds, error: sd, dots: seeds)")
    fig.tight_layout()
    paths.append(fig_dir / "accuracy_per_lever.png")
    fig.savefig(paths[-1], dpi=110)
    plt.close(fig)

    fig, axes = plt.subplots(len(settings), len(pairs), figsize=(5.5 * len(pairs), 3.6 * len(settings)), squeeze=False)
    for i, setting in enumerate(settings):
        for j, pair in enumerate(pairs):
            ax = axes[i][j]
            for c, lever in enumerate(levers):
                runs = [results[k] for k in (f"{setting}/{pair}/{lever}/seed{s}" for s in study.seeds) if k in results]
                if not runs:
                    continue
                n = min(len(r["history"]) for r in runs)
                val = np.mean([[h["val_acc"] for h in r["history"][:n]] for r in runs], axis=0)
                train = np.mean([[h["train_acc"] for h in r["history"][:n]] for r in runs], axis=0)
                epochs = np.arange(1, n + 1)
                ax.plot(epochs, 100 * val, color=f"C{c}", label=lever)
                ax.plot(epochs, 100 * train, color=f"C{c}", linestyle=":", linewidth=0.8)
            ax.set_title(f"{setting} data, {pair} pair")
            ax.set_xlabel("epoch")
            ax.set_ylabel("accuracy (%)")
            ax.set_ylim(40, 101)
    axes[0][0].legend(fontsize=7, ncol=2)
    fig.suptitle("Learning curves, mean over seeds (solid: validation, dotted: training)")
    fig.tight_layout()
    paths.append(fig_dir / "learning_curves.png")
    fig.savefig(paths[-1], dpi=110)
    plt.close(fig)
    return paths


def _fmt_acc(row: dict) -> str:
    sd = f" ± {100 * row['sd']:.2f}" if row["n"] > 1 else ""
    return f"{100 * row['mean']:.2f}{sd}"


def render(study: Study, rows: list[dict], figures: list[Path], md_dir: Path, data: str, plan: str) -> str:
    total = len(study.cells())
    done = sum(r["n"] for r in rows)
    lines = [BEGIN, "", f"Finished cells: {done} of {total} ({len(study.seeds)} seeds planned per row).", ""]
    for setting in study.settings:
        for pair in study.pairs:
            cell_rows = [r for r in rows if r["setting"] == setting and r["pair"] == pair]
            if not cell_rows:
                continue
            r0 = cell_rows[0]
            lines += [f"### {setting} data, {pair} pair ({' vs '.join(study.pairs[pair])}; "
                      f"{r0['train_n']} photos fit, {r0['test_n']} test photos)", "",
                      "| lever | test accuracy % (mean ± sd) | seeds | vs baseline (pp) | verdict | params | MACs | s/epoch | train s |",
                      "|---|---|---|---|---|---|---|---|---|"]
            for r in cell_rows:
                delta = "" if r["lever"] == "baseline" else f"{100 * r['delta']:+.2f}"
                lines.append(f"| {r['lever']} | {_fmt_acc(r)} | {r['n']} | {delta} | {r['verdict']} | "
                             f"{r['params'] / 1e6:.2f} M | {r['macs'] / 1e6:.0f} M | {r['s_per_epoch']:.1f} | {r['train_s']:.0f} |")
            lines.append("")
    for fig in figures:
        lines += [f"![{fig.stem}]({fig.relative_to(md_dir).as_posix()})", ""]
    lines += ["Reproduce one cell (any row, any seed) with `edgehound train`:", "", "```"]
    for lever, values in study.levers.items():
        sets = " ".join([*map(shlex.quote, study.common), "<setting>", *map(shlex.quote, values), "train.seed=<N>"])
        lines.append(f"# {lever}")
        lines.append(f"edgehound train --data {data} --config {study.base} --breeds <pair> --exclude tests/sample "
                     f"--out runs/study/<setting>/<pair>/{lever}/seed<N> --set {sets}")
    lines += ["```", "", "where `<setting>` is "
              + "; ".join(f"`{' '.join(v)}` ({k})" for k, v in study.settings.items())
              + " and `<pair>` is " + "; ".join(f"`{' '.join(shlex.quote(b) for b in v)}` ({k})" for k, v in study.pairs.items())
              + f". The whole study: `edgehound study run --plan {plan} --data {data} --out runs/study`.", "", END]
    return "\n".join(lines)


def write_report(study: Study, out: Path, md_path: Path, data: str, plan: str) -> list[dict]:
    results = collect(study, out)
    if not results:
        raise EdgehoundError(f"{out}: no finished study cells (run `edgehound study run` first)")
    rows = summarize(study, results)
    md_path = Path(md_path)
    figures = _plots(study, results, rows, md_path.parent / "study-figures")
    block = render(study, rows, figures, md_path.parent, data, plan)
    text = md_path.read_text() if md_path.is_file() else f"# The improvement study\n\n{BEGIN}\n{END}\n"
    if BEGIN in text and END in text:
        head, _, rest = text.partition(BEGIN)
        _, _, tail = rest.partition(END)
        text = head + block + tail
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    atomic_write_text(md_path, text)
    atomic_write_text(md_path.parent / "study-figures" / "results.json", json.dumps(rows, indent=1))
    return rows
