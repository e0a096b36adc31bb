"""One training step of yolov5su at 320 px, batch 16, on this CPU: float32 vs bfloat16 autocast.

Asks whether the trainer's bf16 autocast (used for float epochs where the CPU has bf16) pays on this CPU
generation. Synthetic input and a plain sum of the head outputs as the loss: the step's compute (forward and
backward through the network), not the detection loss. Median of N steps after 2 warm-up steps, each mode.
    python amp_step.py [N]
"""
import statistics
import sys
import time

import torch
from ultralytics.nn.tasks import DetectionModel

N = int(sys.argv[1]) if len(sys.argv) > 1 else 6
torch.manual_seed(0)
model = DetectionModel("yolov5su.yaml", nc=3, verbose=False).train()
x = torch.rand(16, 3, 320, 320)
opt = torch.optim.SGD(model.parameters(), lr=1e-4)


def tensors(out):
    """Every tensor in the head's output (a tensor, a list, or ultralytics' dict in training mode)."""
    if isinstance(out, torch.Tensor):
        return [out]
    values = out.values() if isinstance(out, dict) else out
    return [t for v in values for t in tensors(v)]


def step(bf16: bool) -> float:
    t = time.perf_counter()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        out = model(x)
        loss = sum(t.float().sum() for t in tensors(out))
    opt.zero_grad()
    loss.backward()
    opt.step()
    return time.perf_counter() - t


print(f"torch {torch.__version__}, threads {torch.get_num_threads()}")
for bf16 in (False, True, False, True):
    times = [step(bf16) for _ in range(2)] and [step(bf16) for _ in range(N)]
    print(f"{'bf16 autocast' if bf16 else 'float32      '}: median {statistics.median(times):.3f} s per step "
          f"(min {min(times):.3f}, max {max(times):.3f}, {N} steps)")
