"""The camera classifier: frames from any source, classified live, shown, recorded or streamed as JSON.

Capture runs in its own thread so grabbing a frame and classifying one overlap. A live source
(webcam, RTSP/HTTP stream, picamera2) keeps only the newest frame: the classifier never falls
behind real time. A video file or a folder hands over every frame in order. When a source drops,
the loop says so and reconnects with exponential back-off; Ctrl-C ends it cleanly with a summary.

Every frame carries a time in seconds (a video's own frame times, the capture time of a live
source, one second per photo of a folder), so smoothing is the same at any frame rate.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from edgehound.runtime.classifier import Classifier, softmax
from edgehound.runtime.errors import EdgehoundError
from edgehound.runtime.host import peak_rss_mb
from edgehound.runtime.preprocess import IMAGE_SUFFIXES, load_image


class FrameSource:
    """Opens SRC: a webcam index, a video file, an rtsp/http URL, a folder of images, or 'picamera2'.

    capture_size (width, height): what to ask a webcam or picamera2 for. A camera scales in its own
    hardware for free; every pixel it sends costs the CPU a copy and a share of the resize."""

    def __init__(self, spec: str, capture_size: tuple[int, int] | None = None):
        self.spec = spec
        self.capture_size = capture_size
        self.kind = self._kind(spec)
        self.live = self.kind in ("webcam", "stream", "picamera2")
        self.position = 0  # frames delivered so far (to resume a file where it broke)
        self.timestamp = 0.0  # seconds: the last frame's time (see the module's docstring)
        self._fps = 0.0
        self.expected: int | None = None  # frame count a file announces
        self._cap = None
        self._files: list[Path] = []
        self._picam = None

    @staticmethod
    def _kind(spec: str) -> str:
        if spec.isdigit():
            return "webcam"
        if spec == "picamera2":
            return "picamera2"
        if "://" in spec:
            return "stream"
        path = Path(spec)
        if path.is_dir():
            return "folder"
        if path.is_file():
            return "file"
        raise EdgehoundError(f"{spec}: no such camera, file, folder or URL")

    def open(self) -> None:
        if self.kind == "folder":
            files = sorted(p for p in Path(self.spec).iterdir() if p.is_file() and not p.name.startswith("."))
            self._files = [p for p in files if p.suffix.lower() in IMAGE_SUFFIXES]
            if not self._files:
                others = sorted({p.suffix.lower() or p.name for p in files})
                raise EdgehoundError(f"{self.spec}: no images of a supported type ({', '.join(sorted(IMAGE_SUFFIXES))})"
                                     + (f"; it holds {len(files)} other files ({', '.join(others[:5])})" if files else ""))
            self.expected = len(self._files)
            return
        if self.kind == "picamera2":
            try:
                from picamera2 import Picamera2
            except ImportError:
                raise EdgehoundError("picamera2 is not installed (Raspberry Pi OS: sudo apt install python3-picamera2)") from None
            self._picam = Picamera2()
            main = {"format": "RGB888", **({"size": self.capture_size} if self.capture_size else {})}
            self._picam.configure(self._picam.create_video_configuration(main=main))
            self._picam.start()
            return
        self.release()
        self._cap = cv2.VideoCapture(int(self.spec) if self.kind == "webcam" else self.spec)
        if not self._cap.isOpened():
            raise ConnectionError(f"{self.spec}: cannot open: " + {
                "webcam": f"no camera at index {self.spec}, or another program holds it (Linux: ls /dev/video*)",
                "stream": "the stream did not answer, or OpenCV's FFmpeg cannot read it",
                "file": "not a video OpenCV's FFmpeg can decode"}[self.kind])
        if self.kind == "webcam" and self.capture_size:  # a request: the driver picks its nearest mode
            self._cap.set(cv2.CAP_PROP_FRAME_WIDTH, self.capture_size[0])
            self._cap.set(cv2.CAP_PROP_FRAME_HEIGHT, self.capture_size[1])
        if self.kind == "file":
            count = int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT))
            self.expected = count if count > 0 else None
            fps = self._cap.get(cv2.CAP_PROP_FPS)
            self._fps = fps if 0 < fps < 1000 else 30.0  # a file may say 0, nan or nonsense
            if self.position:
                self._cap.set(cv2.CAP_PROP_POS_FRAMES, self.position)

    def read(self) -> np.ndarray | None:
        """The next frame as BGR uint8, or None when the source has nothing (ended or dropped)."""
        if self.kind == "folder":
            while self.position < len(self._files):
                path = self._files[self.position]
                self.position += 1
                self.timestamp = float(self.position)  # a slideshow: one second per photo
                try:
                    return cv2.cvtColor(load_image(path), cv2.COLOR_RGB2BGR)
                except EdgehoundError as e:
                    print(f"skipped: {e}", file=sys.stderr)
            return None
        if self.kind == "picamera2":
            self.timestamp = time.monotonic()
            return self._picam.capture_array()  # RGB888 in picamera2 is BGR in memory, as OpenCV expects
        ok, frame = self._cap.read() if self._cap is not None else (False, None)
        if not ok or frame is None:
            return None
        self.position += 1
        self.timestamp = self.position / self._fps if self.kind == "file" else time.monotonic()
        return frame

    def finished(self) -> bool:
        """True when a file or folder ended where it should; False means the source dropped."""
        if self.live:
            return False
        return self.expected is None or self.position >= self.expected

    def release(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None


@dataclass
class Stats:
    started: float = field(default_factory=time.perf_counter)
    frames_read: int = 0
    frames_classified: int = 0
    reconnects: int = 0
    capture_ms: list = field(default_factory=list)  # time spent reading a frame (capture thread)
    wait_ms: list = field(default_factory=list)  # time the classifier waited for a frame
    preprocess_ms: list = field(default_factory=list)
    inference_ms: list = field(default_factory=list)
    loop_ms: list = field(default_factory=list)  # one whole iteration of the classifier loop

    def summary(self) -> dict:
        elapsed = time.perf_counter() - self.started

        def pct(values, q):
            return round(float(np.percentile(values, q)), 3) if values else None

        loop_total = sum(self.loop_ms) or 1.0
        return {
            "frames_read": self.frames_read, "frames_classified": self.frames_classified,
            "reconnects": self.reconnects, "seconds": round(elapsed, 3),
            "fps": round(self.frames_classified / elapsed, 2) if elapsed else None,
            "latency_ms": {"p50": pct(self.loop_ms, 50), "p90": pct(self.loop_ms, 90), "p99": pct(self.loop_ms, 99)},
            "mean_ms": {k: round(float(np.mean(v)), 3) if v else None for k, v in
                        (("capture", self.capture_ms), ("wait", self.wait_ms), ("preprocess", self.preprocess_ms),
                         ("inference", self.inference_ms), ("frame", self.loop_ms))},
            "share_of_frame_time": {k: round(sum(v) / loop_total, 3) for k, v in
                                    (("wait_for_capture", self.wait_ms), ("preprocess", self.preprocess_ms),
                                     ("inference", self.inference_ms))},
            "peak_rss_mb": round(peak, 1) if (peak := peak_rss_mb()) else None,
        }


class CaptureThread(threading.Thread):
    """Reads frames into a one-slot buffer: newest-wins for live sources, hand-over for files."""

    def __init__(self, source: FrameSource, stats: Stats, max_reconnects: int, backoff_s: float, log):
        super().__init__(daemon=True)
        self.source, self.stats, self.log = source, stats, log
        self.max_reconnects, self.backoff_s = max_reconnects, backoff_s
        self.cond = threading.Condition()
        self.frame: np.ndarray | None = None
        self.frame_id = 0
        self.frame_time = 0.0
        self.done = False
        self.error: str | None = None
        self.stop_event = threading.Event()

    def run(self) -> None:
        failures = 0
        while not self.stop_event.is_set():
            t0 = time.perf_counter()
            frame = self.source.read()
            if frame is None:
                if self.source.finished():
                    break
                failures += 1
                if failures > self.max_reconnects:
                    self.error = f"{self.source.spec}: source lost after {self.max_reconnects} reconnect attempts"
                    break
                delay = self.backoff_s * 2 ** (failures - 1)
                self.log(f"source dropped at frame {self.source.position}; reconnecting in {delay:.1f} s "
                         f"(attempt {failures}/{self.max_reconnects})")
                if self.stop_event.wait(delay):
                    break
                try:
                    self.source.open()
                    self.stats.reconnects += 1
                except (ConnectionError, EdgehoundError) as e:
                    self.log(f"reconnect failed: {e}")
                continue
            failures = 0
            self.stats.capture_ms.append((time.perf_counter() - t0) * 1000)
            self.stats.frames_read += 1
            with self.cond:
                if not self.source.live:  # files: wait until the classifier took the last frame
                    while self.frame is not None and not self.stop_event.is_set():
                        self.cond.wait(0.1)
                self.frame, self.frame_id, self.frame_time = frame, self.frame_id + 1, self.source.timestamp
                self.cond.notify_all()
        with self.cond:
            self.done = True
            self.cond.notify_all()

    def take(self) -> tuple[np.ndarray | None, int, float]:
        """The newest frame not yet taken, its number and time (blocks until one comes or the source ends)."""
        with self.cond:
            while self.frame is None and not self.done:
                self.cond.wait(0.1)
            frame, fid, t = self.frame, self.frame_id, self.frame_time
            self.frame = None
            self.cond.notify_all()
            return frame, fid, t

    def stop(self) -> None:
        self.stop_event.set()
        with self.cond:
            self.cond.notify_all()


def capture_size_for(model_size: int) -> tuple[int, int]:
    """The smallest usual 4:3 camera mode that still gives the model its full input size."""
    return next(((w, h) for w, h in ((320, 240), (640, 480), (1280, 960)) if h >= model_size), (1280, 960))


class Smoother:
    """The mean of the class scores over the last `window_s` seconds of frames, so one odd frame does
    not flip the label. A frame whose own label differs from the smoothed one with a confidence above
    `takeover` starts a new window at once: when the camera turns to another dog the label follows
    within a frame instead of lagging for most of a window (takeover 1: never)."""

    def __init__(self, window_s: float = 0.3, takeover: float = 0.6):
        self.window_s, self.takeover = window_s, takeover
        self.frames: deque[tuple[float, np.ndarray]] = deque()
        self.smoothed: np.ndarray | None = None  # the mean over `frames`, as the last update returned it

    def update(self, t: float, scores: np.ndarray) -> np.ndarray:
        if self.smoothed is not None and scores.argmax() != self.smoothed.argmax() and scores.max() > self.takeover:
            self.frames.clear()
        self.frames.append((t, scores))
        while len(self.frames) > 1 and self.frames[0][0] <= t - self.window_s:  # keep (t - window, t] and the newest
            self.frames.popleft()
        self.smoothed = np.mean([s for _, s in self.frames], axis=0)
        return self.smoothed


def annotate(frame: np.ndarray, label: str, confidence: float, fps: float) -> np.ndarray:
    text = f"{label} {confidence * 100:.0f}%  {fps:.1f} FPS"
    cv2.rectangle(frame, (0, 0), (frame.shape[1], 34), (0, 0, 0), -1)
    cv2.putText(frame, text, (8, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (255, 255, 255), 2, cv2.LINE_AA)
    return frame


def run_camera(clf: Classifier, source_spec: str, headless: bool = False, record: str | None = None,
               every: int = 1, smooth_s: float = 0.3, takeover: float = 0.6, capture_size: tuple[int, int] | None = None,
               max_frames: int | None = None, max_reconnects: int = 5,
               backoff_s: float = 0.5, out=sys.stdout, log=None) -> dict:
    """Classify frames until the source ends, max_frames, or Ctrl-C. Returns the summary."""
    log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    if record and not Path(record).resolve().parent.is_dir():
        raise EdgehoundError(f"{record}: cannot record there: {Path(record).resolve().parent} is not a folder")
    source = FrameSource(source_spec, capture_size)
    try:
        source.open()
    except ConnectionError as e:
        raise EdgehoundError(str(e)) from None
    stats = Stats()
    # One frame is too small for OpenCV's thread pool to pay: its threads cost more than they save
    # and take the cores that capture and inference need (resize 0.76 -> 0.48 ms on 2 cores).
    cv_threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    capture = CaptureThread(source, stats, max_reconnects, backoff_s, log)
    capture.start()
    writer = None
    smoother = Smoother(smooth_s, takeover)
    label, confidence, fps_window = "", 0.0, deque(maxlen=30)
    interrupted = False
    try:
        while max_frames is None or stats.frames_classified < max_frames:
            t_loop = time.perf_counter()
            frame, frame_id, frame_time = capture.take()
            t_got = time.perf_counter()
            if frame is None:
                break
            stats.wait_ms.append((t_got - t_loop) * 1000)
            if (frame_id - 1) % every == 0:
                # crop and resize the BGR frame, then swap channels: identical to converting the whole
                # frame to RGB first (resizing works per channel), on far fewer pixels
                batch = clf.to_input(cv2.cvtColor(clf.prepare(frame), cv2.COLOR_BGR2RGB)[None])
                t_pre = time.perf_counter()
                probs = softmax(clf.predict(batch))[0]
                t_inf = time.perf_counter()
                stats.preprocess_ms.append((t_pre - t_got) * 1000)
                stats.inference_ms.append((t_inf - t_pre) * 1000)
                stats.frames_classified += 1
                mean = smoother.update(frame_time, probs)
                label, confidence = clf.labels[int(mean.argmax())], float(mean.max())
                fps_window.append(t_inf)
                fps = (len(fps_window) - 1) / (fps_window[-1] - fps_window[0]) if len(fps_window) > 1 else 0.0
                if headless:
                    out.write(json.dumps({"frame": frame_id, "label": label, "confidence": round(confidence, 4),
                                          "frame_label": clf.labels[int(probs.argmax())],
                                          "inference_ms": round((t_inf - t_pre) * 1000, 3), "fps": round(fps, 2)}) + "\n")
                    out.flush()
            if record or not headless:
                shown = annotate(frame, label, confidence, fps if fps_window else 0.0)
                if record:
                    if writer is None:
                        writer = cv2.VideoWriter(record, cv2.VideoWriter_fourcc(*"mp4v"), 15.0,
                                                 (shown.shape[1], shown.shape[0]))
                        if not writer.isOpened():  # OpenCV says nothing itself: the recording would be lost
                            raise EdgehoundError(f"{record}: cannot write a video there (not writable, or no mp4v "
                                                 "encoder in this OpenCV)")
                    writer.write(shown)
                if not headless:
                    try:
                        cv2.imshow("edgehound", shown)
                        if cv2.waitKey(1) & 0xFF in (ord("q"), 27):
                            break
                    except cv2.error:
                        raise EdgehoundError("this OpenCV has no display support: use --headless "
                                             "(optionally with --record out.mp4)") from None
            stats.loop_ms.append((time.perf_counter() - t_loop) * 1000)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        capture.stop()
        capture.join(timeout=5)
        source.release()
        cv2.setNumThreads(cv_threads)
        if writer is not None:
            writer.release()
        if not headless:
            try:
                cv2.destroyAllWindows()
            except cv2.error:
                pass
    summary = stats.summary()
    summary["interrupted"] = interrupted
    summary["error"] = capture.error
    if not summary["error"] and not interrupted and stats.frames_classified == 0:
        summary["error"] = f"{source_spec}: no frame could be classified ({stats.frames_read} read)"
    if not summary["error"] and writer is not None and not (Path(record).is_file() and Path(record).stat().st_size):
        summary["error"] = f"{record}: the recording was not written"
    if writer is not None:
        summary["recording"] = str(record)
    return summary
