"""The detection sheets: per variant, the same sample images with their labels and the detections of each
engine the run measured it on, from the artifact the run names; a note instead when the store no longer has
it (the report never builds)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from yolobench import bench, engines
from yolobench.errors import UserError
from yolobench.fsutil import atomic_write_bytes
from yolobench.report.cells import Progress, engines_of, variants_of
from yolobench.report.formats import md_text
from yolobench.runfile import Run
from yolobench.store import Store

DETECTION_PANEL_HEIGHT = 360  # px: every sample image is shown at this height, boxes drawn at that scale
DETECTION_CONF = 0.25
# ultralytics' two photos (a bus, people) only say something to a model that knows these classes.
COCO_PHOTO_CLASSES = {"person", "bus"}
VALIDATION_SAMPLES = 2  # validation images per sheet, each with its ground truth


@dataclass(frozen=True)
class SampleImage:
    label: str  # the caption: where the image comes from
    image: np.ndarray
    truth: tuple[np.ndarray, np.ndarray] | None = None  # labelled (xyxy boxes in image pixels, class ids)


def sample_images(data_yaml: str | os.PathLike | None, names: Mapping[int, str] | None = None) -> list[SampleImage]:
    """The first ``VALIDATION_SAMPLES`` validation images of ``data_yaml`` (the set the artifact was judged
    on, as its meta names it) with their labels; ultralytics' two photos only when the model's classes
    include theirs (on the built-in shapes they would show nothing, or false positives)."""
    from yolobench.evaluate import validation_set
    from yolobench.processing import default_images, load_images

    if data_yaml is None:  # a model file run without --data: no labelled images, ultralytics' photos only
        return [SampleImage(path.name, image) for path, image in load_images(default_images())]
    images, labels, _ = validation_set(data_yaml)
    if not images:
        raise UserError(f"{data_yaml}: the validation split has no images to draw detections on")
    samples = [SampleImage(f"validation: {path.name}", load_images(path)[0][1], truth=label)
               for path, label in list(zip(images, labels))[:VALIDATION_SAMPLES]]
    if names and COCO_PHOTO_CLASSES <= {str(n) for n in names.values()}:
        samples += [SampleImage(path.name, image) for path, image in load_images(default_images())]
    return samples


def _truth_panel(sample: SampleImage, names, height: int):
    from yolobench import draw
    from yolobench.processing import Detections

    boxes, classes = sample.truth
    truth = Detections(boxes, np.ones(len(classes)), classes)
    shown, factor = draw.resize_to_height(sample.image, height)
    return (draw.draw_detections(shown, draw.scale_detections(truth, factor), names),
            f"ground truth: {len(classes)} objects")


def detection_sheet(detectors: Sequence, samples: list[SampleImage],
                    height: int = DETECTION_PANEL_HEIGHT) -> tuple[np.ndarray, dict[str, list[int]]]:
    """One row per sample image: its ground truth (where labelled), then the same image on every engine;
    and per engine the detection count of each image. Engines that agree draw the same boxes."""
    from yolobench import draw

    rows, counts = [], {d.engine: [] for d in detectors}
    names = detectors[0].names
    for sample in samples:
        panels = [_truth_panel(sample, names, height)] if sample.truth is not None else []
        for detector in detectors:
            detections, _ = detector.detect(sample.image)
            shown, factor = draw.resize_to_height(sample.image, height)
            panels.append((draw.draw_detections(shown, draw.scale_detections(detections, factor), detector.names),
                           f"{detector.engine} ({detector.form}): {len(detections)} detections"))
            counts[detector.engine].append(len(detections))
        rows.append(draw.contact_sheet(panels, sample.label))
    first = detectors[0]
    title = (f"{first.variant}: the same images on every engine ({first.imgsz} px input, conf {first.conf:g}); "
             "leftmost: the labels")
    width = max(r.shape[1] for r in rows)
    padded = [np.hstack([r, np.full((r.shape[0], width - r.shape[1], 3), 255, np.uint8)]) if r.shape[1] < width
              else r for r in rows]
    return np.vstack([draw.caption_strip(width, title, height=44, scale=0.75), *padded]), counts


@dataclass(frozen=True)
class DetectionResult:
    variant: str
    image: Path | None  # relative to the report folder; None when skipped
    note: str
    not_built: bool = False


def _detection_imgsz(run: Run, variant: str, artifact) -> int | None:
    sizes = sorted({c.imgsz for c in run.cells.values() if c.variant == variant})
    return next((s for s in sizes if s in artifact.export_sizes), None)


def draw_detections_for(run: Run, out_dir: Path, *, profile: str, data, store, engine: str | None,
                        say: Progress) -> list[DetectionResult]:
    """A detection sheet per variant, from the artifact the run's cells name (``artifact_key``) when the
    store has it, on every engine the run measured it on (or only ``engine``). The report reads: it never
    builds, and never recomputes a key to guess which artifact a run meant (that needs the recipes, the
    data and SparseML of today, not of the run)."""
    from yolobench import annotate

    store = store if store is not None else Store()
    results: list[DetectionResult] = []
    for variant in variants_of(run):
        keys = {c.extra.get("artifact_key") for c in run.cells.values() if c.variant == variant}
        measured = next(iter(keys)) if len(keys) == 1 and None not in keys else None
        artifact = store.get(variant, str(measured)) if measured else None
        if artifact is None:
            build = f"yolobench build --variants {variant} --profile {profile}" + (f" --data {data}" if data else "")
            why = (f"artifact {measured}, which this run measured, is not in {store.root}" if measured else
                   "the run does not record which artifact it measured")
            results.append(DetectionResult(variant, None, f"skipped: {why} (`{build}` builds the current one; "
                                                          "a new run then names it)", not_built=True))
            continue
        imgsz = _detection_imgsz(run, variant, artifact)
        wanted = [engine] if engine else [e for e in engines_of(run)
                                           if any(c.variant == variant and c.engine == e for c in run.cells.values())]
        detectors, skipped = [], []
        for name in wanted:
            say(f"drawing detections of {variant} on {name}")
            try:
                bench.preflight(artifact, name, threads=bench.default_threads(), imgsz=imgsz)
                detectors.append(annotate.Detector.load(artifact, name, imgsz=imgsz, conf=DETECTION_CONF))
            except (UserError, engines.EngineUnsupported) as err:
                skipped.append(f"{md_text(name)}: {md_text(getattr(err, 'reason', err))}")
        if not detectors:
            results.append(DetectionResult(variant, None, "skipped: " + "; ".join(skipped)))
            continue
        try:
            samples = sample_images(artifact.eval_data_yaml(imgsz), detectors[0].names)
        except UserError as err:
            results.append(DetectionResult(variant, None, f"skipped: {err}"))
            continue
        sheet, counts = detection_sheet(detectors, samples)
        relative = Path("detections") / f"{variant}.png"
        _write_png(out_dir / relative, sheet)
        per_engine = "; ".join(f"{md_text(e)} {', '.join(map(str, n))}" for e, n in counts.items())
        truths = ", ".join(str(len(s.truth[1])) for s in samples if s.truth is not None)
        note = (f"Artifact {artifact.key} (the one this run measured) at {imgsz} px, conf {DETECTION_CONF:g}; "
                f"labelled objects per image: {truths}; detections per image: {per_engine}.")
        if skipped:
            note += " Not drawn: " + "; ".join(skipped) + "."
        results.append(DetectionResult(variant, relative, note))
        detectors.clear()  # one variant's sessions at a time
    return results


def _write_png(path: Path, image: np.ndarray) -> None:
    """A BGR sheet as a 256-colour PNG (draw.palette_png): 0.6 MB -> 0.2 MB a sheet at the full profile."""
    from yolobench.draw import palette_png

    atomic_write_bytes(path, palette_png(np.ascontiguousarray(image[..., ::-1])))
