"""yolobench's own mAP and NMS against the libraries users trust, on the same inputs.

- ``parity.mean_ap`` (COCO-style: greedy matching by score, 101-point interpolated AP) must give
  pycocotools' COCOeval numbers (stats[1] = mAP@0.5, stats[0] = mAP@0.5:0.95) on the same boxes.
- ``processing.nms`` (greedy, class-aware) must keep exactly what ``torchvision.ops.batched_nms`` keeps.

Why the build log's mAP (ultralytics' validator) differs from yolobench's: ultralytics integrates the
101 interpolated points with ``np.trapz``, which caps a perfect class at 0.995 instead of COCO's 1.0,
and matches predictions to labels by IoU (highest IoU pairs first) rather than by score as COCO does;
the test of perfect detections below shows the first difference.
"""

from __future__ import annotations

import numpy as np
import pytest

from yolobench.parity import mean_ap
from yolobench.processing import Detections, nms

pycocotools = pytest.importorskip("pycocotools")
torch = pytest.importorskip("torch")
torchvision = pytest.importorskip("torchvision")

NC = 4


def _scene(rng: np.random.Generator, n_images: int, *, hit_rate: float = 0.8, jitter: float = 6.0,
           false_positives: int = 3):
    """Labels and detections over ``n_images`` images: detections near most labels (jittered, sometimes
    with the wrong class), some duplicates and some stray boxes, every score distinct."""
    labels, detections = [], []
    for _ in range(n_images):
        n = int(rng.integers(0, 7))
        xy = rng.uniform(0, 500, (n, 2))
        wh = rng.uniform(8, 140, (n, 2))
        gt = np.concatenate([xy, xy + wh], axis=1)
        gt_cls = rng.integers(0, NC - 1, n)  # class NC-1 never has labels: COCO leaves it out of the mean
        boxes, classes = [], []
        for box, cls in zip(gt, gt_cls):
            for _ in range(int(rng.random() < hit_rate) + int(rng.random() < 0.2)):  # misses and duplicates
                boxes.append(box + rng.normal(0, jitter, 4))
                classes.append(cls if rng.random() < 0.9 else int(rng.integers(0, NC)))
        for _ in range(int(rng.integers(0, false_positives + 1))):
            xy0 = rng.uniform(0, 500, 2)
            boxes.append(np.concatenate([xy0, xy0 + rng.uniform(8, 140, 2)]))
            classes.append(int(rng.integers(0, NC)))
        boxes = np.array(boxes, dtype=np.float64).reshape(-1, 4)
        boxes[:, 2:] = np.maximum(boxes[:, 2:], boxes[:, :2] + 1.0)
        labels.append((gt.astype(np.float32), gt_cls))
        detections.append(Detections(boxes, rng.random(len(boxes)), np.array(classes, dtype=np.int64)))
    return detections, labels


def _cocoeval(detections, labels) -> tuple[float, float]:
    """(mAP@0.5, mAP@0.5:0.95) from pycocotools on the same boxes (xyxy -> COCO's xywh)."""
    import contextlib
    import io

    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    def xywh(box):
        x1, y1, x2, y2 = (float(v) for v in box)
        return [x1, y1, x2 - x1, y2 - y1]

    images = [{"id": i + 1, "width": 1000, "height": 1000} for i in range(len(labels))]
    annotations, results = [], []
    for i, ((gt, gt_cls), det) in enumerate(zip(labels, detections)):
        for box, cls in zip(gt, gt_cls):
            w, h = float(box[2] - box[0]), float(box[3] - box[1])
            annotations.append({"id": len(annotations) + 1, "image_id": i + 1, "category_id": int(cls) + 1,
                                "bbox": xywh(box), "area": w * h, "iscrowd": 0})
        for box, score, cls in zip(det.boxes, det.scores, det.class_ids):
            results.append({"image_id": i + 1, "category_id": int(cls) + 1, "bbox": xywh(box), "score": float(score)})
    with contextlib.redirect_stdout(io.StringIO()):  # COCO prints progress and its summary table
        truth = COCO()
        truth.dataset = {"images": images, "annotations": annotations,
                         "categories": [{"id": c + 1, "name": str(c)} for c in range(NC)]}
        truth.createIndex()
        found = truth.loadRes(results) if results else COCO()
        evaluation = COCOeval(truth, found, "bbox")
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    return float(evaluation.stats[1]), float(evaluation.stats[0])


@pytest.mark.parametrize("seed", range(6))
def test_mean_ap_matches_pycocotools(seed):
    rng = np.random.default_rng(seed)
    detections, labels = _scene(rng, n_images=int(rng.integers(5, 40)), jitter=float(rng.uniform(2, 12)))
    ours = mean_ap(detections, labels, NC)
    coco50, coco50_95 = _cocoeval(detections, labels)
    assert ours.map50 == pytest.approx(coco50, abs=1e-9)
    assert ours.map50_95 == pytest.approx(coco50_95, abs=1e-9)
    assert 0.05 < ours.map50 < 0.999  # the scenes are neither trivial nor empty: the check has teeth


def test_perfect_detections_score_one_as_coco_does():
    rng = np.random.default_rng(7)
    _, labels = _scene(rng, n_images=10)
    perfect = [Detections(gt, rng.random(len(gt)), cls) for gt, cls in labels]
    assert mean_ap(perfect, labels, NC).map50 == pytest.approx(1.0)
    assert _cocoeval(perfect, labels)[0] == pytest.approx(1.0)  # ultralytics would report 0.995


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("iou_thres", [0.3, 0.45, 0.7])
def test_nms_keeps_what_torchvision_keeps(seed, iou_thres):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(50, 300))
    centres = rng.uniform(0, 120, (n, 2))  # crowded: many overlaps, as a raw head output is
    half = rng.uniform(4, 40, (n, 2))
    boxes = np.concatenate([centres - half, centres + half], axis=1).astype(np.float32)
    scores = rng.permutation(n).astype(np.float32) / n + 0.001  # distinct: the order has no ties to break
    classes = rng.integers(0, 3, n)
    ours = nms(boxes, scores, classes, iou_thres)
    reference = torchvision.ops.batched_nms(torch.from_numpy(boxes), torch.from_numpy(scores),
                                            torch.from_numpy(classes), iou_thres).numpy()
    assert len(reference) < n  # something was suppressed
    np.testing.assert_array_equal(ours, reference)
