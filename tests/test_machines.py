"""`yolobench machines`: runs of several machines side by side, by speedup, labelled by CPU generation."""

from __future__ import annotations

import json
from pathlib import Path

from yolobench import cli, machines
from yolobench.runfile import cell_extra_info, load_run, run_document, split_cell_name, write_run
from yolobench.timer import Latency

ZEN4 = {"cpu": {"vendor_id_raw": "AuthenticAMD", "family": 25, "model": 17, "brand_raw": "AMD EPYC"}}
ZEN5 = {"cpu": {"vendor_id_raw": "AuthenticAMD", "family": 26, "model": 2, "brand_raw": "AMD EPYC"}}


def _cell(name: str, p50_ms: float, speedup: float | None) -> dict:
    variant, engine, imgsz = split_cell_name(name)
    info = cell_extra_info(Latency.from_samples([p50_ms] * 20), variant=variant, engine=engine, engine_version="1",
                           threads=2, imgsz=imgsz, cpu_model="AMD EPYC",
                           fraction_of_supported_ops=1.0 if engine == "deepsparse" else None)
    info["speedup_vs_reference"] = speedup
    return info


def _run(tmp_path: Path, name: str, machine: dict, cells: dict[str, tuple[float, float]]) -> Path:
    doc = run_document([_cell(c, ms, s) for c, (ms, s) in cells.items()], machine=machine, commit={"id": name})
    return write_run(tmp_path / f"{name}.json", doc)


def _two(tmp_path):
    a = _run(tmp_path, "a", ZEN4, {"dense-onnxruntime-416": (10.0, 1.0), "pruned_quant-deepsparse-416": (4.0, 2.5),
                                   "pruned_quant-openvino-416": (5.0, 2.0)})
    b = _run(tmp_path, "b", ZEN5, {"dense-onnxruntime-416": (6.0, 1.0), "pruned_quant-deepsparse-416": (6.0, 1.0),
                                   "pruned_quant-openvino-416": (2.0, 3.0)})
    return a, b


def test_columns_are_labelled_by_generation_and_speedups_line_up(tmp_path):
    a, b = _two(tmp_path)
    cols = machines.columns([load_run(a), load_run(b)])
    assert [c.label for c in cols] == ["AMD family 25 model 17 (Zen 4)", "AMD family 26 model 2 (Zen 5)"]
    rows = dict(machines.speedup_rows(cols))
    assert rows["pruned_quant-deepsparse-416"] == [2.5, 1.0]
    assert rows["pruned_quant-openvino-416"] == [2.0, 3.0]


def test_fastest_engine_differs_between_machines(tmp_path):
    a, b = _two(tmp_path)
    cols = machines.columns([load_run(a), load_run(b)])
    assert machines.fastest_engines(cols[0])[("pruned_quant", 416)] == ("deepsparse", 2.5)
    assert machines.fastest_engines(cols[1])[("pruned_quant", 416)] == ("openvino", 3.0)
    text = machines.markdown(cols)
    assert "| pruned_quant | 416 | deepsparse (2.50x) | openvino (3.00x) | no |" in text
    assert "| pruned_quant-openvino-416 | 2.00x | 3.00x | 1.50 |" in text
    assert "416: 10.0" in text and "416: 6.0" in text  # each machine's own scale, not compared


def test_same_generation_twice_is_told_apart_by_file(tmp_path):
    a = _run(tmp_path, "a", ZEN5, {"dense-onnxruntime-416": (6.0, 1.0)})
    b = _run(tmp_path, "b", ZEN5, {"dense-onnxruntime-416": (6.1, 1.0)})
    labels = [c.label for c in machines.columns([load_run(a), load_run(b)])]
    assert labels == ["AMD family 26 model 2 (Zen 5) [a.json]", "AMD family 26 model 2 (Zen 5) [b.json]"]


def test_command_writes_markdown_and_json(tmp_path, capsys):
    a, b = _two(tmp_path)
    assert cli.main(["machines", str(a), str(b)]) == 0
    assert "## Fastest engine per variant" in capsys.readouterr().out
    out = tmp_path / "m.json"
    assert cli.main(["machines", str(a), str(b), "--json", "--out", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["speedup_vs_reference"]["pruned_quant-deepsparse-416"] == {
        "AMD family 25 model 17 (Zen 4)": 2.5, "AMD family 26 model 2 (Zen 5)": 1.0}


def test_a_bad_run_file_is_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    assert cli.main(["machines", str(bad)]) == 2
    assert "bad.json" in capsys.readouterr().err


def test_asv_machine_is_named_by_generation_and_cores():
    assert machines.asv_machine_name("AMD family 25 model 17 (Zen 4)", 2) == "amd-family25-model17-2c"
    assert machines.asv_machine_name(None, 4) == "unknown-cpu-4c"
    assert machines.asv_cpu("AMD EPYC", "AMD family 26 model 2 (Zen 5)") == "AMD EPYC [AMD family 26 model 2 (Zen 5)]"

def test_engine_settings_that_differ_are_named(tmp_path):
    a, b = _two(tmp_path)
    docs = []
    for path, hint in ((a, "f32"), (b, "bf16")):
        doc = json.loads(path.read_text())
        for bench in doc["benchmarks"]:
            bench["extra_info"]["session"] = {"engine": bench["extra_info"]["engine"], "threads": 2,
                                              "inference_precision_hint": hint}
        path.write_text(json.dumps(doc))
        docs.append(load_run(path))
    cols = machines.columns(docs)
    assert ("openvino", "inference_precision_hint", ["f32", "bf16"]) in machines.settings_that_differ(cols)
    assert "**Engine settings differ between these runs**" in machines.markdown(cols)


def test_run_file_strings_are_text_in_the_table(tmp_path):
    """CI pastes this table into the job summary: a run file's commit id or file name must not become HTML
    or a link there (the report's escaping helper, yolobench.mdtext)."""
    evil = "<img src=x onerror=alert(1)>[x](http://evil)"
    doc = run_document([_cell("dense-onnxruntime-416", 10.0, 1.0)], machine=ZEN4, commit={"id": evil})
    path = write_run(tmp_path / "run.json", doc)
    text = machines.markdown(machines.columns([load_run(path)]))
    assert "<img" not in text and "&lt;img src=x o" in text  # the commit column shows its first 12 characters


def test_the_table_needs_no_report_dependencies():
    # CI's machines job installs numpy, PyYAML and filelock only: machines must not import the report package
    import subprocess
    import sys

    code = ("import sys; import yolobench.machines; "
            "bad = [m for m in ('matplotlib', 'cv2', 'yolobench.report', 'torch') if m in sys.modules]; "
            "print(', '.join(bad)); sys.exit(1 if bad else 0)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={"PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")})
    assert done.returncode == 0, done.stdout + done.stderr
