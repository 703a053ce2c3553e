"""Classifier: load an artifact through its manifest, classify images with training's preprocessing.

    clf = Classifier.load("runtime/models/edge/manifest.json")   # or an export folder / artifact file
    label, confidence, scores = clf.classify("dog.jpg")
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgehound.runtime.backends import load_backend
from edgehound.runtime.errors import EdgehoundError
from edgehound.runtime.manifest import Artifact, select_artifact, verify
from edgehound.runtime.preprocess import PreprocessSpec, load_image, normalize, prepare


@dataclass
class Prediction:
    label: str
    confidence: float
    scores: np.ndarray  # softmax probabilities, in the order of Classifier.labels
    logits: np.ndarray | None = None  # the model's raw outputs (what export parity compares)

    def __iter__(self):  # label, confidence, scores = clf.classify(...)
        return iter((self.label, self.confidence, self.scores))


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def in_batches(predict, images: np.ndarray, size: int = 32) -> np.ndarray:
    """predict over many images, `size` at a time: a backend given hundreds at once holds all their
    activations (seed-improved at 300x300: about 12 MB per photo for its first layer alone)."""
    return np.concatenate([np.asarray(predict(images[i:i + size])) for i in range(0, len(images), size)])


def with_flip(predict, layout: str):
    """Test-time flip: a predictor whose logits are the mean of the batch's and its mirror image's.
    Twice the inference per photo: an option, off by default on devices."""
    width_axis = 3 if layout == "NCHW" else 2

    def flipped(batch: np.ndarray) -> np.ndarray:
        return (np.asarray(predict(batch)) + np.asarray(predict(np.ascontiguousarray(np.flip(batch, width_axis))))) / 2

    return flipped


class Classifier:
    def __init__(self, artifact: Artifact, flip: bool = False, **backend_options):
        self.artifact = artifact
        self.flip = flip
        entry = artifact.entry
        self.classes: list[dict] = entry["classes"]
        self.labels = [c["name"] for c in self.classes]
        self.spec = PreprocessSpec.from_dict(entry["preprocess"])
        self.input_shape = entry["input"]["shape"]
        verify(artifact)
        self.backend = load_backend(artifact.backend, artifact.path, **backend_options)
        self._run = with_flip(self.backend.predict, self.spec.layout) if flip else self.backend.predict
        # a model that takes integers gets them straight from the pixels (preprocess.normalize)
        self.input_quantization = self.backend.input_quantization
        actual = self.backend.input_shape  # what the file itself takes, where the backend says
        if actual is not None and (len(actual) != len(self.input_shape) or any(
                isinstance(a, int) and isinstance(m, int) and a != m for a, m in zip(actual[1:], self.input_shape[1:]))):
            raise EdgehoundError(f"{artifact.path}: takes input {tuple(actual)}, but its manifest says "
                                 f"{tuple(self.input_shape)}: the manifest does not describe this file")

    @classmethod
    def load(cls, source: str | Path, artifact: str | None = None, flip: bool = False, **backend_options) -> "Classifier":
        """source: manifest.json, an export folder, or an artifact file beside its manifest.
        artifact: which entry (default: the manifest's pick, else the first usable one).
        flip: average each photo's logits with its mirror image's (twice the inference)."""
        chosen = select_artifact(source, artifact)
        if chosen.note:
            print(f"note: {chosen.note}", file=sys.stderr)
        return cls(chosen, flip, **backend_options)

    def predict(self, batch: np.ndarray) -> np.ndarray:
        """Normalised float32 batch in the artifact's layout (or `to_input`'s) -> logits (N x classes)."""
        expected = tuple(self.input_shape[1:])
        if batch.ndim != 4 or tuple(batch.shape[1:]) != expected:
            raise EdgehoundError(f"{self.artifact.name}: input shape {tuple(batch.shape)} does not match the "
                                 f"artifact's (N, {', '.join(map(str, expected))})")
        try:
            return self._run(batch)
        except Exception as e:  # a backend's own error types: name the artifact, not a library's internals
            raise EdgehoundError(f"{self.artifact.path}: {self.artifact.backend} failed on an input of shape "
                                 f"{tuple(batch.shape)} ({type(e).__name__}: {str(e).splitlines()[0][:300]})") from None

    def prepare(self, image) -> np.ndarray:
        """A path or an RGB uint8 frame -> the cropped, resized uint8 image the model sees."""
        rgb = load_image(image) if isinstance(image, (str, Path)) else image
        return prepare(rgb, self.spec)

    def to_input(self, images: np.ndarray) -> np.ndarray:
        """Prepared uint8 RGB images (NxHxWx3) -> the model's input batch: normalised float32, or
        directly the integers of a model with quantized input."""
        return normalize(images, self.spec, self.input_quantization)

    def classify_batch(self, images: list) -> list[Prediction]:
        batch = self.to_input(np.stack([self.prepare(im) for im in images]))
        logits = self.predict(batch)
        probs = softmax(logits)
        return [Prediction(self.labels[int(p.argmax())], float(p.max()), p, z) for p, z in zip(probs, logits)]

    def classify(self, image) -> Prediction:
        """image: a file path or an RGB uint8 HxWx3 array (e.g. a camera frame converted from BGR)."""
        return self.classify_batch([image])[0]
