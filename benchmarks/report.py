"""The benchmark's human outputs: the terminal table and report.html with its PNG plots."""

from __future__ import annotations

import html
import os
from pathlib import Path



def table_rows(results: dict) -> list[list[str]]:
    def fmt(v, spec):
        return "-" if v is None else format(v, spec)

    rows = []
    for r in results["rows"]:
        lat = r.get("latency") or {}
        status = r["status"] + (" (untuned)" if r.get("untuned") else f" (tuned on {r['tuned_on']})" if r.get("tuned_on") else "")
        rows.append([r.get("device", "local"), r["name"], r["precision"], r["backend"], fmt((r.get("size_bytes") or 0) / 1e6 or None, ".2f"),
                     fmt(r["accuracy"] * 100 if r.get("accuracy") is not None else None, ".2f"),
                     fmt(lat.get("p50"), ".2f"), fmt(lat.get("p90"), ".2f"), _ratio_text(r.get("ratio")),
                     fmt(lat.get("fps"), ".1f"), fmt(r.get("peak_rss_mb"), ".0f"), status])
    return rows


HEADERS = ["device", "artifact", "precision", "backend", "size MB", "accuracy %", "p50 ms", "p90 ms", "ratio [95% CI]",
           "FPS", "peak MB", "status"]


def _ratio_text(ratio: dict | None) -> str:
    """0.51x [0.49-0.53] to the baseline, or '=' for the baseline itself; 'no difference' when the interval holds 1."""
    if not ratio:
        return "-"
    lo, hi = ratio["ci95"]
    if lo == hi == ratio["value"] == 1.0:
        return "1 (baseline)"
    text = f"{ratio['value']:.2f}x [{lo:.2f}-{hi:.2f}]"
    return text + " same" if ratio["verdict"] == "no difference" else text


def print_table(results: dict) -> None:
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:  # a device with only a runtime extra: the same table, plain
        rows = [HEADERS] + table_rows(results)
        widths = [max(len(str(r[i])) for r in rows) for i in range(len(HEADERS))]
        for r in rows:
            print("  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip())
        for r in results["rows"]:
            if r.get("reason"):
                print(f"{r['name']}: {r['reason']}")
        for warning in results.get("warnings", []):
            print(f"warning: {warning}")
        return

    table = Table(title=f"{results['model'].get('config')} on {results['host']['cpu']} ({results['device']})")
    for h in HEADERS:
        table.add_column(h, justify="left" if h in ("device", "artifact", "precision", "backend", "status") else "right")
    for row in table_rows(results):
        table.add_row(*row)
    console = Console(width=190)
    console.print(table)
    for r in results["rows"]:
        if r.get("reason"):
            console.print(f"[dim]{r['name']}: {r['reason']}[/dim]")
    for warning in results.get("warnings", []):
        console.print(f"[bold yellow]warning:[/bold yellow] {warning}")


def _save(fig, out: Path, name: str, caption: str) -> tuple[str, str]:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(out / name, dpi=110)
    plt.close(fig)
    return name, caption


def _label(row: dict) -> str:
    device = row.get("device", "local")
    return row["name"] if device == "local" else f"{row['name']} @ {device}"


def pareto_front(points: list[tuple[float, float]]) -> list[int]:
    """Indices of points not beaten on both latency (lower) and accuracy (higher)."""
    front = []
    for i, (lat, acc) in enumerate(points):
        if not any((l2 <= lat and a2 >= acc) and (l2 < lat or a2 > acc) for j, (l2, a2) in enumerate(points) if j != i):
            front.append(i)
    return sorted(front, key=lambda i: points[i][0])


def write_report(results: dict, out: Path) -> None:
    try:
        images = _plots(results, out)
    except ImportError:  # a device with only a runtime extra: the report without its plots
        images = None
    _write_html(results, out, images)


def _plots(results: dict, out: Path) -> list[tuple[str, str]]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    timed = [r for r in results["rows"] if r.get("latency")]
    images = []
    if timed:
        # 1. latency distribution per artifact
        fig, ax = plt.subplots(figsize=(9, 0.5 * len(timed) + 1.5))
        ax.boxplot([r["latencies_ms"] for r in timed],
                   orientation="horizontal", tick_labels=[_label(r) for r in timed], showfliers=False)
        ax.set_xscale("log")
        ax.set_xlabel("latency per image, ms (log scale; batch 1)")
        ax.set_title("Latency distribution")
        images.append(_save(fig, out, "latency.png", "Latency distribution per artifact"))

        # 2. accuracy vs latency with the Pareto front
        scored = [r for r in timed if r.get("accuracy") is not None]
        if scored:
            fig, ax = plt.subplots(figsize=(8, 5))
            pts = [(r["latency"]["p50"], r["accuracy"] * 100) for r in scored]
            ax.scatter([p[0] for p in pts], [p[1] for p in pts])
            for r, (x, y) in zip(scored, pts):
                ax.annotate(_label(r), (x, y), textcoords="offset points", xytext=(4, 4), fontsize=8)
            front = pareto_front(pts)
            ax.plot([pts[i][0] for i in front], [pts[i][1] for i in front], "r--o", mfc="none", ms=12,
                    label="Pareto front")
            ax.set_xscale("log")
            ax.set_xlabel("p50 latency, ms (log)")
            ax.set_ylabel("accuracy, %")
            ax.set_title("Accuracy vs latency")
            ax.legend()
            images.append(_save(fig, out, "accuracy_latency.png", "Accuracy vs latency (red: the Pareto front)"))

        # 3. memory vs file size
        fig, ax = plt.subplots(figsize=(8, 5))
        for r in [r for r in timed if r.get("peak_rss_mb")]:
            ax.scatter((r.get("size_bytes") or 0) / 1e6, r["peak_rss_mb"])
            ax.annotate(_label(r), ((r.get("size_bytes") or 0) / 1e6, r["peak_rss_mb"]), textcoords="offset points",
                        xytext=(4, 4), fontsize=8)
        ax.set_xlabel("file size, MB")
        ax.set_ylabel("peak RSS, MB")
        ax.set_title("Memory vs size")
        images.append(_save(fig, out, "memory_size.png", "Peak memory vs file size"))
    return images


def _write_html(results: dict, out: Path, images: list[tuple[str, str]] | None) -> None:
    h = html.escape
    parts = ["<!doctype html><html><head><meta charset='utf-8'><title>edgehound bench</title>",
             "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
             "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}td:first-child{text-align:left}</style>",
             "</head><body>",
             f"<h1>edgehound bench: {h(str(results['model'].get('config')))}</h1>",
             f"<p>{h(results['host']['cpu'])}, {results['host']['cores']} cores, device <b>{h(results['device'])}</b>, "
             f"{h(results['created'])}. Peak (numpy matmul): {results['peak_gflops']:.1f} GFLOP/s"
             + (f"; roofline for this model: {results['roofline_ms']:.3f} ms/image" if results.get("roofline_ms") else "")
             + "</p>"]
    for label, card in sorted(results.get("cards", {}).items()):
        link = os.path.relpath(Path(card).resolve(), out.resolve())
        parts.append(f"<p>Model card of {h(label)}: <a href='{h(link)}'>{h(card)}</a></p>")
    parts += ["<table><tr>" + "".join(f"<th>{h(c)}</th>" for c in HEADERS) + "</tr>"]
    for row in table_rows(results):
        parts.append("<tr>" + "".join(f"<td>{h(c)}</td>" for c in row) + "</tr>")
    parts.append("</table>")
    notes = [f"<li><b>{h(r['name'])}</b>: {h(str(r['reason']))}</li>" for r in results["rows"] if r.get("reason")]
    notes += [f"<li><b>warning</b>: {h(str(w))}</li>" for w in results.get("warnings", [])]
    if notes:
        parts.append("<ul>" + "".join(notes) + "</ul>")
    if images is None:
        parts.append("<p>No plots: matplotlib is not installed here (pip install \"edgehound[bench]\").</p>")
    for file, caption in images or []:
        parts.append(f"<figure><img src='{file}' alt='{h(caption)}'><figcaption>{h(caption)}</figcaption></figure>")
    for r in results["rows"]:
        if r.get("top_operators"):
            parts.append(f"<h3>Top operators: {h(r['name'])}</h3><table><tr><th>op</th><th>ms</th><th>share</th></tr>")
            parts += [f"<tr><td>{h(o['op'])}</td><td>{o['ms']:.3f}</td><td>{o['share'] * 100:.1f}%</td></tr>"
                      for o in r["top_operators"]]
            parts.append("</table>")
    parts.append("</body></html>")
    from edgehound.util import atomic_write_text

    atomic_write_text(out / "report.html", "\n".join(parts))
