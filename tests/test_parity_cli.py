"""``yolobench parity`` on an ultralytics export: agreement, a perturbed copy caught, bad input refused."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from itertools import combinations

import cv2
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from _tiny_yolo import IMGSZ, tiny_yolo
from fixtures import engine_checks
from yolobench import engines
from yolobench.cli import main
from yolobench.commands.parity import check_onnx_parity

THREADS = "1"
PERTURBED_CONV = "/model.24/cv2.0/cv2.0.1/conv/Conv"  # a box-branch convolution of the head (stride 8)
PERTURBATION = 0.1  # noise of 10% of the weights' spread: moves boxes ~0.07 px, 20x the FP32 tolerance at 160 px


def available_onnx_engines():
    """Engines that run a bare ONNX file as it is (openvino_nncf needs an artifact's images: it is skipped),
    less those not installed or opted out (YOLOBENCH_SKIP_ENGINES); one installed but unable to run here
    fails the test instead of leaving the comparison out (fixtures/engine_checks.py)."""
    names = []
    for name in engines.onnx_engine_names():
        if not engines.engine_class(name).same_graph:
            continue
        if not engines.get(name).installed() or name in engine_checks.opted_out():
            continue
        engine_checks.require(name)
        names.append(name)
    return names


@pytest.fixture(scope="session")
def tiny(tmp_path_factory):
    return tiny_yolo(tmp_path_factory.getbasetemp() / "tiny_yolo")


@pytest.fixture(scope="session")
def perturbed(tiny, tmp_path_factory):
    """A copy of the export with ONE convolution's weights perturbed (initializer edited in place)."""
    model = onnx.load(tiny.onnx)
    conv = next(n for n in model.graph.node if n.name == PERTURBED_CONV)
    weight = next(t for t in model.graph.initializer if t.name == conv.input[1])
    values = numpy_helper.to_array(weight).copy()
    noise = np.random.default_rng(0).standard_normal(values.shape).astype(np.float32)
    weight.CopyFrom(numpy_helper.from_array(values + PERTURBATION * values.std() * noise, weight.name))
    path = tmp_path_factory.mktemp("perturbed") / "perturbed.onnx"
    onnx.save(model, path)
    return path


def run_cli(capfd, *args):
    code = main(["parity", *map(str, args)])
    out, err = capfd.readouterr()
    return code, out, err


def ran_labels(out, names):
    """The engine rows that ran, with OpenVINO's pinned f32 run when its default is bf16; and those in bf16."""
    labels = [*names, *(f"{n}{engines.PINNED_FP32_SUFFIX}" for n in names)]
    rows = {line.split()[0]: line for line in out.splitlines()  # the engine table, not the pair rows ("a vs b")
            if len(line.split()) > 1 and line.split()[0] in labels and line.split()[1] != "vs"}
    labels = [label for label, row in rows.items() if " ran" in row]
    return labels, {label for label in labels if re.search(r"\((bf16|f16): the engine's default here\)", rows[label])}


def test_every_engine_agrees_on_an_ultralytics_export(tiny, capfd):
    ran = available_onnx_engines()
    if len(ran) < 2:
        pytest.skip(f"needs two ONNX engines, found {ran}")
    code, out, _ = run_cli(capfd, "--model", tiny.onnx, "--threads", THREADS)
    assert code == 0, out
    assert "torch" in out and "n/a: a bare ONNX file has no PyTorch graph" in out
    labels, reduced = ran_labels(out, ran)
    # An engine in bf16 (OpenVINO's default where the CPU has it) also runs pinned to f32, and only then.
    assert ("openvino-f32" in labels) == ("openvino" in reduced)
    assert set(labels) - {"openvino-f32"} == set(ran)
    for a, b in combinations(labels, 2):
        row = next(line for line in out.splitlines() if line.startswith(f"{a} vs {b} "))
        decided_by = "bf16" if {a, b} & reduced else "same_graph_fp32"  # raw tensors wherever both run FP32
        assert f" {decided_by} " in row and row.rstrip().endswith("agree"), row
    assert f"all {len(labels) * (len(labels) - 1) // 2} comparisons agree" in out


def test_a_perturbed_convolution_is_reported_as_disagreeing(tiny, perturbed, capfd):
    if not available_onnx_engines():
        pytest.skip("no ONNX engine available")
    code, out, _ = run_cli(capfd, "--model", tiny.onnx, "--against", perturbed, "--threads", THREADS)
    assert code == 1, out
    labels, reduced = ran_labels(out, available_onnx_engines())
    for label in labels:
        row = next(line for line in out.splitlines() if line.startswith(f"{label}: {tiny.onnx.name} vs perturbed.onnx"))
        if label in reduced:  # bf16 rounding is as large as the perturbation: detections decide there
            assert " bf16 " in row, row
        else:  # every FP32 session, OpenVINO pinned to f32 included, catches it on raw tensors
            assert "same_graph_fp32" in row and row.rstrip().endswith("DISAGREE"), row
    assert "DISAGREE: " in out.splitlines()[-1]

    # The same check as a library call: the size of the difference, measured against the tolerance.
    report = check_onnx_parity(tiny.onnx, against=perturbed, engine_names=["onnxruntime"], threads=1)
    (pair,) = report.pairs
    assert not pair.ok and pair.raw.max_abs_box > 5 * pair.raw.box_tol_px
    assert f"{pair.raw.max_abs_box:.2g}" in out  # the table prints the measured size


def test_an_identical_copy_agrees(tiny, tmp_path, capfd):
    copy = tmp_path / "copy.onnx"
    copy.write_bytes(tiny.onnx.read_bytes())
    code, out, _ = run_cli(capfd, "--model", tiny.onnx, "--against", copy, "--engines", "onnxruntime",
                           "--threads", THREADS)
    assert code == 0, out
    assert "onnxruntime: " in out and "0 (tol 0.0032)" in out


def test_an_engine_that_cannot_run_is_listed_with_its_reason(tiny, capfd, monkeypatch):
    from yolobench.engines.openvino_engine import OpenVinoEngine

    others = set(available_onnx_engines()) - {"openvino"}
    monkeypatch.setattr(OpenVinoEngine, "available", lambda self: (False, "openvino is not installed"))
    code, out, _ = run_cli(capfd, "--model", tiny.onnx, "--engines", "onnxruntime", "openvino", "deepsparse",
                           "--threads", THREADS)
    row = next(line for line in out.splitlines() if line.startswith("openvino "))
    assert "skipped: openvino is not installed" in row
    assert "vs openvino" not in out and "openvino vs" not in out
    assert code == (0 if len(others) >= 2 else 1), out


def test_no_pair_of_engines_means_no_parity(tiny, capfd):
    code, out, _ = run_cli(capfd, "--model", tiny.onnx, "--engines", "torch", "onnxruntime", "--threads", THREADS)
    assert code == 1
    assert out.splitlines()[-1] == "parity not established: no pair of engines could run this model"


def _onnx_with_input(path, elem_type, shape):
    x = helper.make_tensor_value_info("images", elem_type, shape)
    y = helper.make_tensor_value_info("out", elem_type, shape)
    onnx.save(helper.make_model(helper.make_graph([helper.make_node("Identity", ["images"], ["out"])], "g", [x], [y])),
              path)


def _bad_input(case, tmp_path, tiny):
    """The command-line arguments of one bad-input case (files are made in tmp_path)."""
    model = ["--model", tiny.onnx]
    if case == "missing model":
        return ["--model", tmp_path / "nope.onnx"]
    if case == "truncated model":
        data = tiny.onnx.read_bytes()
        (tmp_path / "cut.onnx").write_bytes(data[: len(data) // 3])
        return ["--model", tmp_path / "cut.onnx"]
    if case == "not an onnx file":
        (tmp_path / "notes.onnx").write_text("hello\n")
        return ["--model", tmp_path / "notes.onnx"]
    if case == "empty image folder":
        (tmp_path / "empty").mkdir()
        return [*model, "--images", tmp_path / "empty"]
    if case == "unreadable image":
        (tmp_path / "imgs").mkdir()
        cv2.imwrite(str(tmp_path / "imgs" / "ok.jpg"), np.zeros((20, 30, 3), np.uint8))
        (tmp_path / "imgs" / "broken.jpg").write_bytes(b"\xff\xd8\xff garbage")
        return [*model, "--images", tmp_path / "imgs"]
    if case == "unsupported input shape":
        _onnx_with_input(tmp_path / "rank2.onnx", TensorProto.FLOAT, [1, 3])
        return ["--model", tmp_path / "rank2.onnx"]
    if case == "unsupported input dtype":
        _onnx_with_input(tmp_path / "uint8.onnx", TensorProto.UINT8, [1, 3, IMGSZ, IMGSZ])
        return ["--model", tmp_path / "uint8.onnx"]
    if case == "size not the model's":
        return [*model, "--imgsz", 320]
    raise AssertionError(case)


BAD_INPUT = {
    "missing model": "no such model file",
    "truncated model": "not a readable ONNX model",
    "not an onnx file": "not",
    "empty image folder": "no images in this folder",
    "unreadable image": "broken.jpg: not a readable image",
    "unsupported input shape": "unsupported input shape",
    "unsupported input dtype": "unsupported input dtype uint8",
    "size not the model's": "fixed at 160x160",
}


@pytest.mark.parametrize("case", BAD_INPUT)
def test_bad_input_exits_2_with_one_line_and_writes_nothing(case, tiny, tmp_path, capfd, monkeypatch):
    args = _bad_input(case, tmp_path, tiny)
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    monkeypatch.chdir(workdir)
    before = sorted(tmp_path.rglob("*"))
    code, out, err = run_cli(capfd, *args)
    assert code == 2
    assert out == ""
    assert len(err.strip().splitlines()) == 1 and err.startswith("yolobench parity: error: "), err
    assert BAD_INPUT[case] in err and "Traceback" not in err
    assert sorted(tmp_path.rglob("*")) == before


def test_console_command_reports_bad_input_without_traceback(tmp_path):
    """The installed entry point, in a fresh process: exit 2, one line on stderr."""
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    proc = subprocess.run([sys.executable, "-m", "yolobench", "parity", "--model", str(tmp_path / "missing.onnx")],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.strip().splitlines() == [f"yolobench parity: error: {tmp_path / 'missing.onnx'}: no such model file"]
