"""The history (yolobench.history): run files as asv results, one line per model, published offline.

The browser tests open the published pages in headless Chromium through a local web server (offline:
nothing else is reachable) and read what flot drew: the number of points of each line of a cell's graph.
They need a Chromium binary (``YOLOBENCH_CHROMIUM``, else ``chromium``/``chromium-browser``/
``google-chrome`` on PATH; Debian: ``apt-get install chromium``) and are skipped, with that reason, where
none is installed. Everything else here runs everywhere.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import http.server
import json
import os
import re
import shutil
import subprocess
import threading
from pathlib import Path

import pytest

from yolobench import cli
from yolobench.errors import UserError
from yolobench.history import asvresults, publish
from yolobench.runfile import cell_extra_info, run_document, write_run
from yolobench.timer import Latency

REPO = Path(__file__).resolve().parents[1]
ZEN4 = {"cpu": {"brand_raw": "AMD EPYC", "vendor_id_raw": "AuthenticAMD", "family": 25, "model": 17, "count": 2},
        "machine": "x86_64", "system": "Linux"}
ZEN5 = {"cpu": {"brand_raw": "AMD EPYC", "vendor_id_raw": "AuthenticAMD", "family": 26, "model": 2, "count": 2},
        "machine": "x86_64", "system": "Linux"}
CELL = "dense-onnxruntime-160"
SERIES = f"smoke.latency_ms.{CELL}"


def cell(variant: str, engine: str, key: str, sessions: tuple[float, ...], map50: float = 0.8) -> dict:
    samples = [s for p50 in sessions for s in (p50,) * 5]
    latency = Latency.from_samples(samples, session_sizes=[5] * len(sessions))
    info = cell_extra_info(latency, variant=variant, engine=engine, engine_version="1.0", threads=2, imgsz=160,
                           map50=map50, cpu_model="AMD EPYC", reference_latency=latency)
    return dict(info, profile="smoke", artifact_key=key)


def run_file(folder: Path, name: str, commit: str, *, key: str = "a" * 16, p50: float = 10.0, machine=ZEN4,
             when: str = "2026-12-01T10:00:00+00:00", dirty: bool | None = None, time: str | None = None,
             scenarios: tuple[dict, ...] = ()) -> Path:
    cells = [cell("dense", "onnxruntime", key, (p50 + 2.0, p50, p50 + 1.0))]
    commit_info = {"id": commit, "dirty": bool(dirty), "time": time or "2026-12-01T09:00:00+00:00"}
    if dirty is not None:
        commit_info["code_dirty"] = dirty
    doc = run_document(cells, machine=machine, commit=commit_info)
    doc["datetime"] = when
    for entry in scenarios:
        doc["benchmarks"].append({"name": f"test_scenario[{entry['scenario_cell']}]", "extra_info": entry,
                                  "stats": {}})
    return write_run(folder / f"{name}.json.gz", doc)


def results_of(root: Path, machine: str, commit: str) -> dict:
    return json.loads((root / machine / f"{commit[:8]}-{asvresults.ENV_NAME}.json").read_text())["results"]


# --- recording ---


def test_a_run_becomes_asv_points_one_series_per_cell_and_metric(tmp_path):
    e2e = {"scenario": "e2e", "scenario_cell": f"{CELL}-e2e", "variant": "dense", "engine": "onnxruntime",
           "imgsz": 160, "threads": 2, "artifact_key": "a" * 16, "latency_ms": {"p50": 12.5, "p99": 14.0},
           "samples_ms": [12.5], "fps": 80.0}
    memory = {"scenario": "memory", "scenario_cell": f"{CELL}-memory", "variant": "dense", "engine": "onnxruntime",
              "imgsz": 160, "threads": 2, "artifact_key": "a" * 16, "peak_rss_mb": 300.5}
    run = run_file(tmp_path, "r1", "1" * 40, scenarios=(e2e, memory))
    done = asvresults.record(run, tmp_path / "asv")
    assert (done.machine, done.profile, done.points, done.skipped) == ("amd-family25-model17-2c", "smoke", 4, None)
    results = results_of(tmp_path / "asv", done.machine, "1" * 40)
    # the fastest session's median (what the gate compares), not the pooled one
    assert results[SERIES][:3] == [[10.0], [["'aaaaaaaa'"]], asvresults.SERIES_VERSION]
    assert results[f"smoke.map50_loss.{CELL}"][0] == [pytest.approx(0.2)]
    assert results[f"smoke.e2e_ms.{CELL}-e2e"][0] == [12.5]
    assert results[f"smoke.peak_rss_mb.{CELL}-memory"][0] == [300.5]
    benchmarks = json.loads((tmp_path / "asv" / "benchmarks.json").read_text())
    assert benchmarks[SERIES]["param_names"] == ["model"] and benchmarks[SERIES]["unit"] == "ms"
    machine = json.loads((tmp_path / "asv" / done.machine / "machine.json").read_text())
    assert machine["machine"] == done.machine and "Zen 4" in machine["cpu"] and machine["num_cpu"] == "2"


def test_a_new_artifact_key_is_a_new_line_of_the_same_graph(tmp_path):
    asvresults.record(run_file(tmp_path, "r1", "1" * 40, key="a" * 16), tmp_path / "asv")
    asvresults.record(run_file(tmp_path, "r2", "2" * 40, key="b" * 16), tmp_path / "asv")
    benchmarks = json.loads((tmp_path / "asv" / "benchmarks.json").read_text())
    assert benchmarks[SERIES]["params"] == [["'aaaaaaaa'", "'bbbbbbbb'"]]


def test_generations_and_profiles_keep_their_own_histories(tmp_path):
    a = asvresults.record(run_file(tmp_path, "zen4", "1" * 40), tmp_path / "asv")
    b = asvresults.record(run_file(tmp_path, "zen5", "1" * 40, machine=ZEN5), tmp_path / "asv")
    assert (a.machine, b.machine) == ("amd-family25-model17-2c", "amd-family26-model2-2c")
    assert results_of(tmp_path / "asv", a.machine, "1" * 40).keys() == results_of(tmp_path / "asv", b.machine, "1" * 40).keys()


def test_of_two_runs_of_one_commit_the_later_is_kept_whatever_the_order(tmp_path):
    later = run_file(tmp_path, "later", "1" * 40, p50=20.0, when="2026-12-01T12:00:00+00:00")
    earlier = run_file(tmp_path, "earlier", "1" * 40, p50=10.0, when="2026-12-01T11:00:00+00:00")
    asvresults.record(later, tmp_path / "asv")
    skipped = asvresults.record(earlier, tmp_path / "asv")
    assert skipped.points == 0 and "later smoke run" in skipped.skipped
    assert results_of(tmp_path / "asv", skipped.machine, "1" * 40)[SERIES][0] == [20.0]


def test_recording_the_same_run_again_changes_nothing(tmp_path):
    run = run_file(tmp_path, "r1", "1" * 40)
    asvresults.record(run, tmp_path / "asv")
    before = {p: p.read_bytes() for p in (tmp_path / "asv").rglob("*.json")}
    asvresults.record(run, tmp_path / "asv")
    assert before == {p: p.read_bytes() for p in (tmp_path / "asv").rglob("*.json")}


def test_a_run_of_uncommitted_code_is_no_point_of_the_history(tmp_path):
    done = asvresults.record(run_file(tmp_path, "dirty", "1" * 40, dirty=True), tmp_path / "asv")
    assert done.points == 0 and "uncommitted code changes" in done.skipped
    assert not (tmp_path / "asv" / "benchmarks.json").exists()
    # changes under results/ only (a previous main job's report): code_dirty False, recorded
    doc_dirty_only = run_file(tmp_path, "reports", "2" * 40, dirty=False)
    assert asvresults.record(doc_dirty_only, tmp_path / "asv").points == 2


def test_a_run_without_a_commit_is_refused_in_one_line(tmp_path, capsys):
    run = write_run(tmp_path / "r.json", run_document([cell("dense", "onnxruntime", "a" * 16, (10.0,))]))
    good = run_file(tmp_path, "good", "1" * 40)
    code = cli.main(["history", "record", str(run), str(good), "--results", str(tmp_path / "asv")])
    err = capsys.readouterr().err
    assert code == 2 and "records no commit" in err and "Traceback" not in err
    assert "2 points for 111111111111" in err  # the good one is recorded all the same


def test_uncommitted_code_is_what_differs_outside_results_and_docs(tmp_path):
    from yolobench import paths

    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / "results").mkdir()
    for name in ("code.py", "results/report.md", "README.md"):
        (tmp_path / name).write_text("one\n")
    git = ["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run(git + ["add", "."], check=True)
    subprocess.run(git + ["commit", "-qm", "one"], check=True)
    (tmp_path / "results" / "report.md").write_text("two\n")
    (tmp_path / "README.md").write_text("two\n")
    assert paths.uncommitted_code(tmp_path) == []
    (tmp_path / "code.py").write_text("two\n")
    assert paths.uncommitted_code(tmp_path) == ["code.py"]
    assert paths.uncommitted_code(tmp_path / "nothing-here") is None


# --- offline HTML ---


def asv_index() -> str:
    import asv

    return (Path(asv.__file__).parent / "www" / "index.html").read_text()


def test_every_script_asv_loads_from_a_cdn_is_shipped_and_the_same_files_are_byte_identical():
    tags = re.findall(r'(?:src|href)="(https://[^"]+)"(?: integrity="([^"]+)")?', asv_index())
    loads = [(url, integrity) for url, integrity in tags if "github.com" not in url]
    assert loads and {url.rsplit("/", 1)[-1] for url, _ in loads} == set(publish.CDN_FILES)
    identical = 0
    for url, integrity in loads:
        shipped = (publish.VENDOR / publish.CDN_FILES[url.rsplit("/", 1)[-1]]).read_bytes()
        algorithm, _, expected = integrity.partition("-")
        digest = base64.b64encode(hashlib.new(algorithm, shipped).digest()).decode()
        identical += digest == expected
    # jQuery, orderBars, md5 and Bootstrap's js and css are asv's files to the byte (vendor/LICENSES.md
    # says why flot's four and stupidtable are not: no minified flot on a registry, stupidtable 1.1.3)
    assert identical == 5


def test_make_offline_leaves_nothing_to_download(tmp_path):
    (tmp_path / "index.html").write_text(asv_index())
    assert publish.remote_loads(tmp_path)  # asv's page as shipped needs the internet
    used = publish.make_offline(tmp_path)
    assert publish.remote_loads(tmp_path) == [] and len(used) == len(publish.CDN_FILES)
    assert all((tmp_path / "vendor" / name).is_file() for name in used)
    assert (tmp_path / "fonts" / publish.FONT).is_file()


def test_an_unknown_cdn_script_is_an_error_not_a_page_that_needs_the_internet(tmp_path):
    (tmp_path / "index.html").write_text('<script src="https://cdn.example/new-lib.min.js"></script>')
    with pytest.raises(UserError, match="new-lib.min.js, which yolobench does not ship"):
        publish.make_offline(tmp_path)


# --- published and drawn in a browser ---


def chromium() -> str | None:
    for name in filter(None, (os.environ.get("YOLOBENCH_CHROMIUM"), "chromium", "chromium-browser", "google-chrome")):
        found = shutil.which(name)
        if found:
            return found
    return None


needs_browser = pytest.mark.skipif(chromium() is None, reason="no Chromium to open the history in (install it: "
                                                               "apt-get install chromium, or set YOLOBENCH_CHROMIUM)")

# Added to a copy of the published index.html: once flot has drawn the graph, write each line's label and
# number of points into the page, where --dump-dom shows it.
PROBE = """
(function poll(tries) {
  var plot = window.jQuery && jQuery('#main-graph').data('plot');
  var out = document.createElement('pre'); out.id = 'yb-probe';
  if (plot) {
    out.textContent = JSON.stringify(plot.getData().map(function (s) {
      return {label: String(s.label || ''), points: s.data.filter(function (p) { return p && p[1] !== null; }).length};
    }));
  } else if (tries > 0) { setTimeout(function () { poll(tries - 1); }, 200); return; }
  else { out.textContent = 'no graph; jQuery ' + typeof window.jQuery; }
  document.body.appendChild(out);
})(150);
"""


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def drawn_lines(html_dir: Path, benchmark: str, tmp_path: Path) -> dict[str, int]:
    """{line label: points} of ``benchmark``'s graph as Chromium draws the published page."""
    page = tmp_path / "probe"
    shutil.copytree(html_dir, page)
    (page / "yb_probe.js").write_text(PROBE)
    index = page / "index.html"
    index.write_text(index.read_text().replace("</body>", '<script src="yb_probe.js"></script></body>'))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(page)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        done = subprocess.run(
            [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-extensions",
             f"--user-data-dir={tmp_path / 'chromium'}", "--virtual-time-budget=30000", "--dump-dom",
             f"http://127.0.0.1:{server.server_address[1]}/#{benchmark}"],
            capture_output=True, text=True, timeout=180)
    finally:
        server.shutdown()
    found = re.search(r'<pre id="yb-probe">([^<]*)</pre>', done.stdout)
    assert found, f"Chromium drew no page (exit {done.returncode}): {done.stderr[-2000:]}"
    assert found.group(1).startswith("["), found.group(1)
    return {line["label"]: line["points"] for line in json.loads(found.group(1))}


def git_repo(folder: Path, commits: int) -> list[str]:
    folder.mkdir()
    git = ["git", "-C", str(folder), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run(["git", "init", "-q", "-b", "main", str(folder)], check=True)
    hashes = []
    for index in range(commits):
        (folder / "file.txt").write_text(f"{index}\n")
        env = dict(os.environ, GIT_COMMITTER_DATE=f"2026-12-0{index + 1}T09:00:00+00:00",
                   GIT_AUTHOR_DATE=f"2026-12-0{index + 1}T09:00:00+00:00")
        subprocess.run(git + ["add", "."], check=True, env=env)
        subprocess.run(git + ["commit", "-qm", f"c{index}"], check=True, env=env)
        hashes.append(subprocess.run(git + ["rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip())
    return hashes


def config_for(repo: Path, tmp_path: Path) -> Path:
    config = tmp_path / "asv.conf.json"
    config.write_text(json.dumps({"version": 1, "project": "t", "repo": str(repo), "dvcs": "git",
                                  "branches": ["HEAD"], "environment_type": "existing",
                                  "results_dir": "unused", "html_dir": "unused"}))
    return config


@needs_browser
def test_the_published_graph_has_a_point_per_run_and_a_line_per_model(tmp_path):
    commits = git_repo(tmp_path / "repo", 3)
    keys = ("a" * 16, "a" * 16, "b" * 16)  # the third commit changed the model: a new line, not a step
    for index, (commit, key) in enumerate(zip(commits, keys)):
        asvresults.record(run_file(tmp_path, f"r{index}", commit, key=key, p50=10.0 + index,
                                   time=f"2026-12-0{index + 1}T09:00:00+00:00",
                                   when=f"2026-12-0{index + 1}T10:00:00+00:00"), tmp_path / "asv")
    html = publish.publish(tmp_path / "asv", tmp_path / "html", config=config_for(tmp_path / "repo", tmp_path))
    assert publish.remote_loads(html) == []
    lines = drawn_lines(html, SERIES, tmp_path)
    assert sorted(lines.values()) == [1, 2], lines
    assert any("aaaaaaaa" in label and points == 2 for label, points in lines.items()), lines


@needs_browser
def test_the_committed_history_draws_every_recorded_run(tmp_path):
    """The repository's own results/asv, published from this checkout: for one cell of each profile, each
    machine's lines together have a point per recorded commit of that profile on that machine."""
    if not (REPO / ".git").exists():
        pytest.skip("not a git checkout: asv orders the history by the repository's commits")
    history = REPO / "results" / "asv"
    html = publish.publish(history, tmp_path / "html", config=REPO / "asv.conf.json")
    for benchmark in ("smoke.latency_ms.dense-onnxruntime-160", "full.latency_ms.pruned_quant-deepsparse-640"):
        recorded: dict[str, int] = {}
        for path in history.glob(f"*/*-{asvresults.ENV_NAME}.json"):
            recorded[path.parent.name] = recorded.get(path.parent.name, 0) + \
                (benchmark in json.loads(path.read_text())["results"])
        lines = drawn_lines(html, benchmark, tmp_path / benchmark)
        for machine, count in recorded.items():
            drawn = sum(points for label, points in lines.items() if f"machine-{machine};" in label)
            assert drawn == count, (benchmark, machine, lines)
        assert sum(recorded.values()) >= 3, recorded


def test_the_benchmark_run_records_whether_its_code_is_the_commits():
    import benchmarks.conftest as bench_conftest
    from yolobench import paths

    commit_info = {"id": "x", "dirty": True}
    bench_conftest.pytest_benchmark_update_commit_info(None, commit_info)
    changed = paths.uncommitted_code()
    assert changed is None or commit_info["code_dirty"] == bool(changed)
    assert changed is not None or "code_dirty" not in commit_info
