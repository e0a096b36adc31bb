"""The full ladder's build record as markdown: per-variant build time, epochs, mAP at each export size,
sparsity; the ladder's total; sparse transfer against the dense + pruned_quant chain.

    python results/scripts/full_build_summary.py            # the `full` variants in the default store

Every number is read from the artifacts' meta.json (the store is found by the keys the current code
computes, as `yolobench build --list --profile full` prints them); epochs from the catalogue and recipes.
"""

import sys

from yolobench import builder, catalogue
from yolobench.store import Store

PROFILE = "full"


def epochs(spec) -> int | None:
    args = builder.train_args(spec, PROFILE)
    if "epochs" in args:
        return args["epochs"]
    text, variables = builder.load_recipe(spec, PROFILE)
    if text is None:
        return None
    from yolobench.recipes import recipe_variable

    return recipe_variable(text, variables, "num_epochs")


def main() -> int:
    store = Store()
    metas, rows = {}, []
    for name in catalogue.VARIANT_NAMES:
        key = builder.variant_key(name, PROFILE, None)
        artifact = store.get(name, key, deep=False)
        if artifact is None:
            rows.append(f"| {name} | {key} | not built | | | | | |")
            continue
        meta = metas[name] = artifact.meta
        spec = catalogue.get_variant(name)
        by = meta.get("metrics_by_imgsz") or {}
        n = epochs(spec) if spec.kind == catalogue.TRAIN else None
        rows.append(f"| {name} | {key} | {meta['build_seconds']:.0f} | {n if n is not None else 'calibration'} | "
                    + " | ".join(f"{by[s]['map50']:.3f} / {by[s]['map50_95']:.3f}" if s in by else "-" for s in ("640", "416"))
                    + f" | {meta['sparsity']['overall']:.3f} |")
    print("| variant | key | build s | epochs | mAP@0.5 / 0.5:0.95 at 640 | at 416 | sparsity |")
    print("|---|---|---:|---|---|---|---:|")
    print("\n".join(rows))
    total = sum(m["build_seconds"] for m in metas.values())
    print(f"\nSum of build times: {total:.0f} s = {total / 60:.1f} min ({len(metas)} of {len(catalogue.VARIANT_NAMES)} variants)")
    if {"transfer", "dense", "pruned_quant"} <= set(metas):
        t, d, pq = metas["transfer"], metas["dense"], metas["pruned_quant"]
        for size in ("640", "416"):
            tm, dm = t["metrics_by_imgsz"][size]["map50"], d["metrics_by_imgsz"][size]["map50"]
            pm = pq["metrics_by_imgsz"][size]["map50"]
            print(f"- at {size} px: transfer mAP@0.5 {tm:.3f} = {tm / dm:.1%} of dense ({dm:.3f}); "
                  f"pruned_quant {pm:.3f} = {pm / dm:.1%}")
        te = epochs(catalogue.get_variant("transfer"))
        chain_e = epochs(catalogue.get_variant("dense")) + epochs(catalogue.get_variant("pruned_quant"))
        chain_s = d["build_seconds"] + pq["build_seconds"]
        print(f"- training cost: transfer {te} epochs, {t['build_seconds']:.0f} s; dense + pruned_quant "
              f"{chain_e} epochs, {chain_s:.0f} s: {te / chain_e:.0%} of the epochs, "
              f"{t['build_seconds'] / chain_s:.0%} of the seconds (on the target's 640 images; source_pq, "
              f"built once per machine, took {metas.get('source_pq', {}).get('build_seconds', float('nan')):.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
