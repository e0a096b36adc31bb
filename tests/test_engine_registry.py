"""Engines are found, not listed: one module declaring an Engine subclass is all an engine needs.

A fake engine, written here as one module outside the package and named in YOLOBENCH_EXTRA_ENGINES,
appears in the benchmark matrix, the parity pairs, the run files' rules and the report's order,
colours and markers, with no other file touched.
"""

from __future__ import annotations

import sys
import textwrap

import pytest

from yolobench import bench, engines, report, runfile
from yolobench.errors import UserError

FAKE = textwrap.dedent('''
    from yolobench.engines.base import FORM_FP32, FORM_QDQ, Engine


    class FakeEngine(Engine):
        name = "fakert"
        package = "fakert"
        preferred_forms = (FORM_QDQ, FORM_FP32)
        order, color, marker = 2.5, "#00aa00", "x"
        reports_fallback = True
        can_abort_process = True
        fp32_options = {"precision": "f32"}

        def __init__(self, precision=None):
            self.precision = precision

        def _import(self):
            return None
''')


@pytest.fixture
def fake_engine(tmp_path, monkeypatch):
    (tmp_path / "fake_rt_engine.py").write_text(FAKE)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv(engines.EXTRA_ENGINES_ENV, "fake_rt_engine")
    yield "fakert"
    sys.modules.pop("fake_rt_engine", None)


def test_the_builtin_engines_and_their_pairs():
    assert engines.engine_names() == ("torch", "onnxruntime", "deepsparse", "openvino", "openvino_nncf")
    assert engines.onnx_engine_names() == ("onnxruntime", "deepsparse", "openvino", "openvino_nncf")
    # openvino_nncf runs a graph it quantized itself: never in a raw same-graph pair
    assert engines.parity_reference() == "onnxruntime"
    assert engines.same_graph_pairs("fp32") == [("onnxruntime", "deepsparse"), ("onnxruntime", "openvino-f32"),
                                                ("onnxruntime", "openvino")]
    assert engines.same_graph_pairs("deepsparse") == [("onnxruntime", "deepsparse")]
    assert engines.same_graph_pairs("qdq") == [("onnxruntime", "openvino-f32"), ("onnxruntime", "openvino")]


def test_one_module_adds_an_engine_everywhere(fake_engine):
    name = fake_engine
    # the matrix: listed in its own order, timed for every variant
    assert engines.engine_names() == ("torch", "onnxruntime", "deepsparse", name, "openvino", "openvino_nncf")
    assert bench.parse_engines(None) == list(engines.engine_names())
    assert runfile.cell_name("pruned_quant", name, 640) in bench.timed_cell_ids(["pruned_quant"], [name], [640])
    # parity: compared with the reference on every form it loads, pinned and at its defaults
    assert ("onnxruntime", f"{name}-f32") in engines.same_graph_pairs("qdq")
    assert ("onnxruntime", name) in engines.same_graph_pairs("fp32")
    assert ("onnxruntime", name) not in engines.same_graph_pairs("deepsparse")
    assert engines.get_setting(f"{name}-f32").precision == "f32" and engines.get_setting(name).precision is None
    # run files: its cells must say how much ran natively, as a fallback engine's do
    assert runfile._reports_fallback(name) and not runfile._reports_fallback("openvino")
    # the report: its place, colour and marker
    ranks = sorted(engines.engine_names(), key=report.cells._engine_rank)
    assert ranks.index(name) == 3
    assert report.charts._engine_color(name) == "#00aa00" and report.charts._engine_marker(name) == "x"
    # the benchmark's crash isolation asks the engine too
    assert engines.engine_class(name).can_abort_process


def test_an_engine_no_longer_installed_still_reads(fake_engine, monkeypatch):
    monkeypatch.delenv(engines.EXTRA_ENGINES_ENV)
    assert "fakert" not in engines.engine_names()
    assert report.cells._engine_rank("fakert") > report.cells._engine_rank("openvino")  # after the known ones
    assert report.charts._engine_color("fakert") == report.UNKNOWN_ENGINE_COLOR
    assert not runfile._reports_fallback("fakert")
    with pytest.raises(UserError, match="unknown engine 'fakert': choose from torch, onnxruntime"):
        engines.get("fakert")


def test_a_bad_extra_engine_module_is_named(monkeypatch):
    monkeypatch.setenv(engines.EXTRA_ENGINES_ENV, "no_such_engine_module")
    with pytest.raises(UserError, match="no_such_engine_module"):
        engines.engine_names()
