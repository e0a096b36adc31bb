"""yolobench's benchmarks: the pytest-benchmark matrix (``test_*.py``) and the asv suite (``bench_*.py``).

A package so that asv (which imports every module here) and pytest import the same module names.
"""
