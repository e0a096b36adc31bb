"""yolobench: YOLOv5 sparsification ladder, four CPU engines, parity, benchmarks and a CI gate."""

from yolobench import offline as _offline

# Before anything else can import ultralytics / sparseml: keep every library offline.
_offline.apply()

__version__ = "0.1.0"
