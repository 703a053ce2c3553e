"""The training commands: `train`, `narrow`, `ensemble`, `models`, `study`, `data download`, `data pack`.

torch is imported only when a command runs, so registering them costs nothing on a device.
"""

from __future__ import annotations

from pathlib import Path

from edgehound.runtime.errors import EdgehoundError
from edgehound.util import at_least, folder, output_file


def _breeds(names: list[str] | None) -> list[str] | None:
    """`--breeds all` (or none given) means every breed in the folder."""
    return None if not names or [b.lower() for b in names] == ["all"] else names


def cmd_data_pack(args) -> int:
    from edgehound.train.pack import pack_dataset

    record = pack_dataset(args.root, args.out, args.size, args.quality, _breeds(args.breeds), tuple(args.exclude),
                          args.per_breed, not args.no_progress)
    print(f"{args.out}: {record['photos']} photos of {len(record['breeds'])} breeds at {args.size}x{args.size}, "
          f"{record['bytes'] / 2**20:.1f} MiB ({record['written']} written now)")
    for line in record["skipped"]:
        print(f"skipped: {line}")
    return 0


def cmd_data_download(args) -> int:
    from edgehound.train.download import download_stanford

    bad = [item for item in args.sha256 if "=" not in item or not all(item.split("=", 1))]
    if bad:
        raise EdgehoundError(f"--sha256 {bad[0]!r}: expected NAME=HEX, e.g. images.tar=<64 hex digits>")
    checksums = dict(item.split("=", 1) for item in args.sha256)
    root = download_stanford(args.root, args.base_url, checksums, keep_archives=not args.remove_archives)
    print(f"Stanford Dogs ready in {root} (edgehound data info {root})")
    return 0


def cmd_train(args) -> int:
    from edgehound.runtime.metrics import format_report
    from edgehound.train.config import load_config
    from edgehound.train.trainer import RunOptions, train

    if args.fold is not None and not args.folds:
        raise EdgehoundError("--fold needs --folds (how many folds the training part is cut into)")
    cfg = load_config(args.config, args.set)
    opts = RunOptions(data=Path(args.data), out=Path(args.out), breeds=_breeds(args.breeds), exclude=tuple(args.exclude),
                      resume=args.resume, save_every=args.save_every, folds=args.folds, fold=args.fold or 0,
                      progress=not args.no_progress, threads=args.threads, device=args.device,
                      workers=args.workers, teacher=tuple(args.teacher), init=args.init, compile=args.compile,
                      augment_on=args.augment_on, seal_test=args.seal_test)
    if args.folds and args.fold is None:
        return _cross_validate(cfg, opts, args.folds)
    if args.folds:  # one fold's run: a cross-validation folder as --init or --teacher gives its fold-I model
        from edgehound.train.crossval import fold_options

        opts = fold_options(opts, args.folds, args.fold)
    summary = train(cfg, opts)
    print(f"best checkpoint: {Path(args.out) / 'best.pt'} (val acc {summary['best_val_acc']:.3f})")
    if summary.get("test_sealed"):
        print(f"test split: sealed, not scored (score it once, after the choice: edgehound evaluate "
              f"{Path(args.out) / 'best.pt'} --data {args.data} --split test)")
    else:
        print("test split: " + format_report(summary["test"]))
        print(f"test split, averaged with the mirror image: accuracy {summary['test_flip']['accuracy']:.2%}")
    print(f"{summary['seconds_per_epoch']:.1f} s/epoch, {summary['images_per_s']:.1f} img/s, "
          f"{summary['total_train_seconds'] / 60:.1f} min training, {summary['waiting_share']:.0%} of it waiting for photos")
    return 0


def _cross_validate(cfg, opts, folds: int) -> int:
    from edgehound.runtime.commands import print_out_of_fold
    from edgehound.train.crossval import cross_validate

    pooled = cross_validate(cfg, opts, folds)
    print_out_of_fold(pooled)
    record = pooled["cross_validation"]
    for what, given in (("init", record["init"]), ("teacher", ", ".join(record["teacher"]))):
        seen = record[f"seen_by_{what}"]
        if seen:
            print(f"warning: --{what} {given} trained on {seen} of these {pooled['n']} photos: their answers are not "
                  "out of sample (give a model that never saw the pool, or a cross-validation folder of the same folds)")
        elif seen is None:
            print(f"note: the training split of --{what} {given} cannot be drawn here: whether it trained on these "
                  "photos is unknown")
    if cfg.train.keep == "best":
        print("note: each fold kept its best epoch by these photos (train.keep=best), so the figure above is "
              "optimistic; with train.keep=last no photo chose what answers it")
    print(f"written: {Path(opts.out) / 'cv.json'}; compare two recipes with: edgehound compare A/cv.json B/cv.json")
    return 0


def cmd_narrow(args) -> int:
    from edgehound.train import checkpoint

    source, out = Path(args.model), Path(args.out)
    if out.exists() and out.resolve() == source.resolve():
        raise EdgehoundError(f"{out}: is the model being narrowed; write the narrowed model elsewhere")
    payload = checkpoint.narrow(source, args.breeds)
    checkpoint.save(out, payload)
    model, meta = checkpoint.load_model(out)  # what was written loads as a model file
    print(f"{out}: {', '.join(c['name'] for c in meta['classes'])} from {source} "
          f"({len(meta['narrowed_from']['classes'])} breeds), {sum(p.numel() for p in model.parameters()) / 1e6:.2f} M params")
    return 0


def cmd_ensemble(args) -> int:
    from edgehound.train import checkpoint
    from edgehound.train.model import count_macs

    out = Path(args.out)
    if out.exists() and any(out.resolve() == Path(m).resolve() for m in args.models):
        raise EdgehoundError(f"{out}: is one of the members; write the ensemble elsewhere")
    checkpoint.save(out, checkpoint.ensemble([Path(m) for m in args.models]))
    model, meta = checkpoint.load_model(out)  # what was written loads as a model file
    macs, params = count_macs(model, meta["preprocess"]["size"])
    print(f"{out}: the mean of {len(args.models)} {meta['config']['name']} models' logits, "
          f"{', '.join(c['name'] for c in meta['classes'])}; {macs / 1e6:.1f} MMACs, {params / 1e6:.2f} M params")
    return 0


def cmd_models(args) -> int:
    from edgehound.train.config import model_configs
    from edgehound.train.model import model_table, training_speed

    rows = model_table(args.size, args.classes)
    configs = model_configs()
    print(f"{'config':<16} {'family':<10} {'input':>6} {'params':>10} {'MMACs':>10}"
          + ("   train img/s (channels-last, contiguous)" if args.speed else ""))
    for r in rows:
        line = f"{r['name']:<16} {r['family']:<10} {r['input_size']:>6} {r['params'] / 1e6:>9.2f}M {r['macs'] / 1e6:>10.1f}"
        if args.speed:
            from dataclasses import replace

            mcfg = replace(configs[r["name"]].model, input_size=r["input_size"])
            line += f"   {training_speed(mcfg, args.classes):8.1f}, {training_speed(mcfg, args.classes, channels_last=False):6.1f}"
        print(line, flush=True)
    return 0


def cmd_study(args) -> int:
    from edgehound.train.study import load_study, parse_shard, run_study, write_report

    study = load_study(args.plan)
    if args.action == "run":
        failed = run_study(study, Path(args.data), Path(args.out), tuple(args.exclude), parse_shard(args.shard),
                           args.threads, args.only)
        print(f"study: {len(failed)} failed cell(s): {', '.join(failed)}" if failed else "study: all cells of this shard done")
        return 1 if failed else 0
    rows = write_report(study, Path(args.out), Path(args.report), args.data, args.plan)
    print(f"{args.report}: {sum(r['n'] for r in rows)} of {len(study.cells())} cells")
    return 0


def add_commands(sub, data) -> None:
    """`train`, `narrow`, `ensemble`, `models`, `study`, `data download` and `data pack`."""
    from edgehound.runtime.breeds import DEFAULT_PAIR
    from edgehound.train.download import STANFORD_BASE_URL

    dl = data.add_parser("download", help="download Stanford Dogs images and boxes (resumable)",
                         description="Download and extract Stanford Dogs (images.tar, annotation.tar) into ROOT; "
                         "a partial download resumes.")
    dl.add_argument("--root", required=True, help="where to put Images/ and Annotation/")
    dl.add_argument("--base-url", default=STANFORD_BASE_URL, help="mirror to download from")
    dl.add_argument("--sha256", nargs="*", default=[], metavar="NAME=HEX", help="expected checksum of an archive")
    dl.add_argument("--remove-archives", action="store_true", help="delete the .tar files after extracting")
    dl.set_defaults(func=cmd_data_download)

    pk = data.add_parser("pack", help="a compact copy of a dataset to carry to a GPU machine",
                         description="Write every photo of ROOT as the trainer's cache holds it for a crop = \"none\" "
                         "config (squeezed to SIZE x SIZE, boxes applied) as JPEG, in OUT/train/<wnid>/<file name>: "
                         "the same breeds, names and so the same fixed test part, in a fraction of the bytes. "
                         "A killed pack resumes.")
    pk.add_argument("root", help="dataset folder (any supported layout)")
    pk.add_argument("--out", type=folder, required=True, help="a new folder, or an earlier pack to complete")
    pk.add_argument("--size", type=at_least(32, 4096), default=160, help="side of the square photos (default 160: "
                    "the edge and resnet18 configs' input)")
    pk.add_argument("--quality", type=at_least(1, 100), default=85, help="JPEG quality (default 85)")
    pk.add_argument("--breeds", nargs="+", help="only these breeds (default: all)")
    pk.add_argument("--exclude", nargs="*", default=[], help="folders whose photo names are left out (tests/sample)")
    pk.add_argument("--per-breed", type=at_least(0), default=0, help="only the first N photos of each breed "
                    "(a small pack to check a plan on the CPU; default 0: all)")
    pk.add_argument("--no-progress", action="store_true")
    pk.set_defaults(func=cmd_data_pack)

    tr = sub.add_parser("train", help="train a model (seed CNN or an improved config)",
                        description="Train on a dataset folder with a seeded, stratified split (50%% train / 50%% test "
                        "by default, validation carved from train). Keeps best.pt by validation accuracy, writes "
                        "metrics.jsonl per epoch, and resumes a killed run exactly with --resume.")
    tr.add_argument("--data", required=True, help="dataset folder (any supported layout)")
    tr.add_argument("--out", type=folder, required=True, help="run folder for checkpoints and metrics")
    tr.add_argument("--config", default="seed", help="config name in train/configs or a .toml path (default: seed)")
    tr.add_argument("--set", nargs="*", default=[], metavar="SECTION.KEY=VALUE", help="override config values")
    tr.add_argument("--breeds", nargs="+", default=list(DEFAULT_PAIR),
                    help="breeds to tell apart, or `all` for every breed in --data (default: golden retriever vs Samoyed)")
    tr.add_argument("--exclude", nargs="*", default=[], help="folders whose photos never enter training (e.g. tests/sample)")
    tr.add_argument("--resume", action="store_true", help="continue the run in --out where it stopped")
    tr.add_argument("--save-every", type=at_least(0), default=0, help="save the training state every N steps (default: every 60 s)")
    tr.add_argument("--folds", type=at_least(2), help="k-fold cross-validation over the training part: without "
                    "--fold, one run per fold in OUT/fold-I and every pool photo's out-of-fold answer in OUT/cv.json "
                    "(compare recipes with `edgehound compare`)")
    tr.add_argument("--fold", type=at_least(0), help="with --folds: train only this fold's run (0-based), in --out")
    tr.add_argument("--threads", type=at_least(1), help="torch CPU threads (default: all cores)")
    tr.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"],
                    help="where to train: auto = CUDA when PyTorch sees a GPU (bf16 autocast there), else the CPU")
    tr.add_argument("--workers", type=at_least(0), help="processes that augment batches (default: 0 on the CPU, up to 12 on CUDA)")
    tr.add_argument("--teacher", type=Path, nargs="+", default=[], metavar="MODEL.pt",
                    help="distil: learn from this model file's softened outputs (any input size, the same or more "
                    "breeds); several: from the mean of their logits, an ensemble; with --folds, a cross-validation's "
                    "folder: each fold learns from its own fold's model")
    tr.add_argument("--init", type=Path, help="start from this model file's weights where names and shapes match "
                    "(e.g. a multi-breed model's backbone under a new pair head); with --folds, a cross-validation's "
                    "folder: each fold starts from its own fold's model, which never trained on that fold's photos")
    tr.add_argument("--augment-on", default="workers", choices=["workers", "device"],
                    help="where photos are augmented: workers = OpenCV in the --workers processes (default); device = torch "
                    "where the model is, the whole photo cache held there, the workers only drawing (the same draws; "
                    "pixels within a level or two)")
    tr.add_argument("--compile", action="store_true",
                    help="torch.compile the model and the teacher: fused kernels, for a GPU whose steps are bound by "
                    "launching small ones; costs a minute or two of compiling first (needs a C compiler; no faster on a CPU)")
    tr.add_argument("--seal-test", action="store_true",
                    help="do not score the test part at the end (summary.json says it is sealed): a run whose figures "
                    "must not be seen before a choice is made is scored once, after it, with `edgehound evaluate --split test`")
    tr.add_argument("--no-progress", action="store_true", help="no progress bars (epoch lines only)")
    tr.set_defaults(func=cmd_train)

    na = sub.add_parser("narrow", help="a multi-breed model file restricted to some of its breeds (no training)",
                        description="Keep only the chosen breeds' outputs of a model file: a pair model from one "
                        "trained on more breeds, answering exactly as that model scored on the pair's outputs "
                        "(`evaluate --breeds`). Exports like any model file.")
    na.add_argument("model", help="model file (best.pt / last.pt) trained on more breeds")
    na.add_argument("--breeds", nargs="+", required=True, help="the breeds to keep, in the order of the new outputs")
    na.add_argument("--out", type=output_file, required=True, help="the new model file (.pt)")
    na.set_defaults(func=cmd_narrow)

    en = sub.add_parser("ensemble", help="several model files of one config as one model (the mean of their logits)",
                        description="Join model files trained alike (one config, the same breeds in the same order, "
                        "the same split) into one model file that answers with the mean of their logits: what "
                        "`evaluate --ensemble` scores, as one graph that every export format takes. Its MACs are "
                        "the members' sum.")
    en.add_argument("models", nargs="+", metavar="MODEL.pt", help="2 to 8 model files (best.pt / narrowed files)")
    en.add_argument("--out", type=output_file, required=True, help="the new model file (.pt)")
    en.set_defaults(func=cmd_ensemble)

    mo = sub.add_parser("models", help="the named model configs with their family, parameters and MACs",
                        description="List train/configs' model configs (`train --config NAME`): family (vgg, resnet, "
                        "mobilenet), input size, parameters and multiply-accumulates per photo.")
    mo.add_argument("--size", type=at_least(32, 2048), help="count MACs at this input size instead of each config's own (32 to 2048: the seed's fully "
                    "connected layer grows with the square of the size)")
    mo.add_argument("--classes", type=at_least(2, 1000), default=2, help="number of outputs (default: 2, a pair)")
    mo.add_argument("--speed", action="store_true", help="also time training steps (batch 32, random photos) on "
                    "this CPU, channels-last as `train` runs them and contiguous for comparison")
    mo.set_defaults(func=cmd_models)

    st = sub.add_parser("study", help="the improvement study: each lever alone and together, pairs x settings x seeds",
                        description="`run` trains every cell of the study plan (resumable: finished cells are skipped, "
                        "killed ones resume); `report` writes the tables and plots into train/STUDY.md.")
    st.add_argument("action", choices=["run", "report"])
    st.add_argument("--plan", default="study", help="study plan: name in train/configs or a .toml path (default: study)")
    st.add_argument("--data", default="../shared/data/imagewoof2-320", help="dataset folder")
    st.add_argument("--out", type=folder, default="runs/study", help="folder of the study's runs")
    st.add_argument("--exclude", nargs="*", default=["tests/sample"], help="folders whose photos never enter training")
    st.add_argument("--shard", default="0/1", help="I/N: run every N-th cell starting at I (parallel workers)")
    st.add_argument("--threads", type=at_least(1), help="torch CPU threads per worker (default: all cores)")
    st.add_argument("--only", help="run only cells whose key (setting/pair/lever/seedN) contains this text")
    st.add_argument("--report", type=output_file, default=str(Path(__file__).with_name("STUDY.md")), help="markdown file to write the results into")
    st.set_defaults(func=cmd_study)
