"""The one percentile the benchmark scripts print (imported as a sibling module: run them as `python bench/NAME.py`)."""

from __future__ import annotations

import statistics


def pct(values: list[float], p: float) -> float:
    """The p-th percentile (inclusive method); a single value is every percentile of itself."""
    if len(values) < 2:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[round(p) - 1]
