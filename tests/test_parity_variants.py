"""Parity of every built variant on every engine, on real images (issue 4).

- same graph, different engines: raw head outputs compared under the policy of the ONNX form;
- different graphs (the PyTorch model, fake-quant for quantized variants, vs each engine's export):
  confident detections matched by IoU, class and score;
- accuracy: mAP@0.5 of each engine within the policy margin of the same variant on PyTorch.

Images: the first validation images of the dataset plus the two photos shipped with ultralytics.
Every measured worst case is printed next to its tolerance in the "yolobench parity" summary.
Selected with ``pytest -m parity`` (or ``-k parity``); ``--variants``/``--profile``/``--data`` apply.
"""

from __future__ import annotations

import pytest

from yolobench import catalogue, engines
from yolobench.engines import EngineUnsupported
from yolobench.parity import POLICY, compare_accuracy, compare_detections, compare_raw, raw_policy_for
from yolobench.processing import default_images, load_images, postprocess, preprocess

pytestmark = [pytest.mark.parity, pytest.mark.slow]

PARITY_VAL_IMAGES = 12  # enough to cover every class several times; parity is not an accuracy test
PARITY_CONF = 0.25  # the predictor's default: detections a user would see
PARITY_IOU = 0.45
# Below this PyTorch mAP@0.5 the model detects too little for agreement to mean anything (the `tiny`
# profile's 1-epoch models score 0.0): such a run fails instead of passing vacuously.
MIN_MEANINGFUL_MAP50 = 0.2

# Which engines run which ONNX form (FINDINGS: each engine gets the form it is fast on; the pairs
# here are the ones a user would compare).
SAME_GRAPH_PAIRS = {
    "fp32": [("onnxruntime", "deepsparse"), ("onnxruntime", "openvino")],
    "deepsparse": [("onnxruntime", "deepsparse")],
    "qdq": [("onnxruntime", "openvino")],
}
ONNX_ENGINES = ("onnxruntime", "deepsparse", "openvino")


def _forms(variant: str) -> list[str]:
    return ["deepsparse", "qdq"] if catalogue.get_variant(variant).quantized else ["fp32"]


def pytest_generate_tests(metafunc):
    from fixtures.variants import _config

    names = _config(metafunc.config).variants
    if "same_graph_case" in metafunc.fixturenames:
        cases = [(v, form, a, b) for v in names for form in _forms(v) for a, b in SAME_GRAPH_PAIRS[form]]
        metafunc.parametrize("same_graph_case", cases, ids=["-".join(c) for c in cases])
    if "engine_case" in metafunc.fixturenames:
        cases = [(v, e) for v in names for e in ONNX_ENGINES]
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
    engine = engines.get(engine_name)
    ok, reason = engine.available()
    if not ok:
        pytest.skip(f"{engine_name}: {reason}")
    try:
        return engine.load(artifact, batch=1, threads=None, imgsz=imgsz, form=form)
    except EngineUnsupported as err:
        pytest.skip(f"{engine_name} cannot run {artifact.name} ({form}): {err}")


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


def test_parity_same_graph(same_graph_case, variant, parity_images, build_config, parity_log):
    name, form, engine_a, engine_b = same_graph_case
    artifact = variant(name)
    imgsz = build_config.imgsz
    raw_a, _ = _raw_outputs(_session(engine_a, artifact, form, imgsz), parity_images, imgsz)
    raw_b, _ = _raw_outputs(_session(engine_b, artifact, form, imgsz), parity_images, imgsz)
    result = compare_raw(raw_a, raw_b, raw_policy_for(form), imgsz=imgsz)
    parity_log(f"{name} {form} {engine_a} vs {engine_b}: {result}")
    assert result.ok, f"{name}: {engine_a} vs {engine_b} on the {form} graph disagree: {result}"


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
    result = compare_detections(ref, other, POLICY.cross_graph)
    parity_log(f"{name} torch vs {engine_name} ({session.form}): {result}")
    assert sum(len(d) for d in ref) > 0, f"{name}: PyTorch found nothing to compare on the parity images"
    assert result.ok, f"{name}: torch vs {engine_name} ({session.form}) disagree: {result}"


def test_parity_accuracy(engine_case, variant, build_config, parity_log):
    """mAP@0.5 on the engine within the policy margin of the same variant on PyTorch (meta.json)."""
    from yolobench.evaluate import evaluate

    name, engine_name = engine_case
    artifact = variant(name)
    imgsz = build_config.imgsz
    reference = artifact.metrics_at(imgsz)
    if not reference:
        pytest.skip(f"{name}: the builder measured PyTorch's mAP at "
                    f"{artifact.meta['metrics'].get('imgsz')} px only, not at {imgsz}")
    session = _session(engine_name, artifact, None, imgsz)
    assert reference["map50"] >= MIN_MEANINGFUL_MAP50, (
        f"{name}: PyTorch mAP@0.5 {reference['map50']} at {imgsz} px is too low for an accuracy "
        f"comparison; parity needs trained models (profile smoke or full)")
    measured = evaluate(session.run, artifact.eval_data_yaml(imgsz), imgsz)
    result = compare_accuracy(measured["map50"], reference["map50"])
    parity_log(f"{name} {engine_name} ({session.form}): {result}")
    assert result.ok, f"{name} on {engine_name}: {result}"
