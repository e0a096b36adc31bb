#!/usr/bin/env bash
# A slice of the suite with pytest: parity of two variants, then the latency of those two variants on
# two engines, at the smoke profile (CI's 160 px). Run it from a checkout, in the project's environment:
#
#   source ~/.cache/yolobench/tox/shared/bin/activate
#   examples/pytest-slice.sh                  # builds the two variants if the store lacks them
#   examples/pytest-slice.sh --collect-only   # only lists the tests it would run
#
# Arguments go to both pytest commands. Every option is yolobench's `--yb-` form, which never clashes
# with another pytest plugin (fixtures/options.py); `pytest --help` lists them under "yolobench".
# Your data instead of the built-in set: add --yb-data path/to/data.yaml (examples/data.yaml shows the format).
set -euo pipefail
cd "$(dirname "$0")/.."

PROFILE="${YOLOBENCH_PROFILE:-smoke}"  # the variable tox reads too; full is the blog's sizes (slow)
VARIANTS=dense,pruned_quant             # `yolobench build --list` shows the catalogue
ENGINES=onnxruntime,openvino            # `yolobench bench --help` lists the engines

# Parity first: do the engines detect the same objects? (every engine that runs each variant's forms;
# a variant is built once and cached in the store, so the benchmarks below reuse it)
pytest tests/test_parity_variants.py --yb-profile="$PROFILE" --yb-variants="$VARIANTS" "$@"

# Then the latency matrix of the slice: one test per variant, engine, size and session; the run file
# is pytest-benchmark's JSON with each cell's FPS, percentiles and speedup in extra_info.
pytest benchmarks --benchmark-only --yb-profile="$PROFILE" --yb-variants="$VARIANTS" --yb-engines="$ENGINES" \
    --benchmark-json "results/runs/slice-$PROFILE.json" "$@"
