"""Properties of the shared pre/post-processing: IoU, NMS, letterbox round trip, decode (hypothesis)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from yolobench.errors import UserError
from yolobench.processing import (PAD_VALUE, Detections, decode, iou, letterbox, letterbox_boxes, load_images, nms,
                                  postprocess, unletterbox_boxes)

# Deterministic: the same examples on every run and machine, no example database, no timing deadline.
DETERMINISTIC = settings(derandomize=True, max_examples=150, deadline=None, database=None,
                         suppress_health_check=[HealthCheck.too_slow])
IMAGE_CASES = settings(DETERMINISTIC, max_examples=60)  # each example resizes an image

FLOAT_TOL = 1e-6  # IoU is computed in float64

coord = st.floats(min_value=-500, max_value=500, allow_nan=False, allow_infinity=False)
side = st.floats(min_value=0.5, max_value=300, allow_nan=False, allow_infinity=False)


@st.composite
def boxes(draw, min_size=1, max_size=1):
    """xyxy boxes with a positive area."""
    n = draw(st.integers(min_size, max_size))
    out = []
    for _ in range(n):
        x, y, w, h = draw(coord), draw(coord), draw(side), draw(side)
        out.append([x, y, x + w, y + h])
    return np.array(out, dtype=np.float64)


@st.composite
def nms_inputs(draw, distinct_scores=False):
    """Boxes (snapped to a grid so that overlaps are common), scores and classes."""
    n = draw(st.integers(0, 25))
    raw = draw(st.lists(st.tuples(st.integers(0, 12), st.integers(0, 12), st.integers(1, 6), st.integers(1, 6)),
                        min_size=n, max_size=n))
    b = np.array([[x * 5, y * 5, x * 5 + w * 5, y * 5 + h * 5] for x, y, w, h in raw], dtype=np.float32).reshape(-1, 4)
    if distinct_scores:
        scores = draw(st.lists(st.integers(1, 10_000), min_size=n, max_size=n, unique=True))
        scores = np.array(scores, dtype=np.float32) / 10_000
    else:
        scores = np.array(draw(st.lists(st.sampled_from([0.3, 0.5, 0.7, 0.9]), min_size=n, max_size=n)),
                          dtype=np.float32)
    classes = np.array(draw(st.lists(st.integers(0, 2), min_size=n, max_size=n)), dtype=np.int64)
    return b, scores, classes


iou_threshold = st.sampled_from([0.3, 0.45, 0.5, 0.7])


# --- IoU ------------------------------------------------------------------------------------------

@DETERMINISTIC
@given(boxes(1, 6), boxes(1, 6))
def test_iou_is_symmetric_and_bounded(a, b):
    ab, ba = iou(a, b), iou(b, a)
    assert ab.shape == (len(a), len(b))
    np.testing.assert_allclose(ab, ba.T, atol=FLOAT_TOL)
    assert ((ab >= 0) & (ab <= 1)).all()


@DETERMINISTIC
@given(boxes(1, 6))
def test_iou_of_a_box_with_itself_is_one(a):
    np.testing.assert_allclose(np.diag(iou(a, a)), 1.0, atol=FLOAT_TOL)


@DETERMINISTIC
@given(boxes(), st.floats(0, 100), st.floats(-100, 100))
def test_iou_of_disjoint_boxes_is_zero(a, gap, shift_y):
    b = a.copy()
    width = a[0, 2] - a[0, 0]
    b[0, [0, 2]] += width + gap  # entirely to the right (touching when gap is 0)
    b[0, [1, 3]] += shift_y
    assert iou(a, b)[0, 0] == 0.0


@DETERMINISTIC
@given(boxes(), boxes(), st.floats(-1000, 1000), st.floats(-1000, 1000))
def test_iou_is_invariant_to_translating_both_boxes(a, b, dx, dy):
    shift = np.array([dx, dy, dx, dy])
    np.testing.assert_allclose(iou(a + shift, b + shift), iou(a, b), atol=1e-6)


# --- NMS ------------------------------------------------------------------------------------------

@DETERMINISTIC
@given(nms_inputs(), iou_threshold)
def test_nms_returns_a_subset_of_its_input_best_first(inputs, thres):
    b, scores, classes = inputs
    keep = nms(b, scores, classes, thres)
    assert len(set(keep.tolist())) == len(keep) and all(0 <= k < len(b) for k in keep)
    assert (np.diff(scores[keep]) <= 0).all()  # highest score first


@DETERMINISTIC
@given(nms_inputs(), iou_threshold)
def test_nms_never_keeps_two_overlapping_boxes_of_one_class(inputs, thres):
    b, scores, classes = inputs
    keep = nms(b, scores, classes, thres)
    overlaps = iou(b[keep], b[keep])
    same_class = classes[keep][:, None] == classes[keep][None, :]
    np.fill_diagonal(overlaps, 0)
    assert not (same_class & (overlaps > thres)).any()


@DETERMINISTIC
@given(nms_inputs(), iou_threshold)
def test_nms_keeps_the_highest_scoring_box(inputs, thres):
    b, scores, classes = inputs
    keep = nms(b, scores, classes, thres)
    if len(b):
        assert keep[0] == int(np.argsort(-scores, kind="stable")[0])
    else:
        assert len(keep) == 0


@DETERMINISTIC
@given(nms_inputs(distinct_scores=True), iou_threshold, st.randoms(use_true_random=False))
def test_nms_does_not_depend_on_input_order(inputs, thres, rnd):
    b, scores, classes = inputs
    order = list(range(len(b)))
    rnd.shuffle(order)
    order = np.array(order, dtype=np.int64)
    kept = {tuple(b[k]) + (classes[k],) for k in nms(b, scores, classes, thres)}
    kept_shuffled = {tuple(b[order][k]) + (classes[order][k],)
                     for k in nms(b[order], scores[order], classes[order], thres)}
    assert kept == kept_shuffled


@DETERMINISTIC
@given(nms_inputs(), iou_threshold)
def test_nms_breaks_score_ties_by_input_order(inputs, thres):
    b, scores, classes = inputs
    keep = nms(b, scores, classes, thres)
    np.testing.assert_array_equal(keep, nms(b, scores, classes, thres))
    for first, second in zip(keep, keep[1:]):
        if scores[first] == scores[second]:
            assert first < second


def test_nms_is_class_aware():
    b = np.array([[0, 0, 10, 10], [0, 0, 10, 10], [0, 0, 10, 10]], np.float32)
    keep = nms(b, np.array([0.9, 0.8, 0.7], np.float32), np.array([0, 1, 0]), 0.5)
    assert keep.tolist() == [0, 1]


# --- letterbox ------------------------------------------------------------------------------------

image_shape = st.tuples(st.integers(1, 900), st.integers(1, 900))
target_size = st.integers(1, 20).map(lambda k: 32 * k)  # 32 .. 640, multiples of the stride


@IMAGE_CASES
@given(image_shape, target_size, st.data())
def test_letterbox_then_unletterbox_maps_boxes_back(shape, size, data):
    """Geometry: any box inside any image survives the round trip to well within a pixel."""
    h, w = shape
    img = np.zeros((h, w, 3), np.uint8)
    chw, info = letterbox(img, size)
    assert chw.shape == (3, size, size) and chw.dtype == np.float32
    x0, x1 = sorted(data.draw(st.tuples(st.floats(0, w), st.floats(0, w))))
    y0, y1 = sorted(data.draw(st.tuples(st.floats(0, h), st.floats(0, h))))
    box = np.array([[x0, y0, x1, y1]], np.float32)
    inside = letterbox_boxes(box, info)
    assert (inside >= -1e-3).all() and (inside <= size + 1e-3).all()
    np.testing.assert_allclose(unletterbox_boxes(inside, info, (h, w)), box, atol=max(h, w) * 1e-6 + 1e-3)


@IMAGE_CASES
@given(image_shape.filter(lambda s: min(s) >= 8), target_size, st.data())
def test_letterbox_puts_image_content_where_its_info_says(shape, size, data):
    """Content: a white rectangle found in the letterboxed image maps back onto itself within a pixel.

    A pixel of the coarser grid: an input pixel when the image was shrunk, an original one when enlarged.
    """
    h, w = shape
    _, info = letterbox(np.zeros((h, w, 3), np.uint8), size)
    sx, sy = info.scale
    # The rectangle spans at least 3 input pixels each way so that the resize cannot blur it away.
    rw = data.draw(st.integers(min(w, int(np.ceil(3 / sx)) + 1), w))
    rh = data.draw(st.integers(min(h, int(np.ceil(3 / sy)) + 1), h))
    x0, y0 = data.draw(st.integers(0, w - rw)), data.draw(st.integers(0, h - rh))
    img = np.zeros((h, w, 3), np.uint8)
    img[y0:y0 + rh, x0:x0 + rw] = 255
    chw, info = letterbox(img, size)
    ys, xs = np.nonzero(chw[0] > 0.5)  # half way up the edge ramp; the grey padding is 114/255 = 0.45
    found = np.array([[xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]], np.float32)
    back = unletterbox_boxes(found, info, (h, w))
    coarse = np.minimum([[sx, sy, sx, sy]], 1.0)  # coarse-grid pixels per original pixel
    error_px = np.abs(back - [[x0, y0, x0 + rw, y0 + rh]]) * coarse
    assert (error_px <= 1.0 + 1e-3).all(), (error_px, info)


@IMAGE_CASES
@given(image_shape, target_size)
def test_letterbox_pads_with_grey_and_centres(shape, size):
    h, w = shape
    chw, info = letterbox(np.zeros((h, w, 3), np.uint8), size)
    left, top = info.pad
    new_w, new_h = round(w * info.scale[0]), round(h * info.scale[1])
    assert abs((size - new_w) - 2 * left) <= 1 and abs((size - new_h) - 2 * top) <= 1
    grey = PAD_VALUE / 255
    if top >= 1:
        assert np.allclose(chw[:, 0, :], grey)
    if left >= 1:
        assert np.allclose(chw[:, :, 0], grey)


@settings(DETERMINISTIC, max_examples=30)
@given(image_shape, target_size, st.integers(0, 2**16))
def test_letterbox_equals_ultralytics_letterbox(shape, size, seed):
    """Pixel for pixel what ultralytics' predictor feeds its models (so engines see what training saw)."""
    from ultralytics.data.augment import LetterBox  # noqa: PLC0415

    img = np.random.default_rng(seed).integers(0, 256, (*shape, 3), dtype=np.uint8)
    expected = LetterBox(new_shape=(size, size), auto=False, scaleup=True, center=True)(image=img)
    chw, _ = letterbox(img, size)
    ours = np.round(chw.transpose(1, 2, 0)[:, :, ::-1] * 255).astype(np.uint8)
    np.testing.assert_array_equal(ours, expected)


def test_letterbox_rejects_sizes_off_the_stride_and_bad_images():
    with pytest.raises(UserError, match="multiples of the stride"):
        letterbox(np.zeros((10, 10, 3), np.uint8), 100)
    with pytest.raises(UserError, match="BGR uint8"):
        letterbox(np.zeros((10, 10), np.uint8), 64)


# --- decode and postprocess -----------------------------------------------------------------------

@st.composite
def raw_heads(draw):
    batch, nc = draw(st.integers(1, 2)), draw(st.integers(1, 4))
    n = draw(st.integers(9, 40).filter(lambda k: k != 4 + nc))  # N == 4+nc is ambiguous: read as channels first
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    xy = rng.uniform(0, 160, (batch, 2, n))
    wh = rng.uniform(1, 80, (batch, 2, n))
    scores = rng.uniform(0, 1, (batch, nc, n))
    return np.concatenate([xy, wh, scores], axis=1).astype(np.float32), nc


@DETERMINISTIC
@given(raw_heads())
def test_decode_reads_both_layouts_alike(head):
    raw, nc = head
    for (b1, s1, c1), (b2, s2, c2) in zip(decode(raw, nc), decode(raw.transpose(0, 2, 1), nc)):
        np.testing.assert_array_equal(b1, b2)
        np.testing.assert_array_equal(s1, s2)
        np.testing.assert_array_equal(c1, c2)


@DETERMINISTIC
@given(raw_heads())
def test_decode_converts_xywh_to_xyxy_and_takes_the_best_class(head):
    raw, nc = head
    (boxes, scores, classes), *_ = decode(raw, nc)
    np.testing.assert_allclose((boxes[:, 0] + boxes[:, 2]) / 2, raw[0, 0], atol=1e-4)
    np.testing.assert_allclose(boxes[:, 2] - boxes[:, 0], raw[0, 2], atol=1e-4)
    np.testing.assert_array_equal(scores, raw[0, 4:].max(0))
    np.testing.assert_array_equal(classes, raw[0, 4:].argmax(0))


@DETERMINISTIC
@given(raw_heads(), st.sampled_from([0.1, 0.25, 0.5]), iou_threshold, st.integers(1, 10))
def test_postprocess_is_deterministic_and_bounded(head, conf, thres, max_det):
    raw, nc = head
    first = postprocess(raw, conf=conf, iou=thres, max_det=max_det, nc=nc)
    second = postprocess(raw.copy(), conf=conf, iou=thres, max_det=max_det, nc=nc)
    assert len(first) == len(raw)
    for a, b in zip(first, second):
        assert isinstance(a, Detections) and len(a) <= max_det
        assert (a.scores > conf).all()
        np.testing.assert_array_equal(a.boxes, b.boxes)
        np.testing.assert_array_equal(a.class_ids, b.class_ids)


def test_postprocess_maps_boxes_to_the_original_image():
    img = np.zeros((100, 200, 3), np.uint8)  # 2:1, letterboxed into 64x64 at scale 0.32, 16 px bars
    _, info = letterbox(img, 64)
    raw = np.zeros((1, 5, 1), np.float32)
    raw[0, :, 0] = [32, 32, 32, 16, 0.9]  # centred 32x16 box in the input
    (dets,) = postprocess(raw, [info], [(100, 200)])
    np.testing.assert_allclose(dets.boxes, [[50, 25, 150, 75]], atol=1e-4)


# --- images ---------------------------------------------------------------------------------------

def test_load_images_reads_a_folder_in_name_order(tmp_path):
    for name in ("b.png", "a.jpg"):
        cv2.imwrite(str(tmp_path / name), np.full((8, 12, 3), 200, np.uint8))
    (tmp_path / "notes.txt").write_text("not an image")
    loaded = load_images(tmp_path)
    assert [p.name for p, _ in loaded] == ["a.jpg", "b.png"]
    assert all(img.shape == (8, 12, 3) and img.dtype == np.uint8 for _, img in loaded)


@pytest.mark.parametrize("case, message", [
    ("empty folder", "no images in this folder"),
    ("unreadable", "not a readable image"),
    ("empty file", "not a readable image"),
    ("missing", "no such image file or folder"),
])
def test_load_images_refuses_bad_input_in_one_line(tmp_path, case, message):
    target = tmp_path / "in"
    if case == "empty folder":
        target.mkdir()
    elif case == "unreadable":
        target = tmp_path / "x.jpg"
        target.write_bytes(b"\xff\xd8\xff\x00 not really a jpeg")
    elif case == "empty file":
        target = tmp_path / "x.png"
        target.write_bytes(b"")
    with pytest.raises(UserError, match=message) as err:
        load_images(target)
    assert "\n" not in str(err.value)


def test_multi_label_scores_a_box_under_every_class_above_the_confidence():
    """What ultralytics' validator does for mAP: one anchor with two classes above conf is two candidates
    (the single-label path keeps only its best class); a class below conf is not one."""
    raw = np.zeros((1, 4 + 3, 2), dtype=np.float32)
    raw[0, :4, 0] = [50, 50, 20, 20]  # anchor 0: classes 0 (0.6) and 2 (0.3); class 1 below conf
    raw[0, 4:, 0] = [0.6, 0.0005, 0.3]
    raw[0, :4, 1] = [10, 10, 4, 4]  # anchor 1: nothing above conf
    single = postprocess(raw, conf=0.001, iou=0.7, nc=3)[0]
    multi = postprocess(raw, conf=0.001, iou=0.7, nc=3, multi_label=True)[0]
    assert single.class_ids.tolist() == [0]
    assert multi.class_ids.tolist() == [0, 2] and np.allclose(multi.scores, [0.6, 0.3])
    assert np.allclose(multi.boxes, [[40, 40, 60, 60]] * 2)

