"""How long each stage of handling a message takes, kept as cumulative histograms for /metrics.

`Bot.receive` times its stages (waiting for the database's write lock, deciding
— routing, understanding, authorization —, recording the decision, committing,
queueing the jobs); the gateway exports them as `podbot_routing_seconds`.
"""

from __future__ import annotations

import threading
from bisect import bisect_left
from dataclasses import dataclass

BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


@dataclass(frozen=True)
class Histogram:
    counts: tuple[int, ...]  # per bucket of BUCKETS (not cumulative), then one for everything above the last
    total: float  # the sum of the observations, in seconds

    @property
    def observations(self) -> int:
        return sum(self.counts)


class StageTimes:
    """Thread-safe: every thread that handles messages observes into it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[str, list[int]] = {}
        self._totals: dict[str, float] = {}

    def observe(self, stage: str, seconds: float) -> None:
        with self._lock:
            counts = self._counts.setdefault(stage, [0] * (len(BUCKETS) + 1))
            counts[bisect_left(BUCKETS, seconds)] += 1
            self._totals[stage] = self._totals.get(stage, 0.0) + seconds

    def snapshot(self) -> dict[str, Histogram]:
        with self._lock:
            return {stage: Histogram(tuple(counts), self._totals[stage]) for stage, counts in self._counts.items()}
