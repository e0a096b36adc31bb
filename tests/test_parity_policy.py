"""The parity policy table, the raw and detection comparisons, and mAP on hand-made cases."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from yolobench.parity import (POLICY, DetectionPolicy, RawPolicy, Tolerance, compare_accuracy, compare_detections,
                              compare_raw, cross_graph_policy, map50, mean_ap, raw_policy_for, reduced_precision,
                              same_graph_policy, side_from_anchors)
from yolobench.processing import Detections

IMGSZ = 160
N_ANCHORS = 525  # a P3-P5 head at 160 px: 20^2 + 10^2 + 5^2
NC = 3


def raw_head(seed=0, batch=2):
    """A plausible raw head (B, 4+nc, N): xywh in [0, 160] px, scores in [0, 1]."""
    rng = np.random.default_rng(seed)
    boxes = rng.uniform(0, IMGSZ, (batch, 4, N_ANCHORS))
    scores = rng.uniform(0.2, 1, (batch, NC, N_ANCHORS))
    return np.concatenate([boxes, scores], axis=1).astype(np.float32)


# --- the table ------------------------------------------------------------------------------------

def all_tolerances():
    for kind in dataclasses.fields(POLICY):
        policy = getattr(POLICY, kind.name)
        for f in dataclasses.fields(policy):
            value = getattr(policy, f.name)
            if isinstance(value, Tolerance):
                yield f"{kind.name}.{f.name}", value


@pytest.mark.parametrize("name, tolerance", list(all_tolerances()))
def test_every_tolerance_has_a_value_and_a_reason(name, tolerance):
    assert tolerance.value >= 0, name
    assert len(tolerance.reason) > 30, f"{name}: say why this number"


def test_policy_kinds_match_their_names_and_are_frozen():
    for kind in dataclasses.fields(POLICY):
        assert getattr(POLICY, kind.name).kind == kind.name
    with pytest.raises(dataclasses.FrozenInstanceError):
        POLICY.same_graph_fp32.score_atol = Tolerance(1.0, "no")


def test_int8_policy_is_looser_than_fp32_and_forms_pick_them():
    fp32, int8 = POLICY.same_graph_fp32, POLICY.same_graph_int8
    assert int8.box_tol.value > fp32.box_tol.value and int8.score_atol.value > fp32.score_atol.value
    assert raw_policy_for("fp32") is fp32
    assert raw_policy_for("qdq") is int8 and raw_policy_for("deepsparse") is int8


def test_bf16_policy_judges_detections_and_is_no_looser_than_cross_graph():
    bf16, cross = POLICY.bf16, POLICY.cross_graph
    assert isinstance(bf16, DetectionPolicy) and bf16.kind == "bf16"
    assert bf16.ref_min_score.value >= cross.ref_min_score.value and bf16.min_iou.value >= cross.min_iou.value
    assert bf16.score_atol.value <= cross.score_atol.value
    assert bf16.min_matched_fraction.value >= cross.min_matched_fraction.value


@pytest.mark.parametrize("form, precisions, expected", [
    ("fp32", (None, None), "same_graph_fp32"),
    ("fp32", ("f32", None), "same_graph_fp32"),  # OpenVINO pinned to f32: the graph is checked on raw tensors
    ("qdq", (None, None), "same_graph_int8"),
    ("deepsparse", (None, None), "same_graph_int8"),
    ("fp32", (None, "bf16"), "bf16"),  # OpenVINO at its default on a bf16 CPU, as timed
    ("fp32", ("bf16", None), "bf16"),
    ("qdq", (None, "bf16"), "bf16"),  # int8 kernels, but the float parts around them in bf16
    ("fp32", ("f16", None), "bf16"),
])
def test_same_graph_pairing_picks_raw_tensors_for_fp32_and_detections_for_bf16(form, precisions, expected):
    policy = same_graph_policy(form, *precisions)
    assert policy is getattr(POLICY, expected)
    assert isinstance(policy, DetectionPolicy if expected == "bf16" else RawPolicy)
    assert reduced_precision(*precisions) == (next(p for p in precisions if p) if expected == "bf16" else None)


@pytest.mark.parametrize("form, precisions, expected", [
    ("qdq", (None, None), "int8_kernels"),
    ("deepsparse", (None, None), "int8_kernels"),
    ("fp32", (None, None), "same_graph_fp32"),  # FP32 graphs round alike on every engine: raw tensors decide
    ("qdq", (None, "bf16"), "bf16"),  # bf16 decides first: its policy covers the integer kernels inside
])
def test_quantized_graphs_on_kernels_that_round_elsewhere_are_judged_by_detections(form, precisions, expected):
    assert same_graph_policy(form, *precisions, int8_raw=False) is getattr(POLICY, expected)


def test_int8_kernels_policy_judges_detections_and_is_no_looser_than_cross_graph():
    kernels, cross = POLICY.int8_kernels, POLICY.cross_graph
    assert isinstance(kernels, DetectionPolicy)
    assert kernels.ref_min_score.value >= cross.ref_min_score.value and kernels.min_iou.value >= cross.min_iou.value
    assert kernels.score_atol.value <= cross.score_atol.value
    assert kernels.min_matched_fraction.value >= cross.min_matched_fraction.value


def test_a_rounding_flip_that_grew_fails_raw_int8_but_a_moved_box_fails_detections():
    """Why the policy exists, on numbers like the one-shot yolov5n's: one confident anchor's scores moved
    by 0.2 and 65 anchors' by 0.06 fail the raw bound; the detections agree. A box moved to another
    place still fails."""
    a = raw_head()
    b = a.copy()
    b[0, 4, :65] = np.clip(b[0, 4, :65] + 0.06, 0, 1)
    b[0, 5, 0] = np.clip(b[0, 5, 0] - 0.2, 0, 1)
    assert not compare_raw(a, b, POLICY.same_graph_int8, imgsz=IMGSZ).ok
    policy = same_graph_policy("qdq", None, None, int8_raw=False)
    flipped = [Detections(d.boxes, np.clip(d.scores - np.float32([0.05, 0, 0][:len(d)]), 0, 1), d.class_ids)
               for d in REF]
    assert compare_detections(REF, flipped, policy).ok
    moved = [Detections(REF[0].boxes + np.float32([[30, 30, 30, 30], [0, 0, 0, 0], [0, 0, 0, 0]]),
                        REF[0].scores, REF[0].class_ids)]
    assert not compare_detections(REF[:1], moved, policy).ok


def test_cross_graph_pairing_uses_the_bf16_policy_when_a_side_computes_in_bf16():
    assert cross_graph_policy(None) is POLICY.cross_graph and cross_graph_policy(None, "f32") is POLICY.cross_graph
    assert cross_graph_policy("bf16") is POLICY.bf16 and cross_graph_policy(None, "bf16") is POLICY.bf16


def to_bf16(values):
    """Round float32 values to bfloat16 (8 bits of significand, round to nearest even) and back."""
    bits = np.asarray(values, np.float32).view(np.uint32).astype(np.uint64)
    rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) & 0xFFFF0000
    return rounded.astype(np.uint32).view(np.float32)


def test_bf16_rounding_fails_the_fp32_raw_tolerance_but_agrees_as_detections():
    a = raw_head()
    b = to_bf16(a)
    assert 0 < np.abs(b - a).max() <= 2 ** -8 * np.abs(a).max()  # the rounding is real, and within 2^-8
    assert not compare_raw(a, b, POLICY.same_graph_fp32, imgsz=IMGSZ).ok  # why bf16 cannot be judged raw
    policy = same_graph_policy("fp32", None, "bf16")
    rounded = [Detections(to_bf16(d.boxes), to_bf16(d.scores), d.class_ids) for d in REF]
    assert compare_detections(REF, rounded, policy).ok
    moved = [Detections(rounded[0].boxes + np.float32([[30, 30, 30, 30], [0, 0, 0, 0], [0, 0, 0, 0]]),
                        rounded[0].scores, rounded[0].class_ids)]
    assert not compare_detections(REF, moved, policy).ok  # a box on another place is still caught


# --- raw comparisons ------------------------------------------------------------------------------

def test_identical_raw_outputs_agree_with_zero_difference():
    a = raw_head()
    result = compare_raw(a, a.copy(), POLICY.same_graph_fp32, imgsz=IMGSZ)
    assert result.ok and result.max_abs_box == 0 and result.max_abs_score == 0
    assert result.box_tol_px == pytest.approx(POLICY.same_graph_fp32.box_tol.value * IMGSZ)


def test_raw_difference_is_measured_and_judged_per_part_of_the_head():
    a = raw_head()
    b = a.copy()
    b[1, 2, 7] += 1e-3  # a box coordinate, within 3.2e-3 px
    assert compare_raw(a, b, imgsz=IMGSZ).ok
    b[0, 4 + 1, 9] += 3e-3  # a class score, over 1e-4
    result = compare_raw(a, b, imgsz=IMGSZ)
    assert not result.ok
    assert result.max_abs_box == pytest.approx(1e-3, rel=0.02)  # float32 spacing near 100 px is 8e-6
    assert result.max_abs_score == pytest.approx(3e-3, rel=0.02)
    assert "max |Δscore| 0.003 (tol 0.0001)" in str(result) and str(result).endswith("disagree")


def test_box_tolerance_scales_with_the_input_side():
    a = raw_head()
    b = a.copy()
    b[0, 0, 0] += 0.005  # over 2e-5 x 160 = 0.0032 px, under 2e-5 x 640 = 0.0128 px
    assert not compare_raw(a, b, imgsz=160).ok
    assert compare_raw(a, b, imgsz=640).ok


def test_side_is_read_from_the_anchor_count_when_not_given():
    assert side_from_anchors(525) == 160 and side_from_anchors(8400) == 640 and side_from_anchors(3549) == 416
    assert compare_raw(raw_head(), raw_head()).imgsz == 160


def test_int8_policy_ignores_boxes_of_anchors_nobody_keeps():
    a = raw_head()
    a[:, 4:, :10] = 0.01  # ten anchors scoring below the 0.1 floor
    b = a.copy()
    b[0, :4, 3] += 50.0  # a wild box at a low-scoring anchor
    int8 = compare_raw(a, b, POLICY.same_graph_int8, imgsz=IMGSZ)
    assert int8.ok and int8.max_abs_box == 0 and int8.box_anchors == 2 * N_ANCHORS - 20
    assert not compare_raw(a, b, POLICY.same_graph_fp32, imgsz=IMGSZ).ok  # FP32 compares every anchor


def int8_pair(scores_per_pair=352800, seed=0):
    """Two INT8-like score arrays (1, 3, N) at 640 px: small rounding noise everywhere."""
    rng = np.random.default_rng(seed)
    n = scores_per_pair // NC
    a = np.concatenate([rng.uniform(0, 640, (1, 4, n)), rng.uniform(0, 1, (1, NC, n))], axis=1).astype(np.float32)
    b = a.copy()
    b[:, 4:] += rng.normal(0, 0.003, (1, NC, n)).astype(np.float32)
    return a, b


def test_int8_scores_allow_rare_rounding_outliers_below_the_maximum():
    a, b = int8_pair()
    flat = b[:, 4:].reshape(-1)
    flat[[11, 5000, 90000, 200000]] = a[:, 4:].reshape(-1)[[11, 5000, 90000, 200000]] + 0.064  # as measured at 640
    b[:, 4:] = flat.reshape(b[:, 4:].shape)
    result = compare_raw(a, b, POLICY.same_graph_int8, imgsz=640)
    assert result.ok, str(result)
    assert result.scores == 352800 and result.score_outliers == 4 and result.allowed_outliers == 35
    assert "4 of 352800 over 0.05 (at most 35)" in str(result)
    # the same four outliers are more than FP32 allows: FP32 has none
    assert POLICY.same_graph_fp32.score_outliers.value == 0


def test_int8_one_score_beyond_the_maximum_disagrees():
    a, b = int8_pair()
    b[0, 4, 123] = a[0, 4, 123] + 0.11
    result = compare_raw(a, b, POLICY.same_graph_int8, imgsz=640)
    assert not result.ok and result.score_outliers == 1 and result.max_abs_score == pytest.approx(0.11, abs=1e-3)


def test_int8_many_moderate_differences_disagree():
    """A kernel error shifts many scores by a little: 1% of them by 0.06 (each under score_max)."""
    a, b = int8_pair()
    b[0, 5, ::33] = a[0, 5, ::33] + 0.06
    result = compare_raw(a, b, POLICY.same_graph_int8, imgsz=640)
    assert result.max_abs_score < POLICY.same_graph_int8.score_max.value
    assert not result.ok and result.score_outliers > result.allowed_outliers


def test_outliers_allowed_scale_with_the_scores_compared():
    a, b = int8_pair(scores_per_pair=22050)  # 160 px, 14 images
    b[0, 4, 7] = a[0, 4, 7] + 0.06
    b[0, 4, 8] = a[0, 4, 8] + 0.06
    b[0, 4, 9] = a[0, 4, 9] + 0.06
    result = compare_raw(a, b, POLICY.same_graph_int8, imgsz=160)
    assert result.allowed_outliers == 2 and result.score_outliers == 3 and not result.ok


def test_transposed_layout_is_compared_the_same():
    a, b = raw_head(0), raw_head(1)
    straight = compare_raw(a, b, imgsz=IMGSZ)
    transposed = compare_raw(a.transpose(0, 2, 1), b.transpose(0, 2, 1), imgsz=IMGSZ)
    assert (straight.max_abs_box, straight.max_abs_score) == (transposed.max_abs_box, transposed.max_abs_score)


def test_shape_mismatch_and_nan_never_agree():
    a = raw_head()
    mismatch = compare_raw(a, a[:, :, :-1])
    assert not mismatch.ok and "shapes differ" in str(mismatch)
    b = a.copy()
    b[0, 5, 0] = np.nan
    result = compare_raw(b, b.copy(), imgsz=IMGSZ)
    assert not result.ok and result.max_abs_score == float("inf")


# --- detection comparisons ------------------------------------------------------------------------

def dets(boxes, scores, classes):
    return Detections(np.array(boxes, np.float32), np.array(scores, np.float32), np.array(classes))


REF = [dets([[10, 10, 50, 50], [60, 60, 100, 120], [0, 0, 5, 5]], [0.9, 0.8, 0.3], [0, 1, 2])]


def test_identical_detections_match_fully():
    result = compare_detections(REF, REF)
    assert result.ok and result.matched_fraction == 1.0 and result.reverse_matched_fraction == 1.0
    assert result.n_ref == 2 and result.min_iou == 1.0 and result.max_score_diff == 0.0  # 0.3 is not confident


@pytest.mark.parametrize("change, expected_fraction", [
    ("shift box 30 px", 0.5),
    ("other class", 0.5),
    ("score drop 0.3", 0.5),
    ("small shift and score change", 1.0),
])
def test_a_changed_detection_is_not_matched(change, expected_fraction):
    boxes, scores, classes = REF[0].boxes.copy(), REF[0].scores.copy(), REF[0].class_ids.copy()
    if change == "shift box 30 px":
        boxes[0] += 30
    elif change == "other class":
        classes[0] = 2
    elif change == "score drop 0.3":
        scores[0] -= 0.3
    elif change == "small shift and score change":
        boxes[0] += 1.0
        scores[0] -= 0.05
    result = compare_detections(REF, [Detections(boxes, scores, classes)])
    assert result.matched_fraction == expected_fraction
    assert result.ok == (expected_fraction >= POLICY.cross_graph.min_matched_fraction.value)


def test_extra_confident_detections_count_against_agreement():
    other = [dets([*REF[0].boxes, [100, 0, 140, 30]], [*REF[0].scores, 0.95], [*REF[0].class_ids, 0])]
    result = compare_detections(REF, other)
    assert result.matched_fraction == 1.0 and result.reverse_matched_fraction == pytest.approx(2 / 3)
    assert not result.ok


def test_detection_comparison_reports_numbers_next_to_tolerances():
    other = [dets([[11, 10, 51, 50], [60, 60, 100, 120]], [0.89, 0.8], [0, 1])]
    result = compare_detections(REF, other)
    assert result.ok and result.max_score_diff == pytest.approx(0.01, abs=1e-6)
    text = str(result)
    assert "max |Δscore| 0.01 (tol 0.1)" in text and "(min 90%)" in text and text.endswith("agree")


def test_no_confident_detections_on_either_side_is_a_vacuous_agreement():
    empty = [Detections.empty(), Detections.empty()]
    result = compare_detections(empty, empty)
    assert result.ok and result.n_ref == 0 and "vacuous" in str(result)


def test_detection_lists_must_cover_the_same_images():
    with pytest.raises(ValueError):
        compare_detections(REF, REF * 2)


def test_a_stricter_policy_is_honoured():
    strict = DetectionPolicy("strict", Tolerance(0.5, "r"), Tolerance(0.999, "r"), Tolerance(0.001, "r"),
                             Tolerance(1.0, "r"))
    other = [dets([[11, 10, 51, 50], [60, 60, 100, 120]], [0.9, 0.8], [0, 1])]
    assert compare_detections(REF, other).ok and not compare_detections(REF, other, strict).ok


# --- mAP ------------------------------------------------------------------------------------------

GT = [(np.array([[10, 10, 50, 50], [60, 60, 100, 120]]), np.array([0, 1])),
      (np.array([[0, 0, 30, 30]]), np.array([0]))]


def test_perfect_predictions_score_one():
    preds = [dets(boxes, [0.9] * len(cls), cls) for boxes, cls in GT]
    result = mean_ap(preds, GT, nc=NC)
    assert result.map50 == 1.0 and result.map50_95 == 1.0
    assert result.ap50_per_class == {0: 1.0, 1: 1.0}  # class 2 has no labels: not averaged


def test_no_predictions_score_zero():
    assert map50([Detections.empty(), Detections.empty()], GT, nc=NC) == 0.0


def test_one_false_positive_ranked_above_the_true_positive_halves_ap():
    labels = [(np.array([[10, 10, 50, 50]]), np.array([0]))]
    preds = [dets([[100, 100, 140, 140], [10, 10, 50, 50]], [0.9, 0.8], [0, 0])]
    assert map50(preds, labels, nc=1) == pytest.approx(0.5)
    # The same false positive ranked below the true positive costs nothing.
    preds_below = [dets([[100, 100, 140, 140], [10, 10, 50, 50]], [0.7, 0.8], [0, 0])]
    assert map50(preds_below, labels, nc=1) == pytest.approx(1.0)


def test_false_positive_between_two_true_positives_matches_coco_interpolation():
    labels = [(np.array([[0, 0, 10, 10], [20, 20, 30, 30]]), np.array([0, 0]))]
    preds = [dets([[0, 0, 10, 10], [50, 50, 60, 60], [20, 20, 30, 30]], [0.9, 0.8, 0.7], [0, 0, 0])]
    # precision 1 up to recall 0.5 (51 of the 101 recall points), then 2/3 up to recall 1 (50 points)
    assert map50(preds, labels, nc=1) == pytest.approx((51 * 1.0 + 50 * 2 / 3) / 101)


def test_iou_between_thresholds_counts_only_at_the_lower_ones():
    labels = [(np.array([[0, 0, 100, 100]]), np.array([0]))]
    preds = [dets([[0, 0, 100, 58]], [0.9], [0])]  # IoU 0.58: a TP at 0.50 and 0.55, a FP from 0.60 on
    result = mean_ap(preds, labels, nc=1)
    assert result.map50 == 1.0 and result.map50_95 == pytest.approx(0.2)


def test_duplicate_detection_is_a_false_positive():
    labels = [(np.array([[0, 0, 10, 10]]), np.array([0]))]
    preds = [dets([[0, 0, 10, 10], [0, 0, 10, 10]], [0.9, 0.8], [0, 0])]
    assert map50(preds, labels, nc=1) == pytest.approx(1.0)  # the FP comes after full recall
    preds_first = [dets([[0, 0, 10, 10], [0, 0, 10, 10]], [0.8, 0.9], [1, 0])]  # wrong class first
    assert map50(preds_first, labels, nc=2) == pytest.approx(1.0)  # class 1 has no labels


def test_accuracy_margin():
    margin = POLICY.accuracy.map50_margin.value
    assert compare_accuracy(0.70 - margin / 2, 0.70).ok
    result = compare_accuracy(0.70 - 2 * margin, 0.70)
    assert not result.ok and "disagree" in str(result)
