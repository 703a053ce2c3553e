"""The Stanford Dogs download against a local HTTP server on loopback: resume, checksum, extraction."""

import hashlib
import io
import tarfile
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import pytest

from conftest import GOLDEN, sample_photos
from edgehound.runtime.errors import EdgehoundError
from edgehound.runtime.datasets import read_dataset
from edgehound.train.download import download_file, download_stanford

FOLDER = "n02099601-golden_retriever"
BOX = "<annotation><object><bndbox><xmin>5</xmin><ymin>6</ymin><xmax>100</xmax><ymax>120</ymax></bndbox></object></annotation>"


class RangeHandler(SimpleHTTPRequestHandler):
    """Serves files from a folder, honouring `Range: bytes=N-` like a real web server."""

    requests_seen: list = []

    def do_GET(self):
        self.requests_seen.append((self.path, self.headers.get("Range")))
        path = self.translate_path(self.path)
        try:
            data = open(path, "rb").read()
        except OSError:
            self.send_error(404)
            return
        start = int(self.headers["Range"].split("=")[1].rstrip("-")) if self.headers.get("Range") else 0
        self.send_response(206 if start else 200)
        self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        self.wfile.write(data[start:])

    def log_message(self, *args):
        pass


def tar_bytes(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@pytest.fixture
def server(tmp_path):
    served = tmp_path / "served"
    served.mkdir()
    photos = sample_photos(GOLDEN, 3)
    (served / "images.tar").write_bytes(tar_bytes(
        {f"Images/{FOLDER}/{GOLDEN}_{i}.jpg": p.read_bytes() for i, p in enumerate(photos)}))
    (served / "annotation.tar").write_bytes(tar_bytes({f"Annotation/{FOLDER}/{GOLDEN}_0": BOX.encode()}))
    RangeHandler.requests_seen = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(RangeHandler, directory=str(served)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/", served
    httpd.shutdown()


def sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_download_resumes_verifies_and_extracts(server, tmp_path):
    url, served = server
    root = tmp_path / "stanford"
    root.mkdir()
    images = (served / "images.tar").read_bytes()
    (root / "images.tar.part").write_bytes(images[:5000])  # an earlier, interrupted download

    download_stanford(root, url, {"images.tar": sha(served / "images.tar")}, progress=False)

    assert ("/images.tar", "bytes=5000-") in RangeHandler.requests_seen  # resumed, not restarted
    assert (root / "images.tar").read_bytes() == images
    ds = read_dataset(root)
    assert ds.layout == "stanford" and len(ds.samples) == 3
    assert [s.box for s in ds.samples if s.box] == [(5, 6, 100, 120)]
    recorded = (root / "annotation.tar.sha256").read_text().strip()
    assert recorded == sha(served / "annotation.tar")  # kept to re-check later downloads

    RangeHandler.requests_seen.clear()
    download_stanford(root, url, progress=False)  # already there: nothing fetched again
    assert RangeHandler.requests_seen == []


def test_checksum_mismatch_is_refused_and_partial_removed(server, tmp_path):
    url, _ = server
    dest = tmp_path / "images.tar"
    with pytest.raises(EdgehoundError, match="checksum mismatch"):
        download_file(url + "images.tar", dest, sha256="0" * 64, progress=False)
    assert not dest.exists() and not (tmp_path / "images.tar.part").exists()


def test_missing_file_is_a_clear_error(server, tmp_path):
    url, _ = server
    with pytest.raises(EdgehoundError, match="HTTP 404"):
        download_file(url + "nothing.tar", tmp_path / "nothing.tar", progress=False)


def serve_once(handler_body):
    """A loopback server whose GET is handler_body(handler, data); returns (url, stop)."""
    from http.server import BaseHTTPRequestHandler

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            handler_body(self)

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{httpd.server_address[1]}/images.tar", httpd.shutdown


def test_a_download_cut_off_mid_body_is_kept_as_partial_and_resumed(tmp_path):
    data = bytes(range(256)) * 400  # 102,400 bytes
    calls = []

    def body(h):  # the first connection announces every byte and closes after half; the next honours Range
        start = int(h.headers["Range"].split("=")[1].rstrip("-")) if h.headers.get("Range") else 0
        calls.append(start)
        h.send_response(206 if start else 200)
        if start:
            h.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        h.send_header("Content-Length", str(len(data) - start))
        h.end_headers()
        h.wfile.write(data[start:] if len(calls) > 1 else data[: len(data) // 2])
        h.wfile.flush()
        h.close_connection = True

    url, stop = serve_once(body)
    root = tmp_path / "stanford"
    try:
        with pytest.raises(EdgehoundError, match="cut off after 51200 of 102400 bytes"):
            download_stanford(root, url.rsplit("/", 1)[0], progress=False)
        assert not (root / "images.tar").exists() and not (root / "images.tar.sha256").exists()  # no hash trusted
        assert (root / "images.tar.part").read_bytes() == data[:51200]  # kept for the resume
        assert download_file(url, root / "images.tar", progress=False).read_bytes() == data
        assert calls == [0, 51200]
    finally:
        stop()


def test_a_server_that_ignores_range_restarts_the_file(tmp_path):
    data = b"x" * 5000

    def body(h):
        h.send_response(200)
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)

    url, stop = serve_once(body)
    dest = tmp_path / "images.tar"
    (tmp_path / "images.tar.part").write_bytes(b"stale bytes of another version")
    try:
        assert download_file(url, dest, progress=False).read_bytes() == data  # not appended to the stale part
    finally:
        stop()


@pytest.mark.parametrize("total, ok", [(30, True), (10, False)])
def test_http_416_means_complete_only_when_the_sizes_agree(tmp_path, total, ok):
    def body(h):
        h.send_response(416)
        h.send_header("Content-Range", f"bytes */{total}")
        h.send_header("Content-Length", "0")
        h.end_headers()

    url, stop = serve_once(body)
    dest = tmp_path / "images.tar"
    (tmp_path / "images.tar.part").write_bytes(b"y" * 30)
    try:
        if ok:
            assert download_file(url, dest, progress=False).read_bytes() == b"y" * 30
        else:
            with pytest.raises(EdgehoundError, match="HTTP 416.*does not match the server's file"):
                download_file(url, dest, progress=False)
            assert (tmp_path / "images.tar.part").exists()  # nothing deleted behind the user's back
    finally:
        stop()
