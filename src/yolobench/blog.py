"""The numbers of the blog this benchmark retraces, as one constant table.

Source: Neural Magic, "Supercharging YOLOv5: 180+ FPS on a CPU using only 4 cores": YOLOv5 at 416 px on
an Intel Core i9-11900 with 8 cores, the FPS of each rung of the sparsification ladder as the blog
states them (PyTorch for the dense baseline, DeepSparse for every rung). A rung's speedup over PyTorch
is its FPS / PyTorch's (rounded for display only). The report puts them beside a run's own speedups at
the same size (``yolobench.report``); nothing here is measured.
"""

from __future__ import annotations

from dataclasses import dataclass

TITLE = "Supercharging YOLOv5: 180+ FPS on a CPU using only 4 cores"
PUBLISHER = "Neural Magic"
MACHINE = "Intel Core i9-11900, 8 cores"
IMGSZ = 416  # px: the size every number below was measured at
TORCH_ENGINE = "torch"
TORCH_FPS = 21.9  # dense YOLOv5s on PyTorch: the baseline of every speedup


@dataclass(frozen=True)
class Rung:
    """One rung of the blog's ladder: which catalogue variant it is, the blog's name, engine and FPS."""

    variant: str
    label: str
    engine: str
    fps: float

    @property
    def speedup_vs_torch(self) -> float:
        return self.fps / TORCH_FPS


BASELINE = Rung("dense", "PyTorch", TORCH_ENGINE, TORCH_FPS)
RUNGS = (
    Rung("dense", "DeepSparse dense", "deepsparse", 29.5),
    Rung("oneshot", "one-shot", "deepsparse", 32.0),
    Rung("pruned", "pruned", "deepsparse", 35.5),
    Rung("pruned_quant", "pruned+quantized", "deepsparse", 58.1),
    Rung("transfer", "transfer-learned", "deepsparse", 51.6),
    Rung("v5n_hardswish_pq", "YOLOv5n pruned+quantized Hardswish", "deepsparse", 93.3),
)


def source_line() -> str:
    return f'{PUBLISHER}, "{TITLE}" ({MACHINE}, {IMGSZ} px)'
