import shutil
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "tests" / "sample"
GOLDEN, SAMOYED = "n02099601", "n02111889"


def sample_photos(wnid: str, n: int) -> list[Path]:
    return sorted((SAMPLE / wnid).glob("*.JPEG"))[:n]


def session_env(tmp_path_factory) -> dict:
    """Each test session uses its own image cache and tuning databases, never the user's or the repo's."""
    base = tmp_path_factory.getbasetemp()
    return {"EDGEHOUND_CACHE": str(base / "cache"), "EDGEHOUND_TUNING_DIR": str(base / "tuning")}


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    for name, value in session_env(tmp_path_factory).items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def pair_folder(tmp_path) -> Path:
    """A folder-per-breed dataset of the default pair: 20 real photos each."""
    root = tmp_path / "pair"
    for wnid in (GOLDEN, SAMOYED):
        (root / wnid).mkdir(parents=True)
        for p in sample_photos(wnid, 20):
            shutil.copy(p, root / wnid / p.name)
    return root


def write_jpeg(path: Path, image: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    ok, buf = cv2.imencode(".jpg", image)
    assert ok
    path.write_bytes(buf.tobytes())
    return path


def edgehound_cmd() -> list[str]:
    return [sys.executable, "-m", "edgehound.cli"]


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """A tiny model trained on the committed sample's default pair (seconds)."""
    import subprocess

    out = tmp_path_factory.mktemp("tiny") / "run"
    env = {**__import__("os").environ, **session_env(tmp_path_factory)}  # session fixtures run before autouse ones
    result = subprocess.run([*edgehound_cmd(), "train", "--data", str(SAMPLE), "--out", str(out), "--config", "tiny",
                             "--no-progress"], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    return out


@pytest.fixture(scope="session")
def tiny_export(tiny_run, tmp_path_factory) -> Path:
    """Every default target of the tiny model, exported once for the session."""
    import subprocess

    out = tmp_path_factory.mktemp("export") / "tiny"
    env = {**__import__("os").environ, **session_env(tmp_path_factory)}  # session fixtures run before autouse ones
    result = subprocess.run([*edgehound_cmd(), "export", str(tiny_run / "best.pt"), "--out", str(out), "--no-progress"],
                            capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return out
