"""`edgehound bench` and `edgehound gate`: their arguments beside the code that runs them."""

from __future__ import annotations

from pathlib import Path

from edgehound.runtime.errors import EdgehoundError
from edgehound.util import at_least, folder


def cmd_bench(args) -> int:
    from edgehound.benchmarks.bench import BenchOptions, bench
    from edgehound.benchmarks.report import print_table

    opts = BenchOptions(source=Path(args.source[0]), also=[Path(a) for a in args.source[1:]], out=Path(args.out),
                        artifacts=args.artifacts,
                        data=Path(args.data) if args.data else None,
                        threads=args.threads,
                        warmup=args.warmup, runs=args.runs, duration=args.duration, profile=args.profile,
                        compare=Path(args.compare) if args.compare else None, pick=args.pick, max_drop=args.max_drop,
                        device=args.device, merge=[Path(m) for m in args.merge],
                        progress=not args.no_progress, sequential=args.sequential, rounds=args.rounds,
                        baseline=args.baseline)
    results = bench(opts)
    print_table(results)
    print(f"peak {results['peak_gflops']:.1f} GFLOP/s (numpy matmul)"
          + (f"; roofline {results['roofline_ms']:.3f} ms/image" if results.get("roofline_ms") else ""))
    for item in results.get("compare", []):
        flags = [f"{k} x{v['ratio']:.2f}" + (" (!)" if v["flag"] else "") for k, v in item.items() if isinstance(v, dict) and "ratio" in v]
        if item.get("ratio"):
            r = item["ratio"]
            flags.append(f"vs {r['to']} {r['old']:.2f}x -> {r['new']:.2f}x" + (" (!)" if r["flag"] else ""))
        print(f"compare {item['name']}: " + ", ".join(flags))
    if results.get("pick"):
        p = results["pick"]
        print(f"picked {p['artifact']} (p50 {p['p50_ms']:.2f} ms, drop {p['drop_pp']:+.2f} pp) as the manifest's default")
        if p.get("runner_up") and not p["runner_up"]["told_apart"]:
            print(f"note: {p['artifact']} and {p['runner_up']['artifact']} cannot be told apart (paired ratio "
                  f"{p['runner_up']['ratio']:.2f}, 95% interval {p['runner_up']['ci95'][0]:.2f}-"
                  f"{p['runner_up']['ci95'][1]:.2f})")
    print(f"results: {Path(args.out) / 'results.json'}, report: {Path(args.out) / 'report.html'}")
    # Like a failed export target: a script or CI job must not read a run that measured nothing as a good one.
    # Rows "not run" (built for another device) are expected; an error is a file or device that should have answered.
    failed = [f"{r['name']}" + (f" on {r['device']}" if r.get("device", "local") != "local" else "")
              for r in results["rows"] if r["status"] == "error"]
    if failed:
        import sys

        print(f"edgehound: {len(failed)} artifact(s) could not be measured: {', '.join(failed)} (reasons above; "
              f"the other rows are in {Path(args.out) / 'results.json'})", file=sys.stderr)
        return 1
    return 0


def cmd_gate(args) -> int:
    from edgehound.benchmarks import gates

    if args.write:
        if not (args.manifest and args.data):
            raise EdgehoundError("--write needs --manifest and --data")
        doc = gates.write_baseline(Path(args.baseline), Path(args.manifest), Path(args.data), args.breeds,
                                   args.tolerance)
        for name, f in doc["artifacts"].items():
            acc = "-" if f["accuracy"] is None else f"{f['accuracy'] * 100:.2f}% (n={f['n']})"
            print(f"{name}: {f['size_bytes']} bytes, accuracy {acc}")
        print(f"baseline written: {args.baseline}")
        return 0
    lines: list[str] = []
    failures = gates.check(Path(args.baseline), Path(args.manifest) if args.manifest else None, lines)
    for line in lines:
        print(line)
    for f in failures:
        print(f"GATE FAILED: {f}")
    print("gate passed" if not failures else f"{len(failures)} gate failure(s)")
    return 1 if failures else 0


def add_commands(sub) -> None:
    """`bench` and `gate`."""
    be = sub.add_parser("bench", help="latency, memory, size and accuracy of every artifact, with a report",
                        description="Benchmark every artifact of an export folder (each in a fresh process) and "
                        "PyTorch eager as the baseline: load time, first inference, latency percentiles, FPS, peak "
                        "memory, size, accuracy. Writes OUT/results.json and OUT/report.html.")
    be.add_argument("source", nargs="+", help="export folder or manifest.json; several are measured side by side "
                    "in one run, their rows named FOLDER/ARTIFACT")
    be.add_argument("--out", type=folder, default="runs/bench", help="where results.json and report.html go (default runs/bench)")
    be.add_argument("--artifacts", nargs="+", metavar="NAME", help="only these artifacts")
    be.add_argument("--data", help="held-out photos to measure accuracy on (default: the export's figures)")
    be.add_argument("--threads", type=at_least(1), help="threads per backend (default: the backend's)")
    be.add_argument("--warmup", type=at_least(0), default=10)
    be.add_argument("--runs", type=at_least(1), default=100, help="timed runs per artifact (default 100)")
    be.add_argument("--duration", type=float, help="time each artifact for this many seconds instead of --runs")
    be.add_argument("--rounds", type=at_least(2), default=20, help="interleaved rounds: all models stay loaded and "
                    "each round times every one for runs/rounds runs in a random order, so ratios share the machine's "
                    "state (default 20)")
    be.add_argument("--sequential", action="store_true", help="time each artifact at once, one after the other "
                    "(the old mode: ratios then depend on when each was timed)")
    be.add_argument("--baseline", default="onnx", help="the artifact every ratio is to (default onnx: each "
                    "model's own); with several folders, FOLDER/ARTIFACT sets every model against that one row")
    be.add_argument("--profile", action="store_true", help="add the top operators by time (onnxruntime)")
    be.add_argument("--compare", metavar="OLD.json", help="ratios against an earlier results.json of this host")
    be.add_argument("--device", default="local", help="device profile to run on (rpc profiles: TVM artifacts "
                    "over TVM's RPC tracker); default: this host")
    be.add_argument("--merge", nargs="*", default=[], metavar="RESULTS.json",
                    help="earlier results (e.g. other devices) to include in this report")
    be.add_argument("--pick", action="store_true", help="write the fastest artifact within --max-drop into the "
                    "manifest (rewrites its 'default' and 'pick' in place; the manifest as it was is kept as "
                    "manifest.before-pick.json)")
    be.add_argument("--max-drop", type=float, default=1.0, help="accuracy budget for --pick, in points (default 1.0)")
    be.add_argument("--no-progress", action="store_true")
    be.set_defaults(func=cmd_bench)

    ga = sub.add_parser("gate", help="accuracy and size regression gate against a committed baseline",
                        description="Check an export folder's artifacts against a baseline (accuracy on a fixed photo "
                        "set within the tolerance, file size within +5%%), or write the baseline with --write.")
    ga.add_argument("baseline", help="benchmarks/baselines/<model>.json")
    ga.add_argument("--manifest", help="export folder to check (default: the baseline's)")
    ga.add_argument("--write", action="store_true", help="measure and write the baseline")
    ga.add_argument("--data", help="with --write: the fixed photo set")
    ga.add_argument("--breeds", nargs="+", help="with --write: only these breeds")
    ga.add_argument("--tolerance", type=float, default=2.0, help="with --write: allowed accuracy drop, points")
    ga.set_defaults(func=cmd_gate)
