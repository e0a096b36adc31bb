"""Detections drawn on a video or a folder of images, with a running FPS overlay (like the blog's videos).

:class:`Detector` is one built variant on one engine behind the shared pre/post-processing; the report
uses it for its sample images, :func:`annotate` for whole videos. The FPS on the overlay is engine time
only (``Session.run``, not decoding, letterboxing, NMS or drawing), measured per frame and smoothed, so
it tracks what the benchmark measures; it is a live indication, not a benchmark number.

Output is all-or-nothing: frames go to a temporary file (or folder) next to ``out`` that is renamed into
place at the end and removed on any error or interrupt.

Must not: build a variant (a missing build is a one-line error naming the command that builds it), or
fetch anything (drawing uses OpenCV's built-in font).
"""

from __future__ import annotations

import math
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from yolobench.errors import UserError
from yolobench.fsutil import replace_dir
from yolobench.processing import IMAGE_SUFFIXES, Detections, postprocess, preprocess

DEFAULT_CONF = 0.25  # ultralytics' predict default: what the blog's videos show
DEFAULT_IOU = 0.45
# Smoothing of the FPS overlay: an exponential moving average over roughly the last 1/alpha frames,
# steady enough to read, quick enough to follow a change of scene.
FPS_SMOOTHING = 0.1
PROGRESS_INTERVAL_S = 1.0  # at most one progress line per second (CI logs)
# The codec follows the file name. Browsers play WebM with VP9 (Chrome, Firefox, Edge, Safari 14.1+);
# they do not play MPEG-4 Part 2 ('mp4v'), the only codec opencv-python's FFmpeg writes into .mp4 here:
# it has no H.264 encoder ('avc1'/'H264' do not open: tests/test_annotate.py checks both facts).
VIDEO_CODECS = {".webm": "VP90", ".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v"}
VIDEO_SUFFIXES = tuple(VIDEO_CODECS)
BROWSER_SUFFIX = ".webm"
FALLBACK_VIDEO_FPS = 30.0  # when the source does not say (some streams report 0)
OUTPUT_MARKER = ".yolobench-annotate"  # marks a folder annotate wrote, so a rerun may replace it

Progress = Callable[[str], None]


def load_built(variant: str, profile: str, data: str | os.PathLike | None = None, store=None):
    """The variant's artifact if it is built in the store for this profile (and data), else None. Never builds."""
    from yolobench import builder
    from yolobench.store import Store

    store = store if store is not None else Store()
    key = builder.variant_key(variant, profile, data)
    return store.get(variant, key)


def class_names(artifact) -> dict[int, str]:
    names = (artifact.meta.get("dataset") or {}).get("names") or {}
    return {int(k): str(v) for k, v in names.items()}


@dataclass
class Detector:
    """One built variant on one engine: ``detect(image) -> (detections, engine milliseconds)``."""

    variant: str
    engine: str
    session: object  # yolobench.engines.Session
    names: dict[int, str]
    imgsz: int
    conf: float = DEFAULT_CONF
    iou: float = DEFAULT_IOU

    @classmethod
    def load(cls, artifact, engine: str, *, threads: int | None = None, imgsz: int | None = None,
             conf: float = DEFAULT_CONF, iou: float = DEFAULT_IOU) -> "Detector":
        """A session for ``artifact`` on ``engine``; :class:`UserError` if the engine cannot run it here."""
        from yolobench import engines

        imgsz = artifact.imgsz if imgsz is None else int(imgsz)
        if imgsz not in artifact.export_sizes:
            raise UserError(f"variant {artifact.name} is exported at {', '.join(map(str, artifact.export_sizes))} px, "
                            f"not {imgsz}")
        from yolobench.modelfiles import engine_model  # a model file runs as it is (bench --model)

        try:
            runtime = engines.get(engine)
            session = runtime.load(engine_model(artifact, runtime), batch=1, threads=threads, imgsz=imgsz)
        except engines.EngineUnsupported as err:
            raise UserError(f"{engine} cannot run {artifact.name} here: {err.reason}") from None
        return cls(variant=artifact.name, engine=engine, session=session, names=class_names(artifact),
                   imgsz=imgsz, conf=conf, iou=iou)

    @property
    def form(self) -> str:
        return str(getattr(self.session, "form", "?"))

    def detect(self, image_bgr: np.ndarray) -> tuple[Detections, float]:
        """Detections in the image's own pixels, and the engine's time for it in ms (``Session.run`` only)."""
        batch, infos = preprocess([image_bgr], self.imgsz)
        started = time.perf_counter()
        raw = self.session.run(batch)
        engine_ms = (time.perf_counter() - started) * 1000.0
        nc = getattr(self.session, "nc", None) or (len(self.names) or None)
        detections = postprocess(raw, infos, conf=self.conf, iou=self.iou, nc=nc)[0]
        return detections, engine_ms


class FpsMeter:
    """Smoothed frames per second from per-frame engine times (exponential moving average of the ms)."""

    def __init__(self, smoothing: float = FPS_SMOOTHING):
        self.smoothing = smoothing
        self.mean_ms: float | None = None
        self.total_ms = 0.0
        self.frames = 0

    def add(self, ms: float) -> float:
        self.mean_ms = ms if self.mean_ms is None else (1 - self.smoothing) * self.mean_ms + self.smoothing * ms
        self.total_ms += ms
        self.frames += 1
        return self.fps

    @property
    def fps(self) -> float:
        return 1000.0 / self.mean_ms if self.mean_ms else math.inf


# --- sources -----------------------------------------------------------------------------------------


@dataclass
class Source:
    """Frames to annotate: ``frames()`` yields (name, BGR image); ``count`` is None when unknown."""

    path: Path
    is_video: bool
    count: int | None
    fps: float
    image_paths: tuple[Path, ...] = ()

    def frames(self) -> Iterator[tuple[str, np.ndarray]]:
        import cv2

        if not self.is_video:
            for path in self.image_paths:
                data = np.fromfile(str(path), dtype=np.uint8)
                image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
                if image is None:
                    raise UserError(f"{path}: not a readable image")
                yield path.name, image
            return
        capture = cv2.VideoCapture(str(self.path))
        try:
            index = 0
            while True:
                ok, frame = capture.read()
                if not ok:
                    break
                index += 1
                yield f"frame {index}", frame
        finally:
            capture.release()


def open_source(path: str | os.PathLike) -> Source:
    """Check the source before any model is loaded: a readable video with frames, or a folder with images."""
    # FFmpeg prints its own complaint ("moov atom not found") before ours; quiet it unless the user chose a
    # level. OpenCV reads this once, when it first opens a video in the process, so it is set before that.
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
    import cv2

    path = Path(path)
    if path.is_dir():
        images = tuple(sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES))
        if not images:
            raise UserError(f"{path}: no images in this folder (looked for {', '.join(IMAGE_SUFFIXES)})")
        return Source(path=path, is_video=False, count=len(images), fps=0.0, image_paths=images)
    if not path.exists():
        raise UserError(f"{path}: no such video or image folder")
    if path.suffix.lower() in IMAGE_SUFFIXES:
        raise UserError(f"{path} is one image: pass the folder it is in (annotate takes a video or an image folder)")
    capture = cv2.VideoCapture(str(path))
    try:
        if not capture.isOpened():
            raise UserError(f"{path}: not a readable video (OpenCV cannot open it)")
        ok, _ = capture.read()
        if not ok:
            raise UserError(f"{path}: not a readable video (no frame could be decoded)")
        count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        fps = float(capture.get(cv2.CAP_PROP_FPS) or 0.0)
    finally:
        capture.release()
    if not math.isfinite(fps) or fps <= 0:
        fps = FALLBACK_VIDEO_FPS
    return Source(path=path, is_video=True, count=count if count > 0 else None, fps=fps)


def check_output(source: Source, out: str | os.PathLike) -> Path:
    """Where the result goes, checked before any work: a video file for a video, a folder for images."""
    out = Path(out)
    if source.is_video:
        if out.suffix.lower() not in VIDEO_SUFFIXES:
            raise UserError(f"--out {out}: name a video file ending in {BROWSER_SUFFIX} (VP9, plays in a browser) "
                            f"or {' or '.join(s for s in VIDEO_SUFFIXES if s != BROWSER_SUFFIX)} (mp4v, desktop players)")
        if out.is_dir():
            raise UserError(f"--out {out} is a folder: name the video file to write")
    else:
        if out.exists() and not out.is_dir():
            raise UserError(f"--out {out} is a file: an image folder is annotated into a folder")
        if out.is_dir() and any(out.iterdir()) and not (out / OUTPUT_MARKER).exists():
            raise UserError(f"--out {out} is a folder with other files in it: name a new or empty folder")
    if out.resolve() == source.path.resolve():
        raise UserError(f"--out {out} is the source itself: name another path")
    return out


# --- writing -----------------------------------------------------------------------------------------


def overlay(image_bgr: np.ndarray, detections: Detections, detector: Detector, fps: float) -> np.ndarray:
    """Boxes and labels, plus the FPS banner: engine FPS on the first line, what ran on the second."""
    from yolobench import draw

    lines = [f"{fps:.1f} FPS (engine)", f"{detector.variant} | {detector.engine}"]
    annotated = draw.draw_detections(image_bgr, detections, detector.names,
                                     avoid=[draw.banner_rect(image_bgr.shape, lines)])
    return draw.draw_banner(annotated, lines)


class _Progress:
    def __init__(self, total: int | None, say: Progress | None):
        self.total, self.say = total, say
        self.started = time.monotonic()
        self.last = -math.inf

    def update(self, done: int, final: bool = False) -> None:
        if self.say is None:
            return
        now = time.monotonic()
        if not final and now - self.last < PROGRESS_INTERVAL_S:
            return
        self.last = now
        elapsed = now - self.started
        if self.total:
            left = elapsed / done * max(self.total - done, 0) if done else math.nan
            tail = "done" if final else (f"~{left:.0f} s left" if math.isfinite(left) else "")
            self.say(f"frame {done}/{self.total}  {elapsed:.0f} s elapsed  {tail}".rstrip())
        else:
            self.say(f"frame {done}  {elapsed:.0f} s elapsed{'  done' if final else ''}")


@dataclass
class Result:
    out: Path
    frames: int
    engine_mean_ms: float


def annotate(detector: Detector, source: Source, out: Path, *, progress: Progress | None = None) -> Result:
    """Annotate every frame of ``source`` into ``out`` atomically (see the module docstring)."""
    import cv2

    out.parent.mkdir(parents=True, exist_ok=True)
    meter = FpsMeter()
    reporter = _Progress(source.count, progress)
    # One untimed run first: a session's first call includes one-off allocation, which would open the
    # overlay on a misleading number.
    frames = source.frames()
    detector.detect(next(frames)[1])
    frames.close()

    if source.is_video:
        tmp = out.parent / f".{out.stem}.tmp-{os.getpid()}{out.suffix}"
        writer = None
        try:
            done = 0
            for _, frame in source.frames():
                detections, ms = detector.detect(frame)
                annotated = overlay(frame, detections, detector, meter.add(ms))
                if writer is None:
                    height, width = frame.shape[:2]
                    fourcc = VIDEO_CODECS[out.suffix.lower()]
                    writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*fourcc), source.fps, (width, height))
                    if not writer.isOpened():
                        raise UserError(f"{out}: OpenCV cannot write a {fourcc} video here")
                writer.write(annotated)
                done += 1
                reporter.update(done)
            writer.release()
            writer = None
            os.replace(tmp, out)
        finally:
            if writer is not None:
                writer.release()
            tmp.unlink(missing_ok=True)
    else:
        tmp_dir = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
        tmp_dir.chmod(0o777 & ~_umask())  # mkdtemp makes it 0700; the result should look like any new folder
        try:
            done = 0
            for name, image in source.frames():
                detections, ms = detector.detect(image)
                annotated = overlay(image, detections, detector, meter.add(ms))
                ok, encoded = cv2.imencode(Path(name).suffix or ".png", annotated)
                if not ok:
                    raise UserError(f"{name}: OpenCV cannot encode the annotated image")
                try:  # Python's write, not numpy's tofile: a full disk is OSError(ENOSPC), not "N requested and M written"
                    (tmp_dir / name).write_bytes(encoded.tobytes())
                except OSError as err:
                    raise OSError(err.errno, err.strerror, str(out)) from err
                done += 1
                reporter.update(done)
            (tmp_dir / OUTPUT_MARKER).write_text("written by `yolobench annotate`; a rerun replaces this folder\n")
            replace_dir(tmp_dir, out)
        finally:
            shutil.rmtree(tmp_dir, ignore_errors=True)
    reporter.update(done, final=True)
    return Result(out=out, frames=done, engine_mean_ms=meter.total_ms / max(meter.frames, 1))


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def stderr_progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
