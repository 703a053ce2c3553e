"""Download Stanford Dogs (images + bounding boxes) for users with internet: resumable, checked, with progress.

`edgehound data download --root DIR` fetches images.tar and annotation.tar into DIR, resuming a
partial download with an HTTP Range request, verifies each file's SHA-256 when one is known
(`--sha256 NAME=HEX`; a verified hash is kept beside the file so later runs re-check it), and
extracts them to DIR/Images and DIR/Annotation, the layout `read_dataset` reads.
"""

from __future__ import annotations

import http.client
import re
import shutil
import tarfile
import urllib.error
import urllib.request
from pathlib import Path

from tqdm import tqdm

from edgehound.runtime.errors import EdgehoundError
from edgehound.util import sha256_file

STANFORD_BASE_URL = "http://vision.stanford.edu/aditya86/ImageNetDogs/"
STANFORD_FILES = ("images.tar", "annotation.tar")


def download_file(url: str, dest: Path, sha256: str | None = None, progress: bool = True, timeout: float = 30) -> Path:
    """Fetch url to dest, resuming from dest.part; verify sha256 when given. Returns dest."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.is_file() and (sha256 is None or sha256_file(dest) == sha256):
        return dest
    part = dest.with_name(dest.name + ".part")
    have = part.stat().st_size if part.is_file() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            if have and response.status != 206:  # the server ignored Range: start over
                have = 0
            elif have and _range_start(response.headers.get("Content-Range")) not in (None, have):
                raise EdgehoundError(f"{url}: the server resumed at another byte than asked ({have}); "
                                     f"remove {part} to download from the start")
            length = response.headers.get("Content-Length")
            expected = int(length) if length else None  # this response's body; None: the server did not say
            received = 0
            mode = "ab" if have else "wb"
            with open(part, mode) as f, tqdm(total=expected + have if expected else None, initial=have, unit="B",
                                             unit_scale=True, desc=dest.name, disable=not progress, leave=False) as bar:
                while chunk := response.read(1 << 16):
                    f.write(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
            if expected is not None and received < expected:  # the connection closed early: keep it, resume later
                raise EdgehoundError(f"{url}: download cut off after {have + received} of {have + expected} bytes; "
                                     "run the command again to resume")
    except urllib.error.HTTPError as e:
        complete = _range_total(e.headers.get("Content-Range") if e.headers else None)
        if not (e.code == 416 and have and complete == have):  # 416: asked past the end of a file we hold whole
            raise EdgehoundError(f"{url}: download failed (HTTP {e.code} {e.reason})"
                                 + (f"; {part} does not match the server's file: remove it and run again"
                                    if e.code == 416 else "")) from None
    except (urllib.error.URLError, TimeoutError, ConnectionError, http.client.HTTPException) as e:
        raise EdgehoundError(f"{url}: download interrupted ({e}); run the command again to resume") from None
    if sha256 is not None:
        got = sha256_file(part)
        if got != sha256:
            part.unlink()
            raise EdgehoundError(f"{url}: checksum mismatch (expected sha256 {sha256}, got {got}); the partial file was removed")
    part.replace(dest)
    return dest


def _range_start(content_range: str | None) -> int | None:
    """N of a 'bytes N-M/T' Content-Range header."""
    m = re.fullmatch(r"bytes (\d+)-\d+/(\d+|\*)", (content_range or "").strip())
    return int(m.group(1)) if m else None


def _range_total(content_range: str | None) -> int | None:
    """T of a 'bytes */T' (or 'bytes N-M/T') Content-Range header: the whole file's size."""
    m = re.fullmatch(r"bytes (?:\*|\d+-\d+)/(\d+)", (content_range or "").strip())
    return int(m.group(1)) if m else None


def extract(archive: Path, root: Path) -> None:
    marker = root / f".{archive.name}.extracted"
    if marker.is_file():
        return
    try:
        with tarfile.open(archive) as tar:
            tar.extractall(root, filter="data")  # refuses absolute paths and links out of root
    except tarfile.TarError as e:
        raise EdgehoundError(f"{archive}: not a readable tar archive ({e})") from None
    marker.touch()


def download_stanford(root: str | Path, base_url: str = STANFORD_BASE_URL, checksums: dict[str, str] | None = None,
                      progress: bool = True, keep_archives: bool = True) -> Path:
    """Download and extract Stanford Dogs into root (root/Images, root/Annotation)."""
    root = Path(root)
    checksums = dict(checksums or {})
    for name in STANFORD_FILES:
        known = root / f"{name}.sha256"
        expected = checksums.get(name) or (known.read_text().strip() if known.is_file() else None)
        archive = download_file(base_url.rstrip("/") + "/" + name, root / name, expected, progress)
        if expected is None:  # first download without a published hash: record it for later re-checks
            known.write_text(sha256_file(archive) + "\n")
        extract(archive, root)
        if not keep_archives:
            archive.unlink()
    if not (root / "Images").is_dir():
        raise EdgehoundError(f"{root}: the archives did not contain an Images/ folder")
    shutil.rmtree(root / "__MACOSX", ignore_errors=True)
    return root
