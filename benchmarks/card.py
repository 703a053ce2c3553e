"""The model card: <export folder>/CARD.md, written from measurements kept in <export folder>/card/.

`regenerate` makes what is missing (robustness.json and its plots, saliency examples, the most
confident mistakes shown with their maps, the box-share study, the bench rows), then `render` writes
CARD.md from those files and the manifest alone: the same files give the same CARD.md, byte for byte.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from edgehound.benchmarks.bench import read_results
from edgehound.benchmarks.saliency import map_agreement
from edgehound.runtime.errors import EdgehoundError
from edgehound.runtime.manifest import read_manifest
from edgehound.util import atomic_write_json, atomic_write_text

CARD_DIR = "card"
MEASURED = "measured.json"  # card/ part -> {file name: sha256 it was measured on}
MEASURED_PARTS = ("robustness.json", "examples", "mistakes", "boxes")  # the parts of card/ measured.json records
EXAMPLES_PER_CLASS = 2


def regenerate(folder: Path, data: str | None, boxes: str | None = None, bench: str | None = None,
               refresh: bool = False, limit: int = 200, progress: bool = True) -> Path:
    """Measure what card/ lacks, or measured on files the manifest no longer lists (everything with
    refresh), then render CARD.md. Returns its path."""
    from edgehound.benchmarks.analyze import checkpoint_meta, checkpoint_of, held_out
    from edgehound.benchmarks.saliency import Explainer, explain_samples
    from edgehound.runtime.datasets import Sample, read_dataset

    manifest, folder = read_manifest(folder)
    card = folder / CARD_DIR
    meta = checkpoint_meta(str(folder))
    now = files_now(manifest)
    measured = read_measured(card)

    def needs(part: str, given, flag: str) -> bool:
        """Whether card/PART is measured (again): missing, stale or refreshed; then `given` (the input named
        by flag) must be there."""
        path = card / part
        stale = stale_files(measured, part, now) if path.exists() else []
        if not (refresh or not path.exists() or stale):
            return False
        if given is None:
            why = ("not measured yet" if refresh or not stale else
                   "measured before the card recorded which files it measured" if stale == ["unrecorded"] else
                   f"measured on files that changed since ({', '.join(stale)})")
            raise EdgehoundError(f"{path}: {why}; give {flag} to measure it")
        return True

    def record(part: str, names) -> None:
        """Note which files (by sha256) card/PART was measured on: a later export makes it stale."""
        measured[part] = {n: now[n] for n in names}
        atomic_write_json(card / MEASURED, dict(sorted(measured.items())))

    # decided before measuring anything: a missing --data or --boxes fails at once, not after an hour
    todo = {part for part in ("robustness.json", "examples", "mistakes") if needs(part, data, "--data")}
    if "robustness.json" in todo:  # its most confident mistakes are the ones shown
        todo.add("mistakes")
    if (boxes or ((card / "boxes").exists() and stale_files(measured, "boxes", now))) and needs("boxes", boxes, "--boxes"):
        todo.add("boxes")

    if "robustness.json" in todo:
        from edgehound.benchmarks.robustness import measure

        result = measure(folder, held_out(meta["classes"], data, meta.get("split"), True), card, limit=limit,
                         progress=progress)
        record("robustness.json", result["clean"])
    if "examples" in todo:
        samples = held_out(meta["classes"], data, meta.get("split"), True, EXAMPLES_PER_CLASS * len(meta["classes"]))
        record("examples", _examples(folder, meta, samples, card, progress))
    if "mistakes" in todo:
        mistakes = json.loads((card / "robustness.json").read_text())["clean"]["checkpoint"]["confident_mistakes"][:4]
        wnid = {c["name"]: c["wnid"] for c in meta["classes"]}
        samples = [Sample(Path(m["photo"]), wnid[m["true"]]) for m in mistakes]
        _replace(card / "mistakes", lambda tmp: explain_samples(Explainer(checkpoint_of(folder)), samples, tmp,
                                                                 progress=progress))
        record("mistakes", ["checkpoint"])
    if "boxes" in todo:
        samples = read_dataset(boxes).samples
        _replace(card / "boxes", lambda tmp: explain_samples(Explainer(checkpoint_of(folder)), samples, tmp, pngs=4,
                                                              progress=progress))
        record("boxes", ["checkpoint"])
    if bench:
        atomic_write_json(card / "bench.json", bench_rows(Path(bench), folder))
    path = folder / "CARD.md"
    atomic_write_text(path, render(folder))
    return path


def files_now(manifest: dict) -> dict[str, str]:
    """The sha256 of the checkpoint and of every built artifact, as the manifest lists them now."""
    now = {e["name"]: e["sha256"] for e in manifest["artifacts"] if e.get("status") == "ok"}
    now["checkpoint"] = manifest["model"].get("checkpoint_sha256")
    return now


def read_measured(card: Path) -> dict[str, dict[str, str]]:
    """card/measured.json, checked: a part's record that is not {name: sha256} counts as unrecorded."""
    measured = _load(card / MEASURED) or {}
    if not isinstance(measured, dict):
        raise EdgehoundError(f"{card / MEASURED}: not a JSON object; run `edgehound card ... --refresh`")
    return {part: files for part, files in measured.items()
            if isinstance(files, dict) and all(isinstance(v, str) for v in files.values())}


def stale_files(measured: dict, part: str, now: dict[str, str]) -> list[str]:
    """The files card/PART was measured on that the manifest no longer lists as they were (all of them,
    "unrecorded", for a part measured before card/measured.json existed)."""
    if part not in measured:  # read_measured keeps only well-formed records
        return ["unrecorded"]
    return [name for name, sha in measured[part].items() if now.get(name) != sha]


def _examples(folder: Path, meta: dict, samples: list, card: Path, progress: bool) -> list[str]:
    """Grad-CAM of the checkpoint, and occlusion through the int8 artifact and its fp32 original, on the
    same held-out photos. Returns what was measured: "checkpoint" and those artifacts' names."""
    from edgehound.benchmarks.analyze import checkpoint_of
    from edgehound.benchmarks.saliency import Explainer, explain_samples

    def runnable(name: str):
        try:  # not in the manifest, or its backend not installed in this Python
            return Explainer(folder, name, "occlusion")
        except EdgehoundError:
            return None

    # occlusion through the camera's int8 artifact and its fp32 original, so their maps compare
    int8 = next((e for e in map(runnable, ("tflite-int8", "onnx-int8")) if e), None)
    fp32 = int8 and runnable(int8.classifier.artifact.name.removesuffix("-int8"))
    pair = [e for e in (fp32, int8) if e]

    def write(tmp: Path) -> None:
        explain_samples(Explainer(checkpoint_of(folder)), samples, tmp, progress=progress)
        for explainer in pair:
            explain_samples(explainer, samples, tmp / explainer.classifier.artifact.name, progress=progress)

    _replace(card / "examples", write)
    return ["checkpoint", *(e.classifier.artifact.name for e in pair)]


def _replace(target: Path, write) -> None:
    """Write a folder of results beside `target`, then swap it in: a killed run leaves the old one whole."""
    tmp = target.with_name(f".{target.name}.partial")
    shutil.rmtree(tmp, ignore_errors=True)
    write(tmp)
    old = target.with_name(f".{target.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        target.rename(old)
    tmp.rename(target)
    shutil.rmtree(old, ignore_errors=True)


def bench_rows(bench: Path, folder: Path) -> list[dict]:
    """This export folder's rows of a bench run: artifact, latency (p50 and its 95% interval), fps, peak RSS."""
    path = bench / "results.json" if bench.is_dir() else bench
    results = read_results(path, "--bench")  # each row's fields checked as the report and compare read them
    mine = []
    alone = Path(str(results.get("manifest", ""))).resolve().parent == folder.resolve()  # rows named by artifact only
    for r in results["rows"]:
        owner, _, artifact = r["name"].rpartition("/")
        if not (owner in (folder.name, str(folder)) or (alone and not owner)) or r.get("latency") is None:
            continue
        lat = r["latency"]
        if lat.get("fps") is None:
            raise EdgehoundError(f"--bench {path}: row {r['name']!r} has no fps")
        mine.append({"artifact": artifact, "status": r["status"], "p50_ms": round(lat["p50"], 3),
                     "ci95_ms": [round(v, 3) for v in lat["median_ci95"]], "fps": round(lat["fps"], 1),
                     "peak_rss_mb": r.get("peak_rss_mb"), "ratio": r.get("ratio"), "sha256": r.get("sha256")})
    if not mine:
        raise EdgehoundError(f"{path}: no rows of {folder.name} (bench this export folder)")
    return [{"bench": str(path), "host": results.get("host", {}).get("cpu"), "device": results.get("device")}, *mine]


def _pct(v) -> str:
    return "-" if v is None else f"{v * 100:.1f}%"


def _table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def robustness_tables(r: dict) -> list[str]:
    """Markdown tables: white-box accuracy per eps (made on the checkpoint, sent through every
    artifact), the black-box result, accuracy per camera condition and severity."""
    wb = r["white_box"]
    eps = wb["epsilons"]
    rows = [[attack.upper(), name] + [_pct(a) for a in accs]
            for attack, per in wb["accuracy"].items() for name, accs in per.items()]
    tables = [f"White-box on the checkpoint ({r['subset']['n']} held-out photos; PGD {wb['pgd_steps']} steps), the "
              "same 8-bit adversarial photos through each artifact:\n\n"
              + _table(["attack", "model"] + [f"eps {e}/255" for e in eps], rows)]
    if r.get("black_box"):
        b = r["black_box"]
        tables.append(f"Black-box ({b['attack']}) on `{b['artifact']}`, eps {b['eps']}/255, at most {b['query_budget']} "
                      f"iterations per photo:\n\n" + _table(
                          ["photos", "clean", "under attack", "queries per photo (mean)"],  # no seconds: the card repeats
                          [[b["n"], _pct(b["clean_accuracy"]), _pct(b["accuracy"]), b["queries_per_photo"]]]))
    cam = r["camera"]
    rows = [[c.replace("_", " "), name, _pct(cam["clean"][name])] + [_pct(a) for a in per[c]]
            for c in next(iter(cam["accuracy"].values())) for name, per in cam["accuracy"].items()]
    tables.append("Camera conditions (severity 1 to 5, seeded):\n\n"
                  + _table(["condition", "model", "clean"] + [f"sev {s}" for s in cam["severities"]], rows))
    return tables


def _weights_kept(model: dict) -> str:
    if model.get("ensemble"):
        return ("each member's weights as its own run kept them; members' validation accuracy "
                + ", ".join(_pct(m.get("val_acc")) for m in model["ensemble"]))
    val = f"validation accuracy {_pct(model.get('val_acc'))}" + (" over all the breeds it trained on" if model.get("trained_on") else "")
    if model.get("keep") == "last":
        return f"the weights of its last epoch, {model.get('epoch')}, as its config says; {val}"
    return f"best epoch {model.get('epoch')} by {val}"


def _teachers(teacher: dict | None) -> tuple[int, str]:
    """A `train --teacher` record -> (how many models, each named by path and sha256): one, or an ensemble's."""
    members = (teacher.get("members") or [teacher]) if teacher else []
    return len(members), ", ".join(f"`{t['path']}` (sha256 {t['sha256'][:12]})" for t in members)


def _member(m: dict) -> str:
    """One ensemble member as the card lists it: its path as given to `ensemble` (ensembles made before it was
    recorded: its file name), and where its weights came from."""
    init, (teachers, named) = m.get("init"), _teachers(m.get("teacher"))
    origin = ([f"started from `{Path(init['path']).name}`, trained on {len(init.get('trained_on') or [])} breeds"]
              if init else []) + ([f"distilled from {named}"] if teachers else [])
    return f"- `{m.get('path') or m['file']}` (sha256 {m['sha256'][:12]})" + (": " + "; ".join(origin) if origin else "")


def render(folder: Path) -> str:
    """CARD.md's text from the manifest and card/ alone."""
    manifest, folder = read_manifest(folder)
    card = folder / CARD_DIR
    rob = _load(card / "robustness.json")
    model = manifest["model"]
    names = [c["name"] for c in model["classes"]]
    ref = manifest.get("reference", {})
    out = [f"# Model card: {folder.name}", "",
           "Written by `edgehound card` from `manifest.json` and the measurements in `card/`; do not edit by hand.", "",
           "## What it does", "",
           f"Tells **{' from '.join(names)}** apart in a photo or a camera frame: config `{model.get('config')}`, "
           f"{model.get('params', 0) / 1e6:.2f} M parameters, {model.get('macs', 0) / 1e6:.0f} MMACs per image, "
           f"input {manifest['artifacts'][0]['input']['shape']}.", "",
           "**Intended use:** a demonstration and teaching model for two dog breeds on a Raspberry Pi, Jetson or laptop "
           "camera. **Not for:** other breeds or animals (it always answers one of its breeds, however far the photo is "
           "from both), people, or any decision that matters; its photos are ImageNet's, used for research and teaching.", "",
           "## Data and split", "",
           f"The photos measured below are the {ref.get('data', 'held-out part of its training data')}: photos it "
           + ("never trained on, but that chose its epochs: the export was made with `--seal-test`, so these figures "
              "flatter it, and its test part is still unread " if ref.get("sealed_test") else
              "never trained on and that chose neither its epochs nor its settings ")
           + f"({_weights_kept(model)}).", ""]
    if model.get("ensemble"):
        members = model["ensemble"]
        out += [f"It is an ensemble of {len(members)} `{model.get('config')}` models (`edgehound ensemble`): each photo "
                "goes through all of them, and the answer is the mean of their logits, so its MACs are their sum. "
                "Members:", "", *(_member(m) for m in members), ""]
    if model.get("trained_on"):
        out += [f"It was trained on {len(model['trained_on'])} breeds ({', '.join(model['trained_on'])}) and keeps "
                f"only the outputs of {' and '.join(names)} (`edgehound narrow`): it answers as that model does when "
                "scored on these breeds alone.", ""]
    init = model.get("init")
    if init and init["trained_on"] != names:
        out += [f"It started from the weights of `{init['file']}`, a model trained on {len(init['trained_on'])} breeds "
                f"({', '.join(init['trained_on'])}), and was then trained on {' and '.join(names)} alone (`train --init`)"
                + (f", on a split drawn over those {len(init['trained_on'])} breeds, so that its validation photos are "
                   "ones neither model trained on." if len((model.get('split') or {}).get('wnids') or []) > len(names)
                   else "."), ""]
    teachers, named = _teachers(model.get("teacher"))
    if teachers:
        out += ["It learnt from a teacher's softened outputs as well as the labels (`train --teacher`): "
                + (f"the mean logits of {teachers} models, " if teachers > 1 else "") + named + ".", ""]
    if rob:
        ck = rob["clean"]["checkpoint"]
        out += ["## Accuracy on held-out photos", "",
                _table(["model", "accuracy", *names, "ECE", "photos"],
                       [[name, _pct(r["accuracy"]), *[_pct(r["per_class"][n]["accuracy"]) for n in names],
                         _pct(r["calibration"]["ece"]), r["n"]] for name, r in rob["clean"].items()]), "",
                "Confusion of the checkpoint (rows: true, columns: predicted):", "",
                _table(["", *names], [[n, *row] for n, row in zip(names, ck["confusion"])]), "",
                "## Calibration", "",
                f"Expected calibration error (10 bins) of the checkpoint: {_pct(ck['calibration']['ece'])}; its mean "
                f"confidence is {_pct(ck['calibration']['mean_confidence'])} for an accuracy of "
                f"{_pct(ck['calibration']['accuracy'])}.", "", "![reliability](card/reliability.png)", ""]
    examples = _load(card / "examples" / "saliency.json")
    if examples:
        out += ["## Where it looks", "",
                "Grad-CAM of the checkpoint on held-out photos (the last conv block; red: what raised the answer):", "",
                " ".join(f"![{Path(p['photo']).name}](card/examples/{p['png']})" for p in examples["photos"] if p.get("png")), ""]
        occlusions = {}
        for sub in sorted(p for p in (card / "examples").iterdir() if p.is_dir()):
            occ = occlusions[sub.name] = _load(sub / "saliency.json")
            if occ:
                out += [f"Occlusion through `{sub.name}` on the same photos (the runtime only, no gradients):", "",
                        " ".join(f"![{Path(p['photo']).name}](card/examples/{sub.name}/{p['png']})" for p in occ["photos"]
                                 if p.get("png")), ""]
        if len(occlusions) == 2 and all(occlusions.values()):
            (a, ra), (b, rb) = occlusions.items()
            agree = map_agreement(ra, rb)
            if agree is not None:
                out += [f"`{a}` and `{b}` maps agree with a mean Pearson correlation of **{agree:.3f}** (16x16 maps).", ""]
    boxes = _load(card / "boxes" / "saliency.json")
    if boxes and boxes.get("n_boxed"):
        out += [f"On {boxes['n_boxed']} composites (a held-out photo pasted at a known place on a blurred background), "
                f"**{_pct(boxes['mean_box_share'])}** of the Grad-CAM map lies inside the pasted photo, which covers "
                f"{_pct(boxes['mean_box_area'])} of the picture (a map that looked everywhere alike would score that). "
                f"Accuracy on these composites: {_pct(boxes.get('accuracy'))}, against "
                f"{_pct(rob['clean']['checkpoint']['accuracy']) if rob else '-'} on the photos alone.", "",
                " ".join(f"![{Path(p['photo']).name}](card/boxes/{p['png']})" for p in boxes["photos"] if p.get("png")), ""]
    if rob:
        out += ["## Robustness", "", *[t + "\n" for t in robustness_tables(rob)],
                "![accuracy vs eps](card/adversarial.png)", "", "![camera conditions](card/camera-conditions.png)", ""]
    out += ["## Size and speed per artifact", ""]
    bench = _load(card / "bench.json")
    now = files_now(manifest)
    speed = {r["artifact"]: r for r in (bench or [])[1:] if r.get("sha256") == now.get(r["artifact"])}
    earlier = sorted({r["artifact"] for r in (bench or [])[1:]} - set(speed))  # timed on a file since replaced
    out.append(_table(["artifact", "precision", "target", "size", "accuracy at export", "p50 latency", "fps"],
                      [[e["name"], e.get("precision", "-"), e.get("target", "-"), f"{e.get('size_bytes', 0) / 1e6:.2f} MB",
                        _pct((e.get("accuracy") or {}).get("accuracy")),
                        f"{speed[e['name']]['p50_ms']} ms" if e["name"] in speed else "-",
                        speed[e["name"]]["fps"] if e["name"] in speed else "-"]
                       for e in manifest["artifacts"] if e.get("status") == "ok"]))
    out += ["", "Accuracy at export: the manifest's figure, measured on the export's host; the accuracy section above is this "
            "card's own measurement (int8 kernels can round differently on another CPU)."]
    if bench:
        out += ["", f"Latency from `{bench[0]['bench']}` on {bench[0]['host']} (device {bench[0]['device']}); "
                "timings from other machines or sessions are not comparable, only ratios measured together."
                + (f" Not shown: {', '.join(earlier)}, timed on a file a later export replaced (or before bench "
                   "recorded which file it timed); `edgehound card FOLDER --bench RESULTS` with a new bench run."
                   if earlier else "")]
    if rob:
        out += ["", "## Known failure cases", "",
                "The checkpoint's most confident mistakes on held-out photos:", "",
                _table(["photo", "true", "predicted", "confidence"],
                       [[Path(m["photo"]).name, m["true"], m["predicted"], _pct(m["confidence"])]
                        for m in rob["clean"]["checkpoint"]["confident_mistakes"]])]
        mistakes = _load(card / "mistakes" / "saliency.json")
        if mistakes:
            out += ["", " ".join(f"![{Path(p['photo']).name}](card/mistakes/{p['png']})" for p in mistakes["photos"] if p.get("png"))]
    measured = read_measured(card)
    if measured:
        out += ["", "## Files measured", "",
                "The sha256 of each file the sections above were measured on (`card/measured.json`); `edgehound card "
                "FOLDER --data DATA` measures again what a later export changed.", "",
                _table(["measurement", "file", "sha256", "now"],
                       [[part, name, sha[:12], "same" if now.get(name) == sha else "**changed since**"]
                        for part, files in measured.items() for name, sha in files.items()])]
    return "\n".join(out).rstrip() + "\n"


def _load(path: Path):
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise EdgehoundError(f"{path}: unreadable ({e}); run `edgehound card ... --refresh`") from None
