"""Parity of every built variant on every engine, on real images (issue 4).

- same graph, different engines: raw head outputs compared under the policy of the ONNX form where
  both compute in FP32 (OpenVINO pinned to f32: ``openvino-f32``); detections under ``POLICY.bf16``
  where one side computes in bf16 (OpenVINO at its default, as timed, on a CPU with bf16), and under
  ``POLICY.int8_kernels`` on a quantized graph where one engine's integer kernels round elsewhere
  (OpenVINO: ``Engine.int8_raw_parity``);
- different graphs (the PyTorch model, fake-quant for quantized variants, vs each engine's export):
  confident detections matched by IoU, class and score;
- accuracy: mAP@0.5 of each engine within the policy margin of the same variant on PyTorch.

Images: the first validation images of the dataset plus the two photos shipped with ultralytics.
Every measured worst case is printed next to its tolerance in the "yolobench parity" summary.
Selected with ``pytest -m parity`` (or ``-k parity``); ``--variants``/``--profile``/``--data`` apply.
"""

from __future__ import annotations

import pytest

from fixtures import engine_checks
from yolobench import catalogue, engines
from yolobench.parity import (PARITY_VAL_IMAGES, DetectionPolicy, compare_accuracy, compare_detections, compare_raw,
                              cross_graph_policy, same_graph_policy)
from yolobench.processing import default_images, load_images, postprocess, preprocess

pytestmark = [pytest.mark.parity, pytest.mark.slow]

PARITY_CONF = 0.25  # the predictor's default: detections a user would see
PARITY_IOU = 0.45
# Below this PyTorch mAP@0.5 the model detects too little for agreement to mean anything (the `tiny`
# profile's 1-epoch models score 0.0): such a run fails instead of passing vacuously.
MIN_MEANINGFUL_MAP50 = 0.2

# Which engines run which ONNX form comes from the engines themselves (engines.same_graph_pairs): the
# parity reference against every other engine that loads the form. "openvino" is OpenVINO at its
# defaults, as timed (bf16 on a CPU that has it: judged by detections); "openvino-f32" pinned to f32
# checks the graph on raw tensors.


def _forms(variant: str) -> list[str]:
    return ["deepsparse", "qdq"] if catalogue.get_variant(variant).quantized else ["fp32"]


def pytest_generate_tests(metafunc):
    from fixtures.variants import _config

    names = _config(metafunc.config).variants
    if "same_graph_case" in metafunc.fixturenames:
        cases = [(v, form, a, b) for v in names for form in _forms(v) for a, b in engines.same_graph_pairs(form)]
        metafunc.parametrize("same_graph_case", cases, ids=["-".join(c) for c in cases])
    if "engine_case" in metafunc.fixturenames:
        cases = [(v, e) for v in names for e in engines.onnx_engine_names()]
        metafunc.parametrize("engine_case", cases, ids=["-".join(c) for c in cases])


@pytest.fixture(scope="session")
def parity_images(variant, build_config):
    """(images, letterbox infos, batch) for the parity images at the engines' input size."""
    from yolobench.evaluate import validation_set

    dense = variant("dense")
    val_images, _, _ = validation_set(dense.meta["dataset"]["data_yaml"])
    paths = val_images[:PARITY_VAL_IMAGES] + default_images()
    images = [image for _, image in load_images(paths)]
    return images


def _session(engine_name, artifact, form, imgsz):
    """``engine_name``: an engine at its defaults, or ``<engine>-f32`` pinned to FP32 (engines.get_setting).
    An engine that does not take the artifact by design, or is not installed, skips; one installed but
    unable to run here fails, unless the machine opts out of it (fixtures/engine_checks.py)."""
    engine = engines.get_setting(engine_name)
    return engine_checks.load(engine, artifact, engine_name, batch=1, threads=None, imgsz=imgsz, form=form)


def _raw_outputs(session, images, imgsz):
    import numpy as np

    outputs, infos = [], []
    for image in images:
        batch, info = preprocess([image], imgsz)
        outputs.append(np.asarray(session.run(batch)))
        infos.extend(info)
    return np.concatenate(outputs), infos


def _torch_raw(artifact, images, imgsz):
    session = engines.get("torch").load(artifact, batch=1, imgsz=imgsz)
    return _raw_outputs(session, images, imgsz)


def _precision_note(session):
    return f" in {session.reduced_precision}" if session.reduced_precision else ""


def test_parity_same_graph(same_graph_case, variant, parity_images, build_config, parity_log):
    name, form, engine_a, engine_b = same_graph_case
    artifact = variant(name)
    imgsz = build_config.imgsz
    session_a, session_b = (_session(e, artifact, form, imgsz) for e in (engine_a, engine_b))
    raw_a, infos = _raw_outputs(session_a, parity_images, imgsz)
    raw_b, _ = _raw_outputs(session_b, parity_images, imgsz)
    # Both in FP32: raw tensors under the form's policy. A side in bf16: detections under the bf16 policy.
    # A quantized graph on an engine whose integer kernels round elsewhere: detections (int8_kernels).
    policy = same_graph_policy(form, session_a.reduced_precision, session_b.reduced_precision,
                               int8_raw=engines.int8_raw_parity(engine_a, engine_b))
    if isinstance(policy, DetectionPolicy):
        ref = postprocess(raw_a, infos, conf=PARITY_CONF, iou=PARITY_IOU)
        result = compare_detections(ref, postprocess(raw_b, infos, conf=PARITY_CONF, iou=PARITY_IOU), policy)
        assert sum(len(d) for d in ref) > 0, f"{name}: {engine_a} found nothing to compare on the parity images"
    else:
        result = compare_raw(raw_a, raw_b, policy, imgsz=imgsz)
    label = f"{engine_a}{_precision_note(session_a)} vs {engine_b}{_precision_note(session_b)}"
    parity_log(f"{name} {form} {label} ({policy.kind}): {result}")
    assert result.ok, f"{name}: {label} on the {form} graph disagree: {result}"


def test_parity_cross_graph(engine_case, variant, parity_images, build_config, parity_log):
    """The PyTorch model (fake-quant for quantized variants) vs the engine's own export."""
    name, engine_name = engine_case
    artifact = variant(name)
    imgsz = build_config.imgsz
    session = _session(engine_name, artifact, None, imgsz)
    ref_raw, infos = _torch_raw(artifact, parity_images, imgsz)
    other_raw, _ = _raw_outputs(session, parity_images, imgsz)
    ref = postprocess(ref_raw, infos, conf=PARITY_CONF, iou=PARITY_IOU)
    other = postprocess(other_raw, infos, conf=PARITY_CONF, iou=PARITY_IOU)
    policy = cross_graph_policy(session.reduced_precision)  # the engine as timed: bf16 for OpenVINO on such CPUs
    result = compare_detections(ref, other, policy)
    parity_log(f"{name} torch vs {engine_name} ({session.form}{_precision_note(session)}, {policy.kind}): {result}")
    assert sum(len(d) for d in ref) > 0, f"{name}: PyTorch found nothing to compare on the parity images"
    assert result.ok, f"{name}: torch vs {engine_name} ({session.form}) disagree: {result}"


def test_parity_accuracy(engine_case, variant, build_config, parity_log):
    """mAP@0.5 on the engine within the policy margin of the same variant on PyTorch (meta.json; measured
    again here when an earlier evaluator recorded it, so both numbers come from one method)."""
    from yolobench.evaluate import EVAL_SOURCE, evaluate, torch_runner

    name, engine_name = engine_case
    artifact = variant(name)
    imgsz = build_config.imgsz
    reference = artifact.metrics_at(imgsz)
    if not reference:
        pytest.skip(f"{name}: the builder measured PyTorch's mAP at "
                    f"{artifact.meta['metrics'].get('imgsz')} px only, not at {imgsz}")
    if reference.get("source") != EVAL_SOURCE:
        reference = evaluate(torch_runner(artifact.load_torch()), artifact.eval_data_yaml(imgsz), imgsz)
    session = _session(engine_name, artifact, None, imgsz)
    assert reference["map50"] >= MIN_MEANINGFUL_MAP50, (
        f"{name}: PyTorch mAP@0.5 {reference['map50']} at {imgsz} px is too low for an accuracy "
        f"comparison; parity needs trained models (profile smoke or full)")
    measured = evaluate(session.run, artifact.eval_data_yaml(imgsz), imgsz)
    result = compare_accuracy(measured["map50"], reference["map50"])
    parity_log(f"{name} {engine_name} ({session.form}{_precision_note(session)}): {result}")
    assert result.ok, f"{name} on {engine_name}{_precision_note(session)}: {result}"
