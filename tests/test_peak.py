"""The roofline arithmetic (no clock): effective throughput against the right peak."""

from __future__ import annotations

import pytest

from yolobench import peak


def test_a_cell_is_held_against_the_peak_of_the_arithmetic_it_ran():
    machine = peak.Peak(fp32_macs={"openvino": 100e9, "onnxruntime": 80e9}, int8_macs={"openvino": 300e9},
                        bf16_macs={"openvino": 200e9}, copy_bytes_per_s=20e9, threads=2)
    assert machine.float_ == 200e9 and machine.int8 == 300e9
    int8 = peak.RooflineRow(cell="oneshot-openvino-640", form="qdq", macs=12e9, fps=10.0, arithmetic="int8")
    dense = peak.RooflineRow(cell="dense-openvino-640", form="fp32", macs=12e9, fps=10.0, arithmetic="float")
    assert int8.fraction(machine) == pytest.approx(0.4) and dense.fraction(machine) == pytest.approx(0.6)
    text = peak.format_peak(machine, [int8, dense])
    assert "| dense-openvino-640 | fp32 | 12.00 | 10.0 | 120.0 | 60% of float |" in text
    assert "| INT8 GMAC/s | - | 300.0 | 300.0 |" in text
    empty = peak.Peak(fp32_macs={}, int8_macs={}, bf16_macs={}, copy_bytes_per_s=0.0, threads=1)
    assert int8.fraction(empty) is None


@pytest.mark.parametrize("quantized", [False, True])
def test_the_peak_models_work_is_what_the_peak_divides_by(tmp_path, quantized):
    """The MACs the peak divides a call's time by are the stack's own, counted the way cells are counted,
    and the INT8 stack has a QDQ pair in front of every convolution (what the variants' exports look like)."""
    import onnx

    from yolobench.profiling import conv_facts

    path = tmp_path / "peak.onnx"
    peak._conv_model(path, quantized=quantized)
    model = onnx.load(str(path))
    facts = conv_facts(model)
    assert len(facts) == peak.DEPTH
    assert sum(f[4] for f in facts) == peak.stack_macs()
    ops = [n.op_type for n in model.graph.node]
    assert ops.count("QuantizeLinear") == (peak.DEPTH if quantized else 0)
