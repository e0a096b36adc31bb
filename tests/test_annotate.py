"""``yolobench annotate`` and the shared drawing: boxes and the FPS overlay land on every frame, output is
all-or-nothing, bad input is one line and exit 2.

Most tests put a fake detector (fixed boxes, fixed engine time) behind the command, so they need no model
and assert nothing about speed; one slow test runs the `tiny` dense variant through ONNX Runtime.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from yolobench import annotate, draw
from yolobench.cli import main
from yolobench.data.synth import render_image
from yolobench.errors import EXIT_BAD_INPUT
from yolobench.processing import Detections

FRAMES = 10
SIDE = 128  # px: small frames, so the overlay must shrink to fit
VIDEO_FPS = 10
EXIT_INTERRUPTED = 130
# Mean absolute difference (0-255) between an input frame and its annotated frame inside the FPS banner:
# the banner darkens that corner to 35% and writes on it; mp4v noise alone stays far below this.
MIN_BANNER_DIFFERENCE = 25.0
MAX_CODEC_NOISE = 12.0  # same measure between an input frame and itself after another mp4v round trip
FAKE_BOX = (20.0, 40.0, 100.0, 110.0)  # below the banner, so its pixels are the box colour's alone
FAKE_ENGINE_MS = 4.0


def frames(count: int = FRAMES) -> list[np.ndarray]:
    """Deterministic frames: the built-in dataset's validation images, rendered at SIDE px."""
    return [render_image("target", 0, "val", i, SIDE)[0] for i in range(count)]


def write_video(path: Path, images: list[np.ndarray]) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), VIDEO_FPS, (SIDE, SIDE))
    assert writer.isOpened()
    for image in images:
        writer.write(image)
    writer.release()
    return path


def read_video(path: Path) -> list[np.ndarray]:
    capture = cv2.VideoCapture(str(path))
    assert capture.isOpened(), path
    out = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        out.append(frame)
    capture.release()
    return out


def banner_difference(a: np.ndarray, b: np.ndarray) -> float:
    height, width = SIDE // 8, SIDE // 2  # inside the banner on every frame (two lines of text, top-left)
    return float(np.abs(a[:height, :width].astype(int) - b[:height, :width].astype(int)).mean())


@pytest.fixture
def video(tmp_path) -> Path:
    return write_video(tmp_path / "in.mp4", frames())


@pytest.fixture
def image_folder(tmp_path) -> Path:
    folder = tmp_path / "images"
    folder.mkdir()
    for i, image in enumerate(frames(4)):
        cv2.imwrite(str(folder / f"img_{i}.png"), image)
    return folder


class FakeDetector:
    """Stands in for a variant on an engine: one fixed box per image, a fixed engine time."""

    variant, engine, form, imgsz, conf = "dense", "onnxruntime", "fp32", 64, 0.25
    names = {0: "circle"}

    def __init__(self, fail_on_call: int | None = None):
        self.calls = 0
        self.fail_on_call = fail_on_call

    def detect(self, image):
        self.calls += 1
        if self.fail_on_call is not None and self.calls >= self.fail_on_call:
            raise KeyboardInterrupt
        return Detections([FAKE_BOX], [0.9], [0]), FAKE_ENGINE_MS


@pytest.fixture
def fake_model(monkeypatch):
    """annotate with no build and no engine: the command finds a 'built' variant and gets a FakeDetector."""
    detector = FakeDetector()
    monkeypatch.setattr(annotate, "load_built", lambda *args, **kwargs: object())
    monkeypatch.setattr(annotate.Detector, "load", classmethod(lambda cls, *args, **kwargs: detector))
    return detector


def run_annotate(capfd, *args) -> tuple[int, str, str]:
    code = main(["annotate", "--variant", "dense", "--engine", "onnxruntime", *map(str, args)])
    out, err = capfd.readouterr()
    return code, out, err


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


# --- drawing -----------------------------------------------------------------------------------------


def test_draw_detections_draws_box_and_label_and_leaves_the_input_alone():
    image = np.full((SIDE, SIDE, 3), 127, np.uint8)
    before = image.copy()
    out = draw.draw_detections(image, Detections([FAKE_BOX], [0.9], [0]), {0: "circle"})
    assert np.array_equal(image, before)
    x0, y0, x1, y1 = map(int, FAKE_BOX)
    assert tuple(out[(y0 + y1) // 2, x0]) == draw.class_color(0)  # the box's left edge, in the class colour
    assert not np.array_equal(out[y0 - 12:y0, x0:x0 + 30], before[y0 - 12:y0, x0:x0 + 30])  # label above it


def test_labels_keep_clear_of_the_banner_and_of_each_other():
    lines = ["123.4 FPS (engine)", "pruned_quant | deepsparse"]
    shape = (SIDE, SIDE, 3)
    banner = draw.banner_rect(shape, lines)
    # Both boxes start under the banner, so neither label may sit in its usual place above the box.
    boxes = Detections([[0, 0, 120, 128], [10, 2, 110, 100]], [0.8, 0.6], [0, 0])
    labels = draw.layout_labels(boxes, {0: "person"}, shape, draw.font_scale_for(shape), avoid=[banner])
    assert [label.text for label in labels] == ["person 0.80", "person 0.60"]
    for label in labels:
        assert draw._overlap_area(label.rect, [banner]) == 0
        x0, y0, x1, y1 = label.rect
        assert 0 <= x0 < x1 <= SIDE and 0 <= y0 < y1 <= SIDE
    assert draw._overlap_area(labels[0].rect, [labels[1].rect]) == 0


def test_banner_fits_a_small_frame():
    lines = ["123.4 FPS (engine)", "v5n_hardswish_pq | onnxruntime with a long name"]
    x0, y0, x1, y1 = draw.banner_rect((SIDE, SIDE, 3), lines)
    assert 0 <= x0 < x1 <= SIDE and 0 <= y0 < y1 <= SIDE


def test_fps_meter_smooths_engine_times():
    meter = annotate.FpsMeter(smoothing=0.5)
    assert meter.add(10.0) == pytest.approx(100.0)
    assert meter.add(20.0) == pytest.approx(1000.0 / 15.0)  # mean of 10 and 20 at smoothing 0.5
    assert meter.total_ms == pytest.approx(30.0) and meter.frames == 2


# --- the command, with a fake detector ---------------------------------------------------------------


def test_video_gets_every_frame_annotated(tmp_path, video, fake_model, capfd):
    out = tmp_path / "out" / "annotated.mp4"
    code, stdout, stderr = run_annotate(capfd, "--source", video, "--out", out)
    assert code == 0, stderr
    inputs, outputs = read_video(video), read_video(out)
    assert len(outputs) == len(inputs) == FRAMES
    assert outputs[0].shape == inputs[0].shape
    for before, after in zip(inputs, outputs):
        assert banner_difference(before, after) > MIN_BANNER_DIFFERENCE
    assert f"frame {FRAMES}/{FRAMES}" in stderr
    assert f"{FRAMES} frames" in stdout
    assert fake_model.calls == FRAMES + 1  # every frame, plus the untimed first call
    assert leftovers(out.parent) == []


def test_a_webm_video_is_vp9_that_a_browser_plays(tmp_path, video, fake_model, capfd):
    """.webm is written with VP9 (Chrome, Firefox, Edge and Safari 14.1+ play it), every frame annotated."""
    out = tmp_path / "out" / "annotated.webm"
    code, _, stderr = run_annotate(capfd, "--source", video, "--out", out)
    assert code == 0, stderr
    assert out.read_bytes()[:4] == bytes.fromhex("1a45dfa3") and b"V_VP9" in out.read_bytes()[:4096]  # WebM, VP9
    outputs = read_video(out)
    assert len(outputs) == FRAMES
    for before, after in zip(read_video(video), outputs):
        assert banner_difference(before, after) > MIN_BANNER_DIFFERENCE


def test_this_opencv_has_no_h264_encoder(tmp_path):
    """Why browser videos are WebM: opencv-python's FFmpeg opens no H.264 writer. When a release adds one,
    this fails, and .mp4 can be written as H.264 (annotate.VIDEO_CODECS) instead of mp4v."""
    for fourcc in ("avc1", "H264"):
        writer = cv2.VideoWriter(str(tmp_path / f"t-{fourcc}.mp4"), cv2.VideoWriter_fourcc(*fourcc), 10, (64, 64))
        opened = writer.isOpened()
        writer.release()
        assert not opened, fourcc


def test_codec_noise_is_below_the_banner_threshold(tmp_path, video):
    """The 'differs' check above cannot pass on compression noise alone."""
    again = write_video(tmp_path / "again.mp4", read_video(video))
    for before, after in zip(read_video(video), read_video(again)):
        assert banner_difference(before, after) < MAX_CODEC_NOISE


def test_quiet_prints_no_progress(tmp_path, video, fake_model, capfd):
    code, _, stderr = run_annotate(capfd, "--source", video, "--out", tmp_path / "a.mp4", "--quiet")
    assert code == 0 and stderr == ""


def test_image_folder_becomes_an_annotated_folder(tmp_path, image_folder, fake_model, capfd):
    out = tmp_path / "annotated"
    code, _, stderr = run_annotate(capfd, "--source", image_folder, "--out", out)
    assert code == 0, stderr
    names = sorted(p.name for p in image_folder.iterdir())
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == names
    for name in names:
        before, after = cv2.imread(str(image_folder / name)), cv2.imread(str(out / name))
        assert after.shape == before.shape
        assert banner_difference(before, after) > MIN_BANNER_DIFFERENCE
    # A rerun replaces its own earlier output; a folder with someone else's files is refused.
    assert run_annotate(capfd, "--source", image_folder, "--out", out)[0] == 0
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "keep.txt").write_text("precious")
    code, _, stderr = run_annotate(capfd, "--source", image_folder, "--out", foreign)
    assert code == EXIT_BAD_INPUT and (foreign / "keep.txt").read_text() == "precious"
    assert leftovers(tmp_path) == []


def test_interrupt_leaves_nothing_half_written(tmp_path, video, monkeypatch, capfd):
    detector = FakeDetector(fail_on_call=5)
    monkeypatch.setattr(annotate, "load_built", lambda *args, **kwargs: object())
    monkeypatch.setattr(annotate.Detector, "load", classmethod(lambda cls, *args, **kwargs: detector))
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    code, _, stderr = run_annotate(capfd, "--source", video, "--out", out_dir / "a.mp4")
    assert code == EXIT_INTERRUPTED
    assert list(out_dir.iterdir()) == []


def _bad_inputs(tmp_path: Path, video: Path) -> dict[str, tuple[list, str]]:
    (tmp_path / "empty").mkdir()
    (tmp_path / "garbage.mp4").write_bytes(b"this is not a video" * 100)
    (tmp_path / "one.png").write_bytes(cv2.imencode(".png", frames(1)[0])[1].tobytes())
    out = tmp_path / "out" / "a.mp4"
    return {
        "missing source": (["--source", tmp_path / "nope.mp4", "--out", out], "no such video"),
        "unreadable video": (["--source", tmp_path / "garbage.mp4", "--out", out], "not a readable video"),
        "empty folder": (["--source", tmp_path / "empty", "--out", tmp_path / "out" / "dir"], "no images"),
        "one image": (["--source", tmp_path / "one.png", "--out", out], "folder"),
        "video into a folder name": (["--source", video, "--out", tmp_path / "out" / "frames"], ".mp4"),
        "bad conf": (["--source", video, "--out", out, "--conf", "1.5"], "--conf"),
        "unknown profile": (["--source", video, "--out", out, "--profile", "huge"], "unknown profile"),
    }


def error_lines(stderr: str) -> list[str]:
    # In this process OpenCV's FFmpeg already logs at its default level (a video was written before the
    # command ran), so FFmpeg's own lines may precede ours; the subprocess test below checks a fresh process.
    return [line for line in stderr.splitlines() if not line.startswith("[")]


@pytest.mark.parametrize("case", ["missing source", "unreadable video", "empty folder", "one image",
                                  "video into a folder name", "bad conf", "unknown profile"])
def test_bad_input_is_one_line_and_exit_2(tmp_path, video, fake_model, capfd, case):
    args, expected = _bad_inputs(tmp_path, video)[case]
    code, stdout, stderr = run_annotate(capfd, *args)
    assert code == EXIT_BAD_INPUT
    assert len(error_lines(stderr)) == 1 and expected in stderr, stderr
    assert not (tmp_path / "out").exists()
    assert fake_model.calls == 0


def test_unreadable_video_is_exactly_one_line_from_the_command(tmp_path):
    """A fresh process, as a user runs it: FFmpeg's own complaint is silenced, only ours is printed."""
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(b"this is not a video" * 100)
    result = subprocess.run([sys.executable, "-m", "yolobench", "annotate", "--variant", "dense", "--engine",
                             "onnxruntime", "--source", str(garbage), "--out", str(tmp_path / "out" / "a.mp4")],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == EXIT_BAD_INPUT
    assert result.stderr.strip().splitlines() == [
        f"yolobench annotate: error: {garbage}: not a readable video (OpenCV cannot open it)"]
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("flag, value, expected", [("--variant", "densest", "unknown variant"),
                                                   ("--engine", "tensorrt", "unknown engine")])
def test_unknown_variant_or_engine(tmp_path, video, capfd, flag, value, expected):
    args = {"--variant": "dense", "--engine": "onnxruntime", flag: value}
    code = main(["annotate", *[x for kv in args.items() for x in kv], "--source", str(video),
                 "--out", str(tmp_path / "out" / "a.mp4")])
    stderr = capfd.readouterr().err
    assert code == EXIT_BAD_INPUT
    assert len(error_lines(stderr)) == 1 and expected in stderr
    assert not (tmp_path / "out").exists()


def test_variant_not_built_names_the_build_command(tmp_path, video, tiny_home, capfd):
    empty_store = tmp_path / "store"
    code, _, stderr = run_annotate(capfd, "--source", video, "--out", tmp_path / "out" / "a.mp4",
                                   "--profile", "tiny", "--store", empty_store)
    assert code == EXIT_BAD_INPUT
    assert "yolobench build --variants dense --profile tiny" in stderr and len(error_lines(stderr)) == 1
    assert not (tmp_path / "out").exists()


# --- the real thing ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dense_tiny(tiny_home):
    from yolobench import builder
    from yolobench.store import Store

    return builder.build("dense", "tiny", store=Store(tiny_home / "store"))


@pytest.mark.slow
def test_tiny_dense_on_onnxruntime_annotates_a_video(tmp_path, video, dense_tiny, capfd):
    out = tmp_path / "annotated.mp4"
    code, stdout, stderr = run_annotate(capfd, "--source", video, "--out", out, "--profile", "tiny",
                                        "--store", dense_tiny.path.parent)
    assert code == 0, stderr
    inputs, outputs = read_video(video), read_video(out)
    assert len(outputs) == len(inputs) == FRAMES
    for before, after in zip(inputs, outputs):
        assert banner_difference(before, after) > MIN_BANNER_DIFFERENCE
    assert "dense on onnxruntime (fp32, 64 px)" in stdout
