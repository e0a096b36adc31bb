"""``yolobench build``: build catalogue variants into the artifact store, or list their state."""

from __future__ import annotations

import json
import sys
import time

from yolobench.commands import common

HELP = "build the sparsification ladder's variants (cached in the artifact store); --list shows their state"


def add_arguments(parser) -> None:
    parser.add_argument("--variants", default=None,
                        help="comma-separated variant names (default: the whole catalogue)")
    common.add_profile(parser)
    parser.add_argument("--data", default=None,
                        help="your YOLO-format data.yaml (default: the built-in synthetic dataset)")
    common.add_weights(parser)
    parser.add_argument("--store", default=None, help="artifact store folder (default: ~/.cache/yolobench/store)")
    parser.add_argument("--list", action="store_true", help="show each variant's state instead of building")
    common.add_quiet(parser, "no progress lines (CI logs)")
    common.add_json(parser, "the table (each variant's state, key, mAP@0.5 and sparsity)")
    parser.add_argument("--record", default=None, metavar="PATH.json",
                        help="write a build record (machine, command, per-variant key, build time, mAP, "
                             "sparsity) for results/ history")


def run(args) -> int:
    from yolobench import builder, catalogue
    from yolobench.store import Store

    names = catalogue.parse_variants(args.variants)
    catalogue.get_profile(args.profile)
    if args.data is not None:
        from yolobench.data import check_dataset

        check_dataset(args.data)  # bad data fails here with a one-line message, before any training
    given = common.weights_args(args)
    skipped = {name: builder.skip_reason(name, **given) for name in names}
    names = [name for name in names if not skipped[name]]
    resolved: dict = {}  # each variant's recipe, data and key resolved once for the whole command
    for name in names:  # every bad input (a checkpoint, its classes) is reported before anything is built
        builder.resolve(name, args.profile, args.data, **given, _cache=resolved)
    for name, reason in skipped.items():
        if reason and not args.json:
            print(f"{name}: skipped: {reason}", file=sys.stderr)
    store = Store(args.store)
    if args.list:
        return _list(names, args, store, given, resolved)

    started = time.time()

    def say(message: str) -> None:
        if not args.quiet:
            print(f"{time.time() - started:7.0f}s  {message}", file=sys.stderr, flush=True)

    # The record names every variant this command may build: the ones asked for and the parents and
    # teachers they need (building thin_pq builds thin; its seconds belong to the same run's time).
    needed = {}
    for name in names:
        for record in builder.build_order(resolved[name]):
            needed.setdefault(record.name, (record.key, store.state(record.name, record.key)))
    built = []
    for name in names:
        before = needed[name][1]
        artifact = builder.build(name, args.profile, args.data, store=store, progress=say, **given, _cache=resolved)
        built.append((artifact, before))
    if args.json:
        print(json.dumps([{"variant": a.name, "state": "cached" if before == "built" else "built", "key": a.key,
                           "map50": a.meta["metrics"]["map50"], "sparsity": a.meta["sparsity"]["overall"],
                           "build_seconds": a.meta.get("build_seconds")} for a, before in built], indent=1))
        if args.record:
            _write_record(args, built, _dependencies(needed, names, store), time.time() - started)
        return 0
    print(f"{'variant':<18} {'state':<8} {'key':<16} {'mAP@0.5':>8} {'sparsity':>9} {'build s':>8}")
    for artifact, before in built:
        meta = artifact.meta
        print(f"{artifact.name:<18} {'cached' if before == 'built' else 'built':<8} {artifact.key:<16} "
              f"{builder.format_map(meta['metrics'].get('map50')):>8} {meta['sparsity']['overall']:>9.3f} "
              f"{meta.get('build_seconds', 0):>8.0f}")
    elapsed = time.time() - started
    print(f"{len(built)} variant(s) ready in {elapsed:.0f} s; store: {store.root}")
    if args.record:
        _write_record(args, built, _dependencies(needed, names, store), elapsed)
    return 0


def _dependencies(needed: dict, names: list, store) -> list:
    """(artifact, state before) of each parent or teacher that was built for, not asked by, the command."""
    return [(artifact, before) for name, (key, before) in needed.items() if name not in names
            for artifact in [store.get(name, key, deep=False)] if artifact is not None]


def _write_record(args, built, dependencies, elapsed: float) -> None:
    """A build record for results/: every number comes from the artifacts' meta.json. ``dependencies``:
    the parents and teachers of the variants asked for (``requested: false``), so that the record
    accounts for every build in ``this_run_seconds``."""
    import json
    import os
    from pathlib import Path

    from yolobench.fsutil import atomic_write_text
    from yolobench.recipes import EPOCH_SCALE_ENV, RECIPES_ENV
    from yolobench.timer import machine_info

    variants = {}
    for artifact, before, requested in [*((a, b, True) for a, b in built), *((a, b, False) for a, b in dependencies)]:
        meta = artifact.meta
        variants[artifact.name] = {
            "key": artifact.key,
            "requested": requested,
            "state_before": before,
            "build_seconds": meta.get("build_seconds"),
            "built_at": meta.get("built_at"),
            "parent": (meta.get("parent") or {}).get("variant"),
            "metrics": meta.get("metrics"),
            "metrics_by_imgsz": meta.get("metrics_by_imgsz"),
            "sparsity": {k: v for k, v in meta.get("sparsity", {}).items() if k != "per_layer"},
            "parameters": meta.get("parameters"),
            "file_sizes": meta.get("file_sizes"),
            "deepsparse_fraction_of_supported_ops": meta.get("deepsparse_fraction_of_supported_ops"),
            "versions": meta.get("versions"),
        }
    record = {
        # the settings that change what is built are part of the command that reproduces it
        "command": " ".join([*(f"{k}={os.environ[k]}" for k in (RECIPES_ENV, EPOCH_SCALE_ENV) if os.environ.get(k)),
                             "yolobench", *sys.argv[1:]]),
        "machine": machine_info(),
        "profile": args.profile,
        "data": args.data,
        "weights": {k: str(v) for k, v in common.weights_args(args).items() if v is not None} or None,
        "this_run_seconds": round(elapsed, 1),
        "variants": variants,
    }
    path = atomic_write_text(Path(args.record), json.dumps(record, indent=2, sort_keys=False) + "\n")
    print(f"build record: {path}")


def _list(names, args, store, given: dict, resolved: dict) -> int:
    from yolobench import builder

    rows = []
    for name in names:
        key = builder.variant_key(name, args.profile, args.data, **given, _cache=resolved)
        state = store.state(name, key)
        artifact = store.get(name, key, deep=False) if state == "built" else None
        meta = artifact.meta if artifact is not None else None
        rows.append({"variant": name, "state": state, "key": key,
                     "map50": meta["metrics"]["map50"] if meta else None,
                     "map50_by_imgsz": {k: v.get("map50") for k, v in (meta.get("metrics_by_imgsz") or {}).items()}
                     if meta else None,
                     "sparsity": meta["sparsity"]["overall"] if meta else None})
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    print(f"{'variant':<18} {'state':<8} {'key':<16} {'mAP@0.5':>8} {'sparsity':>9}")
    for row in rows:
        name, state, key = row["variant"], row["state"], row["key"]
        artifact = store.get(name, key, deep=False) if state == "built" else None
        if artifact is not None:
            meta = artifact.meta
            print(f"{name:<18} {state:<8} {key:<16} {builder.format_map(meta['metrics'].get('map50')):>8} "
                  f"{meta['sparsity']['overall']:>9.3f}")
        else:
            print(f"{name:<18} {state:<8} {key:<16} {'-':>8} {'-':>9}")
    return 0
