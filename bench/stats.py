"""Summaries of repeated measurements: median, p90, p99, min, max."""

from __future__ import annotations

import statistics
from dataclasses import dataclass

__all__ = ["Summary", "percentile", "summarize"]


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0..100), linear between closest ranks."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    pos = (len(ordered) - 1) * q / 100.0
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


@dataclass
class Summary:
    """Repeated samples of one quantity."""

    n: int
    median: float
    p90: float
    p99: float
    min: float
    max: float


def summarize(values: list[float]) -> Summary:
    """Summary of `values` (at least one)."""
    return Summary(
        n=len(values),
        median=statistics.median(values),
        p90=percentile(values, 90),
        p99=percentile(values, 99),
        min=min(values),
        max=max(values),
    )
