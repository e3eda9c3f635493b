"""Berth's benchmark harness: `python -m bench` (or `make bench`) writes docs/BENCHMARKS.md.

Every figure is measured against a baseline taken in the same run on the same machine;
the report quotes medians and ratios.
"""
