"""The report of one benchmark run: markdown tables, charts and sample detections per variant.

``write_report(run_path, out_dir)`` writes into ``out_dir``:

- ``report.md``: one table per image size of the run (a ``full`` run: 640 px, then 416 px), one row per
  (variant, engine) cell with FPS, p50/p90 latency, speedup vs dense on PyTorch and vs the run's
  reference (dense on ONNX Runtime) at that size, mAP@0.5 (and its change vs dense) and mAP@0.5:0.95 at
  that size, sparsity, the size of the file that engine loads and its gzip size; a row "not timed" where
  the matrix does not time a cell by design (``bench.untimed_reason``: PyTorch's fake-quantized INT8);
  the machine, library versions, date and commit; the fastest configuration within one mAP point of
  dense at each size; the blog's speedups beside this run's (``yolobench.blog``); the run file it all
  comes from;
- per size, ``fps.png`` / ``tradeoff.png`` for a run of one size, ``fps-<imgsz>.png`` /
  ``tradeoff-<imgsz>.png`` for a run of several (:func:`chart_names`): FPS per variant (groups) and
  engine (bars); mAP@0.5 against FPS;
- ``detections/<variant>.png``: the same sample images with the variant's detections, run through its
  artifact the run measured on one engine (skipped with a note when the store no longer has it).

Every number in the tables is copied from the run file (``benchmarks[].extra_info``) and only rounded for
display; the derived columns are documented in the report itself: the speedup vs dense on PyTorch
(ratio of fastest-session medians, ``runfile.speedup_of_fastest``, the rule of the run's own
``speedup_vs_reference``), the mAP change (difference of stored mAPs) and the gzip size (of the cell's
file in the artifact store, looked up by the ``artifact_key`` the cell records; "—" with a footnote where
the store does not have it).

Must not: measure anything, build or train a variant (a missing build is a note in the report, not a
build), or write anything outside ``out_dir``.

The modules, in the order the report is made (each imports only those above it):

- ``cells``: the run's sizes, variants and engines in order, the cells not timed by design, the dense cell
  and the PyTorch baseline each cell is compared with;
- ``files``: the file each cell's engine loaded, the one a deployment loads, its gzip size from the store;
- ``rows``: the table's rows (:class:`Row`) and the fastest configuration within one point of dense;
- ``formats``: how a number, a missing value, a Markdown table and a path are written, and a run file's
  strings as text (``md_text``);
- ``tables``: the table of each size, its markers' footnotes;
- ``machine``: the header's machine, library versions, commit and user's checkpoint;
- ``charts``: the FPS bars, the latency distribution and the roofline; ``tradeoff``: mAP against FPS;
- ``detections``: the detection sheets;
- ``sections``: the baseline diff with the gate's verdicts, the blog side by side, the scenarios;
- ``measurements``: the machine's peak and the per-layer profiles, read from results/;
- ``markdown``: report.md from all of the above; ``writer``: :func:`write_report` and its defaults.

Every public name is importable from ``yolobench.report`` itself (re-exported below). A test that replaces
a function (``monkeypatch``) replaces it in the module that defines it and calls it, e.g.
``report.writer.default_runs_dir``: replacing the re-exported name changes nothing the report does.
"""

from __future__ import annotations

from yolobench.report.cells import (DENSE_VARIANT, TORCH_ENGINE, Progress, Untimed, dense_cell_for, engines_of,
                                    ordered_cells, sizes_of, torch_baseline_name, untimed_cells, variants_of)
from yolobench.report.files import (GZIP_LEVEL, DeployedFile, deployed_files, deployment_file, gzip_size,
                                    loaded_file)
from yolobench.report.rows import (FLOAT_SLACK, MAP_POINTS_ALLOWED, POINTS_PER_UNIT, Row, build_rows,
                                   fastest_per_size, fastest_within_dense, rows_at)
from yolobench.report.formats import (MISSING, NO_COMPRESSED_MARK, UNTIMED_MARK, UNTIMED_TEXT, display_path,
                                      fmt_fps, fmt_map, fmt_ms, fmt_points, fmt_ratio, fmt_size, fmt_sparsity,
                                      markdown_table, md_text)
from yolobench.report.tables import (fastest_line, fmt_compressed, reference_name, size_table, table_footnotes,
                                     table_header, table_row, untimed_row)
from yolobench.report.machine import MachineSummary, commit_line, machine_line, machine_summary, weights_line
from yolobench.report.charts import (CHART_DPI, FONT_FAMILY, FPS_FIGSIZE, TRADEOFF_FIGSIZE, UNKNOWN_ENGINE_COLOR,
                                     UNKNOWN_ENGINE_MARKER, chart_names, distribution_name, plot_fps,
                                     plot_latency_distribution, plot_roofline)
from yolobench.report.tradeoff import (LABEL_DIRECTIONS, LABEL_FONT_SIZE, LABEL_RADII_PX, LEADER_LINE_MIN_PX,
                                       LOG_AXIS_MIN_RATIO, plot_tradeoff)
from yolobench.report.detections import (COCO_PHOTO_CLASSES, DETECTION_CONF, DETECTION_PANEL_HEIGHT,
                                         VALIDATION_SAMPLES, DetectionResult, SampleImage, detection_sheet,
                                         draw_detections_for, sample_images)
from yolobench.report.sections import (BlogComparison, baseline_section, blog_section, blog_side_by_side,
                                       scenario_section)
from yolobench.report.measurements import (auto_peak, auto_profiles, measurements_dir, peak_section,
                                           profiles_section)
from yolobench.report.markdown import render_markdown
from yolobench.report.writer import (Report, default_out_dir, default_runs_dir, infer_profile, newest_run,
                                     stderr_progress, write_report)
