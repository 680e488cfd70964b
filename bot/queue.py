"""The durable queue: Huey on SQLite. A task carries only a job id; the ledger holds the rest."""

from __future__ import annotations

import signal
from collections.abc import Callable

from huey import SqliteHuey
from huey.consumer import Consumer

from bot.config import Config

# An idle Huey worker polls SQLite with exponential backoff; a low ceiling keeps
# the wait for a new job short without a busy loop.
POLL_INITIAL = 0.005
POLL_MAX = 0.01


class JobQueue:
    def __init__(self, cfg: Config, execute: Callable[[int], None]):
        cfg.data_dir.mkdir(parents=True, exist_ok=True)
        self.huey = SqliteHuey(name="podbot", filename=str(cfg.queue_path), results=False, utc=True)
        self._task = self.huey.task(name="run_job")(execute)
        self.workers = cfg.workers

    def enqueue(self, job_id: int, delay: float = 0.0) -> None:
        if delay > 0:
            self._task.schedule(args=(job_id,), delay=delay)
        else:
            self._task(job_id)

    def pending(self) -> int:
        return self.huey.pending_count()

    def job_ids(self) -> set[int]:
        """Job ids Huey still holds, queued or scheduled for later."""
        return {task.args[0] for task in [*self.huey.pending(), *self.huey.scheduled()] if task.args}

    def consumer(self, workers: int | None = None) -> Consumer:
        return self.huey.create_consumer(
            workers=workers or self.workers,
            worker_type="thread",
            periodic=False,
            initial_delay=POLL_INITIAL,
            backoff=1.5,
            max_delay=POLL_MAX,
        )

    def start_in_process(self, workers: int | None = None) -> Consumer:
        """Start consumer threads inside this process, leaving its signal handling alone."""
        consumer = self.consumer(workers)
        saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
        consumer.start()
        for sig, handler in saved.items():
            signal.signal(sig, handler)
        return consumer
