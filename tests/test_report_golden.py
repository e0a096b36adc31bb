"""The report of a committed run, byte for byte: a refactor of ``yolobench.report`` that changes one character
of report.md fails here.

The input is the full main job of 2026-12-03 on Zen 5 (two sizes, 66 cells, 24 not timed by design, the
scenarios), against the run before it as the baseline, with the machine's peak and one per-layer profile:
every section of report.md except a user's checkpoint line and the drawn detection sheets (those need a
store with the run's artifacts; tests/test_report.py covers them). The store is an empty folder, as on a
fresh clone: the gzip sizes, the roofline rows and the detections are the report's "not in the store" notes.

The run and the baseline are history under results/runs/ (never rewritten). The thresholds, the peak and
the profile are copies in tests/data/report-golden/ of results/thresholds-full.toml,
results/peak/amd-family26-model2.json and
results/profiles/full-amd-family26-model2-pruned_quant-deepsparse-vs-oneshot-openvino-640.md as of commit
a4d2c2f, so that a new measurement committed there does not change this report.

The reference tests/data/report-golden/report.md was written by the report before it became a package
(commit a4d2c2f), from the checkout's root, with exactly:

    rm -rf /tmp/golden /tmp/golden-store
    PYTHONPATH=src python -m yolobench report --quiet \\
      --run results/runs/full-2026-12-03-s6/run-main-job-zen5.json --out /tmp/golden --store /tmp/golden-store \\
      --baseline results/runs/full-2026-12-03-s5/run-main-job-zen5.json \\
      --thresholds tests/data/report-golden/thresholds-full.toml \\
      --peak tests/data/report-golden/peak-amd-family26-model2.json \\
      --profiles tests/data/report-golden/full-amd-family26-model2-pruned_quant-deepsparse-vs-oneshot-openvino-640.md
    sed 's#/tmp/golden-store#<store>#g' /tmp/golden/report.md > tests/data/report-golden/report.md

Rerun it only for an intended change of the report (or of what it reads: the catalogue, the engines'
traits, the blog's numbers, the gate's rules), and read the diff before committing it.

What is not compared, and why:
- the store's folder, which the report names where an artifact is missing: a temporary folder here,
  ``<store>`` in the reference;
- the charts' pixels: matplotlib's and FreeType's versions move them; only that each chart the report links
  is written and opens as an image;
- no time stamp needs excluding: the report writes no clock time (its "Date" is the run file's), and every
  other path it names is relative to the checkout.
"""

from __future__ import annotations

import difflib
from pathlib import Path

import cv2

from yolobench.cli import main
from yolobench.store import Store

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "tests" / "data" / "report-golden"
RUN = ROOT / "results" / "runs" / "full-2026-12-03-s6" / "run-main-job-zen5.json.gz"
BASELINE = ROOT / "results" / "runs" / "full-2026-12-03-s5" / "run-main-job-zen5.json.gz"
STORE_PLACEHOLDER = "<store>"
CHARTS = {f"{kind}-{imgsz}.png" for kind in ("fps", "tradeoff", "latency") for imgsz in (640, 416)} | {"roofline.png"}


def test_report_of_a_committed_run_matches_the_reference(tmp_path, capfd):
    store, out = tmp_path / "store", tmp_path / "report"
    code = main(["report", "--quiet", "--run", str(RUN), "--out", str(out), "--store", str(store),
                 "--baseline", str(BASELINE), "--thresholds", str(GOLDEN / "thresholds-full.toml"),
                 "--peak", str(GOLDEN / "peak-amd-family26-model2.json"),
                 "--profiles", str(GOLDEN / "full-amd-family26-model2-pruned_quant-deepsparse-vs-oneshot-openvino-640.md")])
    _, stderr = capfd.readouterr()
    assert code == 0, stderr
    written = (out / "report.md").read_text(encoding="utf-8")
    assert str(Store(store).root) in written  # the one machine-dependent text, replaced below
    written = written.replace(str(Store(store).root), STORE_PLACEHOLDER)
    expected = (GOLDEN / "report.md").read_text(encoding="utf-8")
    if written != expected:
        diff = "".join(list(difflib.unified_diff(expected.splitlines(keepends=True), written.splitlines(keepends=True),
                                                 "reference report.md", "written report.md"))[:60])
        raise AssertionError(f"report.md differs from {GOLDEN / 'report.md'} (regenerate it only for an intended "
                             f"change, with the command in this test's docstring):\n{diff}")
    # Every chart the report links is there and opens; nothing else is written (no detection sheet: the
    # store is empty).
    assert {p.name for p in out.iterdir()} == CHARTS | {"report.md"}
    for chart in CHARTS:
        assert f"]({chart})" in written
        image = cv2.imread(str(out / chart))
        assert image is not None and image.shape[0] > 0 and image.shape[1] > 0, chart
