"""/metrics in Prometheus' text format.

Most figures are read from the database when scraped: the ledger and the outbox
are the truth, so every process and restart agrees. Jobs by skill and state, how
long finished jobs ran, the queue's depth, what the outbox owes each platform
and the age of its oldest reply. Two come from this process: how long each stage
of handling a message took (`Bot.receive` keeps them since the start) and
whether each platform is connected.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator, Sequence

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from adapters.base import NetworkAdapter
from bot import timing
from bot.app import Bot
from bot.store import outbox

CONTENT_TYPE = CONTENT_TYPE_LATEST
DURATION_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0)


class Figures(Collector):
    def __init__(self, bot: Bot, platforms: Sequence[NetworkAdapter], connections: Callable[[], int]):
        self.bot = bot
        self.platforms = platforms
        self.connections = connections

    def collect(self) -> Iterator[Metric]:
        db = self.bot.db
        jobs = GaugeMetricFamily("podbot_jobs", "Jobs in the ledger by skill and state", labels=["skill", "state"])
        for row in db.execute("SELECT skill, state, COUNT(*) AS n FROM jobs GROUP BY skill, state"):
            jobs.add_metric([row["skill"], row["state"]], row["n"])
        yield jobs
        yield self._durations()
        yield self._routing()
        yield GaugeMetricFamily("podbot_queue_depth", "Messages waiting in the job queue (Huey)", value=self.bot.queue.pending())
        pending = GaugeMetricFamily("podbot_outbox_pending", "Replies not yet accepted by their platform", labels=["platform"])
        oldest = GaugeMetricFamily("podbot_outbox_oldest_seconds", "Age of the oldest reply still owed, per platform", labels=["platform"])
        now = time.time()
        for platform, owed, first in outbox.backlog(db):
            pending.add_metric([platform], owed)
            oldest.add_metric([platform], now - first)
        yield pending
        yield oldest
        connected = GaugeMetricFamily(
            "podbot_adapter_connected", "Whether a platform adapter is connected (1) or not (0)", labels=["platform"]
        )
        for adapter in self.platforms:
            connected.add_metric([adapter.platform], 1.0 if adapter.status().state == "connected" else 0.0)
        connected.add_metric(["web"], 1.0)
        yield connected
        yield GaugeMetricFamily("podbot_gateway_connections", "Authenticated WebSocket connections", value=self.connections())

    def _routing(self) -> HistogramMetricFamily:
        family = HistogramMetricFamily(
            "podbot_routing_seconds", "Handling a message, by stage: lock, decide, record, commit, enqueue", labels=["stage"]
        )
        for stage, histogram in sorted(self.bot.stage_times.snapshot().items()):
            cumulative = list(itertools.accumulate(histogram.counts))
            buckets = [(str(le), float(n)) for le, n in zip(timing.BUCKETS, cumulative, strict=False)]
            family.add_metric([stage], [*buckets, ("+Inf", float(histogram.observations))], histogram.total)
        return family

    def _durations(self) -> HistogramMetricFamily:
        # One pass over the finished jobs: a count per bucket, per skill.
        buckets = ", ".join(f"SUM(finished - started <= {le})" for le in DURATION_BUCKETS)
        rows = self.bot.db.execute(
            f"SELECT skill, COUNT(*) AS n, SUM(finished - started) AS total, {buckets} FROM jobs"
            " WHERE started IS NOT NULL AND finished IS NOT NULL GROUP BY skill"
        ).fetchall()
        family = HistogramMetricFamily("podbot_job_duration_seconds", "How long finished jobs ran", labels=["skill"])
        for row in rows:
            counts = [(str(le), float(row[3 + i])) for i, le in enumerate(DURATION_BUCKETS)]
            family.add_metric([row["skill"]], [*counts, ("+Inf", float(row["n"]))], row["total"])
        return family


def registry(bot: Bot, platforms: Sequence[NetworkAdapter], connections: Callable[[], int]) -> CollectorRegistry:
    found = CollectorRegistry(auto_describe=False)
    found.register(Figures(bot, platforms, connections))
    return found


def text(figures: CollectorRegistry) -> bytes:
    return generate_latest(figures)
