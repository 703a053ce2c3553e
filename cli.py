"""The `edgehound` command: one CLI, a subcommand per stage.

Each stage registers its own commands, their arguments beside the code that runs them
(`<stage>/commands.py`, and benchmarks/analyze.py). Heavy imports (torch, onnx, ...) happen inside
each command, so `edgehound --help` and the runtime commands start fast and work with only the
runtime installed.
"""

from __future__ import annotations

import argparse
import os
import sys

from edgehound.runtime.errors import EdgehoundError


def build_parser() -> argparse.ArgumentParser:
    from edgehound.benchmarks import analyze, commands as bench_commands
    from edgehound.devices import commands as device_commands
    from edgehound.export import commands as export_commands
    from edgehound.runtime import commands as runtime_commands
    from edgehound.train import commands as train_commands

    p = argparse.ArgumentParser(prog="edgehound", description="Train a dog-breed CNN, compile it for edge devices, "
                                "and measure every artifact.")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    data = sub.add_parser("data", help="inspect datasets, list breeds, download Stanford Dogs",
                          description="Dataset tools. Layouts are detected: Stanford Dogs (Images/ + Annotation/), "
                          "the Kaggle csv (labels.csv + train/), or one folder per breed.")
    data_actions = data.add_subparsers(dest="data_command", required=True, metavar="ACTION")

    # in the order of the work: train, export, run, measure, look inside
    train_commands.add_commands(sub, data_actions)
    export_commands.add_commands(sub)
    runtime_commands.add_commands(sub, data_actions)
    bench_commands.add_commands(sub)
    device_commands.add_commands(sub)
    analyze.add_commands(sub)
    analyze.add_data_composite(data_actions)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    args.argv = argv
    try:
        return args.func(args)
    except EdgehoundError as e:
        print(f"edgehound: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("edgehound: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `edgehound evaluate ... | head`: the reader left, which is not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so the exit's flush stays quiet
        return 0


if __name__ == "__main__":
    sys.exit(main())
