"""asv suite: the history of every variant x engine cell, one result per commit and machine.

asv treats every tracked number as lower-is-better, so both tracks point that way:

- ``track_latency_ms``: batch-1 latency in milliseconds, by the protocol of ``yolobench.timer``: the
  fastest of ``timer.SESSIONS`` independently loaded sessions' medians, the statistic the gate compares
  (asv runs one benchmark at a time, so here a cell's sessions run back to back, not in passes). Not
  FPS: asv would call a speed-up a regression. The first two history points (commits 1c5c9de2 and
  c5387987) timed one session: between them single cells moved 0.64-1.37x and asv's regressions page
  listed 19 tracks, as the gate did before it read fastest sessions.
- ``track_map50_loss``: ``1 - mAP@0.5`` of that engine on the variant's validation split (0 is perfect,
  rising means less accurate), computed by ``yolobench.evaluate`` on the engine's own outputs.

Everything is shared with the pytest-benchmark matrix: variants are built (or found in the artifact
store) by ``yolobench.builder.build``, cells are loaded and timed by ``yolobench.bench``. An engine that
cannot run a cell here is skipped (``NotImplementedError`` in ``setup``), and so is a cell its engine
does not time (``bench.untimed_reason``: PyTorch's fake-quantized INT8).

Environment: ``YOLOBENCH_PROFILE`` (default ``smoke``), ``YOLOBENCH_THREADS`` (default every usable
core), ``YOLOBENCH_DATA`` (a YOLO ``data.yaml``; default the built-in dataset), ``YOLOBENCH_VARIANTS``
and ``YOLOBENCH_ENGINES`` (comma-separated slices of the matrix; default all), ``YOLOBENCH_IMGSZ`` (one
export size of the profile; default its first: asv keeps one history per benchmark and parameter set,
so a size is a separate asv run rather than a third parameter that would orphan the history), plus
``YOLOBENCH_HOME``
/ ``YOLOBENCH_STORE`` for the store. Run it (repository root, in the project's environment):

    asv machine --yes
    asv run --environment existing:same --set-commit-hash $(git rev-parse HEAD)
    asv publish && asv preview

(With an existing environment asv saves results only when given ``--set-commit-hash``.)
"""

from __future__ import annotations

import os

from yolobench import bench, catalogue, timer
from yolobench.engines import EngineUnsupported

PROFILE_ENV = "YOLOBENCH_PROFILE"
THREADS_ENV = "YOLOBENCH_THREADS"
DATA_ENV = "YOLOBENCH_DATA"
VARIANTS_ENV = "YOLOBENCH_VARIANTS"
ENGINES_ENV = "YOLOBENCH_ENGINES"
IMGSZ_ENV = "YOLOBENCH_IMGSZ"
DEFAULT_PROFILE = "smoke"


def profile() -> str:
    return catalogue.get_profile(os.environ.get(PROFILE_ENV) or DEFAULT_PROFILE).name


def imgsz() -> int:
    """The export size the cells run at: ``YOLOBENCH_IMGSZ`` or the profile's first."""
    sizes = catalogue.get_profile(profile()).export_imgsz
    value = os.environ.get(IMGSZ_ENV)
    if not value:
        return sizes[0]
    if not value.isdigit() or int(value) not in sizes:
        from yolobench.errors import UserError

        raise UserError(f"{IMGSZ_ENV}={value!r}: profile {profile()!r} exports at "
                        f"{', '.join(map(str, sizes))} px only")
    return int(value)


def threads() -> int:
    value = os.environ.get(THREADS_ENV)
    return int(value) if value else bench.default_threads()


class Cell:
    """One variant on one engine."""

    params = (catalogue.parse_variants(os.environ.get(VARIANTS_ENV)),
              bench.parse_engines(os.environ.get(ENGINES_ENV)))
    param_names = ("variant", "engine")
    # setup_cache may build every variant cold (the smoke profile takes ~25 min on 2 cores, full far
    # more); a cell is bounded by the protocol's MAX_SECONDS plus one compile. Run `yolobench build`
    # first and setup_cache only reads the store.
    timeout = 6 * 3600

    def setup_cache(self):
        """Every variant of the profile, built once per `asv run` (store-cached across runs)."""
        from yolobench import builder

        data = os.environ.get(DATA_ENV) or None
        return {name: builder.build(name, profile(), data) for name in self.params[0]}

    def setup(self, artifacts, variant, engine):
        untimed = bench.untimed_reason(variant, engine)
        if untimed:
            raise NotImplementedError(untimed)
        self.artifact = artifacts[variant]
        try:
            self.session, self.images, self.context = bench.open_cell(self.artifact, engine, threads=threads(),
                                                                      imgsz=imgsz())
        except EngineUnsupported as err:
            raise NotImplementedError(f"{engine} cannot run {variant}: {err.reason}") from None

    def track_latency_ms(self, artifacts, variant, engine):
        self.session = None  # setup's session only proved that the cell runs: each timed one is loaded anew
        medians = [bench.measure_session(self.artifact, engine, index=index, sessions=timer.SESSIONS,
                                         threads=threads(), imgsz=imgsz())[0].p50_ms
                   for index in range(1, timer.SESSIONS + 1)]
        return min(medians)

    track_latency_ms.unit = "ms"

    def track_map50_loss(self, artifacts, variant, engine):
        return 1.0 - bench.session_map(self.session, self.artifact, self.context.imgsz)["map50"]

    track_map50_loss.unit = "1 - mAP@0.5"
