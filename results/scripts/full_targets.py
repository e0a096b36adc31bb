"""The full profile's targets, computed from one run file: each sparse rung (pruned_quant, thin_pq, thin and
their yolov5n counterparts) against the best dense INT8 on OpenVINO and dense PyTorch, with its share of the
dense model's mAP@0.5, and the fastest rung that keeps the accuracy goal.

    python results/scripts/full_targets.py results/runs/full-2026-12-02/run-1-zen5.json.gz
    python results/scripts/full_targets.py RUN.json --table     # the README's markdown table

Latency ratios use the run's own rule: fastest session median over fastest session median. Accuracy
ratios use the builder's mAP@0.5 at the cell's size (``map50`` in the run file).
"""

import sys

from yolobench.runfile import load_run


def fastest_ms(cell):
    return min(cell.latency.session_p50s_ms() or (cell.latency.p50_ms,))


def main(path):
    run = load_run(path)
    cells = run.cells
    print(f"run: {path} (commit {run.commit_id[:12]}, {run.cpu_generation})")

    def best(variant, imgsz):
        found = [c for c in cells.values() if c.variant == variant and c.imgsz == imgsz]
        return min(found, key=fastest_ms) if found else None

    def line(label, num, den, goal):
        if num is None or den is None:
            print(f"{label}: not in this run")
            return
        ratio = fastest_ms(den) / fastest_ms(num)
        verdict = "met" if ratio >= goal else "not met"
        print(f"{label}: {num.name} {fastest_ms(num):.2f} ms vs {den.name} {fastest_ms(den):.2f} ms = "
              f"{ratio:.2f}x (goal >= {goal}x: {verdict})")

    def fastest_of(*names):
        """The strongest dense INT8 competitor on OpenVINO: SparseML's one-shot QDQ or NNCF's own INT8."""
        found = [cells[n] for n in names if n in cells]
        return min(found, key=fastest_ms) if found else None

    def share(variant, reference, imgsz):
        a, b = best(variant, imgsz), best(reference, imgsz)
        if a is None or b is None or a.map50 is None or b.map50 is None:
            return None
        return a.map50 / b.map50

    # Each sparse rung against the two dense competitors; then the fastest rung that keeps the accuracy.
    families = (
        ("yolov5s", 640, ("pruned_quant", "thin_pq", "thin"), "dense", 0.97,
         ("oneshot-openvino-640", "dense-openvino_nncf-640")),
        ("yolov5n", 416, ("v5n_hardswish_pq", "v5n_thin_pq", "v5n_thin"), "v5n_hardswish", 0.95,
         ("v5n_hardswish_oneshot-openvino-416", "v5n_hardswish-openvino_nncf-416")),
    )
    for family, imgsz, rungs, reference, keep, int8_names in families:
        int8 = fastest_of(*int8_names)
        print(f"\n{family} at {imgsz} px: best dense INT8 on OpenVINO = "
              + (f"{int8.name} {fastest_ms(int8):.2f} ms" if int8 else "not in this run"))
        winners = []
        for rung in rungs:
            cell = best(rung, imgsz)
            if cell is None:
                print(f"{rung}@{imgsz}: not in this run")
                continue
            line(f"{rung}@{imgsz} fastest vs dense INT8 on OpenVINO (faster of oneshot, NNCF)", cell, int8, 1.5)
            if family == "yolov5s":
                line(f"{rung}@{imgsz} fastest vs dense on PyTorch", cell, cells.get(f"dense-torch-{imgsz}"), 5.0)
            kept = share(rung, reference, imgsz)
            if kept is not None:
                print(f"{rung} mAP@0.5 at {imgsz}: {cell.map50:.3f} = {kept:.1%} of {reference}'s "
                      f"(goal >= {keep:.0%}: {'met' if kept >= keep else 'not met'})")
                if kept >= keep and int8 is not None:
                    winners.append((fastest_ms(int8) / fastest_ms(cell), rung, cell))
        if winners:
            ratio, rung, cell = max(winners)
            print(f"best {family} sparse rung that keeps >= {keep:.0%} of {reference}'s mAP@0.5: {rung} "
                  f"({cell.engine}), {ratio:.2f}x the best dense INT8")
        else:
            print(f"best {family} sparse rung that keeps >= {keep:.0%} of {reference}'s mAP@0.5: none in this run")
    v5 = best("v5n_hardswish_pq", 416)
    if v5 is not None:
        print(f"v5n_hardswish_pq@416 fastest: {v5.name} {1000.0 / fastest_ms(v5):.1f} FPS "
              f"(fastest session median), {v5.latency.fps:.1f} FPS (1000 / mean of all sessions)")
    for variant, reference, goal in (("transfer", "dense", 0.97),):
        for imgsz in sorted({c.imgsz for c in cells.values()}, reverse=True):
            kept = share(variant, reference, imgsz)
            if kept is None:
                print(f"{variant} mAP@0.5 at {imgsz}: not in this run")
                continue
            print(f"{variant} mAP@0.5 at {imgsz}: {best(variant, imgsz).map50:.3f} = {kept:.1%} of {reference}'s "
                  f"(goal >= {goal:.0%}: {'met' if kept >= goal else 'not met'})")


ENGINES = ("torch", "onnxruntime", "deepsparse", "openvino", "openvino_nncf")


def table(path):
    """Markdown: per size, each variant's fastest session median (ms) on each engine, and its mAP@0.5."""
    run = load_run(path)
    variants = list(dict.fromkeys(c.variant for c in run.cells.values()))
    for imgsz in sorted({c.imgsz for c in run.cells.values()}, reverse=True):
        print(f"\n**{imgsz} px** (ms, fastest of 3 session medians; `-`: not timed)\n")
        print("| variant | PyTorch | ONNX Runtime | DeepSparse | OpenVINO | OpenVINO + NNCF INT8 | best vs dense PyTorch "
              "| mAP@0.5 | sparsity |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        dense_torch = run.cells.get(f"dense-torch-{imgsz}")
        for variant in variants:
            cells = {e: run.cells.get(f"{variant}-{e}-{imgsz}") for e in ENGINES}
            timed = [c for c in cells.values() if c is not None]
            if not timed:
                continue
            best = min(timed, key=fastest_ms)
            ratio = f"{fastest_ms(dense_torch) / fastest_ms(best):.2f}x ({best.engine})" if dense_torch else "-"
            ms = " | ".join(f"{fastest_ms(c):.1f}" if c else "-" for c in cells.values())
            sparsity = f"{best.sparsity:.0%}" if best.sparsity is not None else "-"
            print(f"| {variant} | {ms} | {ratio} | {best.map50:.3f} | {sparsity} |")


if __name__ == "__main__":
    table(sys.argv[1]) if "--table" in sys.argv[2:] else main(sys.argv[1])
