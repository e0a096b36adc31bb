"""report.md: the header, a table per size with its charts, the optional sections, how to read the tables,
the blog side by side and the detections, in that order."""

from __future__ import annotations

from yolobench.report.cells import Untimed, sizes_of, torch_baseline_name, untimed_cells
from yolobench.report.charts import chart_names, distribution_name
from yolobench.report.detections import DetectionResult
from yolobench.report.files import GZIP_LEVEL
from yolobench.report.formats import (MISSING, NO_COMPRESSED_MARK, UNTIMED_MARK, UNTIMED_TEXT, _join, display_path,
                                      md_text)
from yolobench.report.machine import commit_line, machine_line, machine_summary, weights_line
from yolobench.report.rows import Row, fastest_per_size
from yolobench.report.sections import blog_section, scenario_section
from yolobench.report.tables import fastest_line, size_table, table_footnotes
from yolobench.runfile import Run


def render_markdown(run: Run, rows: list[Row], *, detections: list[DetectionResult] | None,
                    detections_note: str = "", untimed: list[Untimed] | None = None,
                    baseline_lines: list[str] | None = None, machine_lines: list[str] | None = None,
                    history_line: str | None = None) -> str:
    summary = machine_summary(run)
    source = display_path(run.path)
    untimed = untimed_cells(run) if untimed is None else untimed
    sizes = sizes_of(run)
    charts = chart_names(sizes)
    counted = f"{len(rows)} cells" + (f", {len(untimed)} not timed by design" if untimed else "")
    lines = [
        "# yolobench report",
        "",
        f"Run file: `{source}` (every number below is copied from its `benchmarks[].extra_info`, rounded for display)",
        "",
        f"- {machine_line(summary)}",
        f"- Library versions: {_join(md_text(f'{k} {v}') for k, v in summary.versions.items()) or 'not recorded'}"
        + (f"; Python {md_text(summary.python)}" if summary.python else ""),
        f"- Date: {md_text(run.datetime) if run.datetime else 'not recorded'}",
        *([f"- {line}"] if (line := weights_line(run)) else []),
        f"- {commit_line(run)}",
        *([f"- {history_line}"] if history_line else []),
        f"- Batch {_join(summary.batch)}, input {_join(sizes)} px (a table per size), {counted}",
        *([f"- **Incomplete run**: {line}"] if (line := run.incomplete_line()) else []),
        "",
    ]
    lines += [fastest_line(imgsz, best) for imgsz, best in fastest_per_size(rows).items()]
    lines.append("")
    for imgsz in sizes:
        fps_name, tradeoff_name = charts[imgsz]
        lines += [f"## {imgsz} px", "", size_table(run, rows, untimed, imgsz), ""]
        footnotes = table_footnotes(rows, untimed, imgsz)
        if footnotes:
            lines += [*footnotes, ""] if len(footnotes) == 1 else [*(f"- {n}" for n in footnotes), ""]
        lines += [f"![FPS per variant and engine at {imgsz} px]({fps_name})", "",
                  f"![mAP@0.5 vs FPS at {imgsz} px]({tradeoff_name})", "",
                  f"![latency distribution per cell at {imgsz} px]({distribution_name(sizes, imgsz)})", ""]
    lines += baseline_lines or []
    lines += scenario_section(run)
    lines += machine_lines or []
    missing_torch = [torch_baseline_name(s) for s in sizes if torch_baseline_name(s) not in run.cells]
    lines += [
        "## How to read the tables",
        "",
        "- FPS = 1000 / mean latency (`fps`); p50, p90, p99 = `latency_ms.p50`, `.p90`, `.p99` (batch 1, one stream); "
        "the distribution of every cell's samples is drawn under each size's table.",
        "- speedup vs dense-torch-<size> = its fastest `session_p50_ms` / the cell's fastest `session_p50_ms` "
        "(`latency_ms.p50` where a run recorded no sessions), at the same size: the rule of the run's own speedups, "
        "robust to a slow phase of the machine that hit some sessions"
        + (f"; n/a: this run has no {_join(missing_torch)} cell." if missing_torch else "."),
        "- speedup vs dense-onnxruntime-<size> = `speedup_vs_reference` as recorded in the run (same rule, measured "
        "in the same run against the reference at the same size"
        + ("; a run of model files, `yolobench bench --model`, names its own reference: the first file on ONNX "
           "Runtime)." if any(c.extra.get("model_file") for c in run.cells.values()) else ")."),
        "- mAP@0.5, mAP@0.5:0.95 = `map50`, `map50_95`: the artifact's accuracy at the table's size. "
        "ΔmAP@0.5 = (cell `map50` - dense `map50`) x 100, in points, against dense on the same engine at the same "
        "size (a note names the dense cell when it is another one).",
        "- sparsity = `sparsity` (fraction of zero weights) in %.",
        "- size MB = `model_size_bytes` / 10^6: the file the engine loads (`file`, from the cell's session): "
        "`weights.pt` on PyTorch; for a quantized variant the converted INT8 ONNX on DeepSparse and the QDQ ONNX "
        "on ONNX Runtime and OpenVINO; the FP32 ONNX otherwise (a note says where a cell loaded another one).",
        f"- gzip MB = that file after gzip at level {GZIP_LEVEL} / 10^6 (what the blog's source publishes: sparse "
        "weights compress), computed from the artifact's file in the store, found by the cell's `artifact_key` "
        f"({MISSING}{NO_COMPRESSED_MARK} where the store does not have it).",
        f"- {UNTIMED_TEXT}{UNTIMED_MARK}: a cell the matrix does not time by design; the reason is under the table.",
        "",
    ]
    lines += blog_section(run, rows)
    lines += ["## Detections", ""]
    if detections is None:
        lines.append(detections_note or "Not drawn.")
    else:
        lines.append(detections_note)
        lines.append("")
        for result in detections:
            variant = md_text(result.variant)
            if result.image is not None:
                lines += [f"### {variant}", "", result.note, "",
                          f"![{variant} detections]({result.image.as_posix()})", ""]
            else:
                lines += [f"### {variant}", "", result.note, ""]
    return "\n".join(lines).rstrip() + "\n"
