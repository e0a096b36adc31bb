"""A profile's cold build time on one CPU generation, as the sum of whole per-variant builds.

    python results/scripts/cold_build_sum.py RECORD.json [RECORD.json ...] [--profile full]

A cold build runs the variants one after another, so its time is the sum of their build times (plus
seconds of dataset generation). Builds often finish across sessions, so this adds up the build records
(`yolobench build --record`) of several runs, keeping only builds that started from nothing
(`state_before` "missing": a resumed build's seconds are a part) and only records of one CPU generation
(Zen 4 trains ~1.7x slower than Zen 5 here; mixing them would give neither), and only builds of the
artifact the current catalogue builds from the built-in data (its key, as `yolobench build --list`
prints it): an older recipe's build is another model. Where one variant was built whole more than once,
the latest build counts. Variants without a whole build are listed: the sum is then a lower bound.
"""

from __future__ import annotations

import argparse
import json
import sys

from yolobench import builder, catalogue


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("records", nargs="+", help="build records written by `yolobench build --record`")
    parser.add_argument("--profile", default="full")
    args = parser.parse_args(argv)

    whole: dict[str, tuple[str, float, str, str]] = {}  # variant -> (built_at, seconds, key, record)
    current = {name: builder.variant_key(name, args.profile, None) for name in catalogue.VARIANT_NAMES}
    generations = set()
    for path in args.records:
        with open(path) as f:
            record = json.load(f)
        if record.get("profile") != args.profile or record.get("data") or record.get("weights"):
            print(f"skipped {path}: not a {args.profile!r} build of the built-in data", file=sys.stderr)
            continue
        generations.add(record["machine"]["cpu_generation"])
        for name, entry in record["variants"].items():
            if entry.get("state_before") != "missing" or entry.get("build_seconds") is None:
                continue
            if entry["key"] != current.get(name):
                print(f"not counted: {name} {entry['key']} in {path} (the catalogue builds {current.get(name)})",
                      file=sys.stderr)
                continue
            found = (entry["built_at"], entry["build_seconds"], entry["key"], path)
            if name not in whole or found[0] > whole[name][0]:
                whole[name] = found
    if len(generations) != 1:
        print(f"error: the records come from {len(generations)} CPU generations ({sorted(generations)}); "
              "give the records of one", file=sys.stderr)
        return 2

    print(f"{args.profile} build on {generations.pop()}: whole builds only (state before: missing)\n")
    print("| variant | key | build s | record |")
    print("|---|---|---:|---|")
    total, missing = 0.0, []
    for name in catalogue.VARIANT_NAMES:
        if name not in whole:
            missing.append(name)
            print(f"| {name} | - | not built whole | - |")
            continue
        _, seconds, key, path = whole[name]
        total += seconds
        print(f"| {name} | {key} | {seconds:.0f} | {path} |")
    bound = "lower bound: " if missing else ""
    print(f"\nSum: {total:.0f} s = {total / 60:.1f} min ({bound}{len(whole)} of {len(catalogue.VARIANT_NAMES)} "
          f"variants{'; no whole build of ' + ', '.join(missing) if missing else ''})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
