"""Where a model looks: Grad-CAM on a checkpoint, occlusion on any artifact, and the share of it on the dog.

- Grad-CAM (captum's LayerGradCam) on the last conv block of a training checkpoint: needs torch.
- Occlusion through the runtime: a grey patch slides over the image and the drop in the predicted
  breed's probability is the map. It only calls the model, so an ONNX, a TFLite int8 and a TVM
  artifact of one model are explained the same way and their maps can be compared.
- box_share: the share of the (positive) map inside the dog's box, against the box's share of the
  picture (what a map that looks everywhere alike would score).

Maps are H x W float arrays on the model's input grid (size x size), scaled to 0..1.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from edgehound.runtime.breeds import Breed
from edgehound.runtime.datasets import Sample
from edgehound.runtime.errors import EdgehoundError
from edgehound.runtime.preprocess import PreprocessSpec, crop_region, load_image, normalize, prepare
from edgehound.util import atomic_write_bytes

ProbsFn = Callable[[np.ndarray], np.ndarray]  # N x size x size x 3 uint8 -> N x classes probabilities


@dataclass
class Explained:
    """What explaining one photo gives: the image the model saw, its map and its answer."""
    image: np.ndarray  # size x size x 3 uint8
    saliency: np.ndarray  # size x size float, 0..1
    label: int
    confidence: float


class Explainer:
    """One model, checkpoint or artifact, behind one interface: uint8 images in, probabilities and maps out."""

    def __init__(self, source: str | Path, artifact: str | None = None, method: str = "auto"):
        self.source = str(source)
        self.model = None  # the torch module, for a checkpoint
        if Path(source).suffix == ".pt":
            from edgehound.train.checkpoint import load_model

            self.model, meta = load_model(source)
            self.classes, self.spec = meta["classes"], PreprocessSpec.from_dict(meta["preprocess"])
            self.name = Path(source).parent.name or Path(source).stem
        else:
            from edgehound.runtime.classifier import Classifier

            self.classifier = Classifier.load(source, artifact)
            self.classes, self.spec = self.classifier.classes, self.classifier.spec
            self.name = f"{self.classifier.artifact.path.parent.name}/{self.classifier.artifact.name}"
        self.view = whole_photo(self.spec)
        self.method = ("gradcam" if self.model is not None else "occlusion") if method == "auto" else method
        if self.method == "gradcam" and self.model is None:
            raise EdgehoundError(f"{source}: Grad-CAM needs the model's gradients: give a checkpoint (.pt), "
                                 "or use --method occlusion for an artifact")
        if self.method not in ("gradcam", "occlusion"):
            raise EdgehoundError(f"unknown saliency method {method!r} (gradcam, occlusion or auto)")

    def probs(self, images: np.ndarray) -> np.ndarray:
        from edgehound.benchmarks.robustness import probabilities

        return probabilities(self.classifier if self.model is None else self.model, self.spec, images)

    def explain(self, image: np.ndarray) -> Explained:
        p = self.probs(image[None])[0]
        label = int(p.argmax())
        if self.method == "gradcam":
            heat = gradcam(self.model, normalize(image, self.spec), label)
        else:
            heat = occlusion(self.probs, image, label)
        return Explained(image, heat, label, float(p[label]))


def whole_photo(spec: PreprocessSpec) -> PreprocessSpec:
    """The spec without the box crop: a map is judged by the box, so the model must see around it."""
    return PreprocessSpec.from_dict({**spec.to_dict(), "use_boxes": False})


def last_conv_block(model):
    """The module whose output Grad-CAM explains: the last ReLU of the feature extractor (the last conv
    block's activations, before its pooling)."""
    from torch import nn

    relus = [m for m in model.features if isinstance(m, nn.ReLU)]
    if not relus:
        raise EdgehoundError("the model has no ReLU in .features to explain")
    return relus[-1]


def gradcam(model, chw: np.ndarray, target: int) -> np.ndarray:
    """Grad-CAM of class `target` for one normalised CxHxW input, upsampled to the input's size. An ensemble's
    map is the mean of its members' (each one's gradients of its own logit: the ensemble's is their mean)."""
    import torch
    from captum.attr import LayerGradCam

    heats = []
    for member in getattr(model, "members", [model]):
        x = torch.from_numpy(chw[None]).requires_grad_(True)
        cam = LayerGradCam(member, last_conv_block(member)).attribute(x, target=target, relu_attributions=True)
        heats.append(cv2.resize(cam[0, 0].detach().numpy().astype(np.float32), (chw.shape[2], chw.shape[1]),
                                interpolation=cv2.INTER_LINEAR))
    return _unit(np.mean(heats, axis=0))


def occlusion(probs: ProbsFn, image: np.ndarray, target: int, window: float = 0.2, stride: float = 0.1) -> np.ndarray:
    """Drop in P(target) when a square of `window` x the side, filled with the normalisation's mean
    grey, covers each place (stride: the step, as a share of the side); each pixel averages the drops
    of the squares that covered it. Negative drops (the patch helped) count as zero."""
    side = image.shape[0]
    win, step = max(2, int(round(window * side))), max(1, int(round(stride * side)))
    starts = sorted(set(list(range(0, side - win + 1, step)) + [side - win]))
    grey = np.array([124, 116, 104], np.uint8)  # ImageNet's mean pixel: it normalises to ~0
    batch, places = [], []
    for y in starts:
        for x in starts:
            occluded = image.copy()
            occluded[y:y + win, x:x + win] = grey
            batch.append(occluded)
            places.append((y, x))
    base = probs(image[None])[0, target]
    drops = base - probs(np.stack(batch))[:, target]
    total, count = np.zeros(image.shape[:2], np.float32), np.zeros(image.shape[:2], np.float32)
    for (y, x), d in zip(places, drops):
        total[y:y + win, x:x + win] += max(float(d), 0.0)
        count[y:y + win, x:x + win] += 1
    return _unit(total / np.maximum(count, 1))


def _unit(heat: np.ndarray) -> np.ndarray:
    heat = np.maximum(np.nan_to_num(heat), 0)
    top = heat.max()
    return (heat / top).astype(np.float32) if top > 0 else heat.astype(np.float32)


def coarse(heat: np.ndarray, side: int = 16) -> list[list[float]]:
    """The map at side x side (area means), small enough for JSON: what two models' maps are compared on."""
    return np.round(cv2.resize(heat, (side, side), interpolation=cv2.INTER_AREA), 3).tolist()


def map_agreement(a: dict, b: dict) -> float | None:
    """Mean Pearson correlation of two saliency reports' maps of the same photos (None: no pairs)."""
    maps_b = {r["photo"]: r["map16"] for r in b["photos"]}
    pairs = [(np.ravel(r["map16"]), np.ravel(maps_b[r["photo"]])) for r in a["photos"] if r["photo"] in maps_b]
    scores = [float(np.corrcoef(x, y)[0, 1]) for x, y in pairs if x.std() > 0 and y.std() > 0]
    return float(np.mean(scores)) if scores else None


def box_on_input(box, height: int, width: int, spec: PreprocessSpec) -> tuple[int, int, int, int]:
    """A box in the photo's pixels -> the same box on the model's size x size input (no box crop)."""
    x0, y0, x1, y1 = crop_region(height, width, whole_photo(spec))
    sx, sy = spec.size / (x1 - x0), spec.size / (y1 - y0)
    bx0, by0 = np.clip([(box[0] - x0) * sx, (box[1] - y0) * sy], 0, spec.size)
    bx1, by1 = np.clip([(box[2] - x0) * sx, (box[3] - y0) * sy], 0, spec.size)
    return int(round(bx0)), int(round(by0)), int(round(bx1)), int(round(by1))


def box_share(heat: np.ndarray, box) -> tuple[float, float]:
    """(share of the map inside the box, share of the picture the box covers)."""
    x0, y0, x1, y1 = box
    inside = float(heat[y0:y1, x0:x1].sum())
    total = float(heat.sum())
    area = (x1 - x0) * (y1 - y0) / heat.size
    return (inside / total if total > 0 else 0.0), area


def overlay(result: Explained, class_names: list[str], box=None, display: int = 256) -> np.ndarray:
    """The photo with the map on top (jet colours, half transparent), the answer written in the
    picture, and the dog's box when known: RGB uint8 display x display."""
    img = cv2.resize(result.image, (display, display), interpolation=cv2.INTER_LINEAR)
    heat = cv2.resize(result.saliency, (display, display), interpolation=cv2.INTER_LINEAR)
    colour = cv2.cvtColor(cv2.applyColorMap(np.uint8(heat * 255), cv2.COLORMAP_JET), cv2.COLOR_BGR2RGB)
    out = cv2.addWeighted(img, 0.55, colour, 0.45, 0)
    if box is not None:
        s = display / result.image.shape[0]
        cv2.rectangle(out, (int(box[0] * s), int(box[1] * s)), (int(box[2] * s) - 1, int(box[3] * s) - 1),
                      (255, 255, 255), 2)
    text = f"{class_names[result.label]} {result.confidence * 100:.0f}%"
    cv2.rectangle(out, (0, 0), (display, 22), (0, 0, 0), -1)
    cv2.putText(out, text, (5, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def write_png(path: Path, rgb: np.ndarray) -> None:
    ok, buf = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    atomic_write_bytes(path, buf.tobytes())


def explain_samples(explainer: Explainer, samples: list[Sample], out: Path, pngs: int | None = None,
                    progress: bool = True) -> dict:
    """A map and a PNG per photo (the first `pngs` photos when given), and for photos with a box the
    share of the map inside it. Writes out/saliency.json and returns it. Unreadable photos are skipped
    and named."""
    from tqdm import tqdm

    from edgehound.runtime.errors import ImageError

    names = [c["name"] for c in explainer.classes]
    index = {c["wnid"]: i for i, c in enumerate(explainer.classes)}
    out.mkdir(parents=True, exist_ok=True)
    rows, skipped = [], []
    for i, sample in enumerate(tqdm(samples, desc="explaining", unit="img", disable=not progress, leave=False)):
        try:
            rgb = load_image(sample.path)
        except ImageError as e:
            skipped.append(str(e))
            continue
        image = prepare(rgb, explainer.view)
        result = explainer.explain(image)
        row = {"photo": str(sample.path), "predicted": names[result.label], "confidence": round(result.confidence, 4),
               "map16": coarse(result.saliency)}
        if sample.wnid in index:
            row["true"] = names[index[sample.wnid]]
        box = None
        if sample.box is not None:
            box = box_on_input(sample.box, rgb.shape[0], rgb.shape[1], explainer.spec)
            row["box_share"], row["box_area"] = (round(v, 4) for v in box_share(result.saliency, box))
        if pngs is None or i < pngs:
            png = out / f"{Path(sample.path).stem}.png"
            write_png(png, overlay(result, names, box))
            row["png"] = png.name
        rows.append(row)
    boxed = [r for r in rows if "box_share" in r]
    known = [r for r in rows if "true" in r]
    report = {"model": explainer.source, "method": explainer.method, "photos": rows, "skipped": skipped,
              "accuracy": round(float(np.mean([r["true"] == r["predicted"] for r in known])), 4) if known else None,
              "mean_box_share": round(float(np.mean([r["box_share"] for r in boxed])), 4) if boxed else None,
              "mean_box_area": round(float(np.mean([r["box_area"] for r in boxed])), 4) if boxed else None,
              "n_boxed": len(boxed)}
    atomic_write_bytes(out / "saliency.json", (json.dumps(report, indent=1) + "\n").encode())
    return report


def composite_dataset(dogs: list[Sample], backgrounds: list[Sample], classes: list[Breed], out: Path,
                      canvas: int = 480, scale: tuple[float, float] = (0.4, 0.6), seed: int = 0) -> int:
    """A Stanford-layout folder with known boxes: each dog photo, shrunk to `scale` of the canvas side,
    pasted at a random place on a square canvas filled with a heavily blurred piece of a background
    photo (colours and light of a real scene, no recognisable dog). Box = where the photo was pasted.
    Returns the number of composites written."""
    rng = np.random.default_rng(seed)
    folders = {b.wnid: b.folder for b in classes}
    written = 0
    for i, dog in enumerate(dogs):
        rgb = load_image(dog.path)
        bg_rgb = load_image(backgrounds[i % len(backgrounds)].path)
        side = min(bg_rgb.shape[:2]) // 3  # a third of the background photo, blown up and blurred
        y, x = rng.integers(0, bg_rgb.shape[0] - side + 1), rng.integers(0, bg_rgb.shape[1] - side + 1)
        bg = cv2.resize(bg_rgb[y:y + side, x:x + side], (canvas, canvas), interpolation=cv2.INTER_CUBIC)
        bg = cv2.GaussianBlur(bg, (0, 0), canvas / 20)
        long_side = int(canvas * rng.uniform(*scale))
        h, w = rgb.shape[:2]
        nh, nw = (long_side, int(w * long_side / h)) if h >= w else (int(h * long_side / w), long_side)
        dog_img = cv2.resize(rgb, (nw, nh), interpolation=cv2.INTER_AREA)
        y0, x0 = int(rng.integers(0, canvas - nh + 1)), int(rng.integers(0, canvas - nw + 1))
        bg[y0:y0 + nh, x0:x0 + nw] = dog_img
        folder = folders[dog.wnid]
        stem = f"{Path(dog.path).stem}_c{i}"
        ok, buf = cv2.imencode(".jpg", cv2.cvtColor(bg, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 92])
        atomic_write_bytes(out / "Images" / folder / f"{stem}.jpg", buf.tobytes())
        atomic_write_bytes(out / "Annotation" / folder / stem, _voc_xml(stem, canvas, (x0, y0, x0 + nw, y0 + nh)))
        written += 1
    return written


def _voc_xml(stem: str, canvas: int, box) -> bytes:
    root = ET.Element("annotation")
    ET.SubElement(root, "filename").text = stem
    size = ET.SubElement(root, "size")
    for key, v in (("width", canvas), ("height", canvas), ("depth", 3)):
        ET.SubElement(size, key).text = str(v)
    bb = ET.SubElement(ET.SubElement(root, "object"), "bndbox")
    for key, v in zip(("xmin", "ymin", "xmax", "ymax"), box):
        ET.SubElement(bb, key).text = str(v)
    return ET.tostring(root)
