"""The durable queue: Huey on SQLite, or on PostgreSQL with the rest of the shared state. A task carries only a job
id; the ledger holds the rest.

Producing needs no worker: the task is a thin trampoline, and the function
that runs a job is handed over when a consumer starts (as Huey's own
consumer finds tasks by name in its registry).
"""

from __future__ import annotations

import signal
from collections.abc import Callable

from huey import PostgresHuey, SqliteHuey
from huey.consumer import Consumer

from bot.config import Config
from bot.store.database import shown_url

# An idle Huey worker polls SQLite with exponential backoff; a low ceiling keeps
# the wait for a new job short without a busy loop. On PostgreSQL a worker instead
# waits on LISTEN for up to LISTEN_WAIT seconds (an enqueue NOTIFYs it): idle, it sleeps.
POLL_INITIAL = 0.005
POLL_MAX = 0.01
LISTEN_WAIT = 1.0

Execute = Callable[[int], None]


class JobQueue:
    def __init__(self, cfg: Config):
        if cfg.database and cfg.database.startswith(("postgresql://", "postgres://")):
            self.huey = PostgresHuey(name="podbot", dsn=cfg.database, results=False, utc=True, read_timeout=LISTEN_WAIT)
            self.where = shown_url(cfg.database)
        else:
            cfg.data_dir.mkdir(parents=True, exist_ok=True)
            self.huey = SqliteHuey(name="podbot", filename=str(cfg.queue_path), results=False, utc=True)
            self.where = str(cfg.queue_path)
        self._execute: Execute | None = None
        self._task = self.huey.task(name="run_job")(self._run)
        self.workers = cfg.workers

    def _run(self, job_id: int) -> None:
        if self._execute is None:
            raise RuntimeError("a consumer runs tasks only after consumer(execute) gave it a worker")
        self._execute(job_id)

    def enqueue(self, job_id: int, delay: float = 0.0) -> None:
        if delay > 0:
            self._task.schedule(args=(job_id,), delay=delay)
        else:
            self._task(job_id)

    def close(self) -> None:
        self.huey.storage.close()

    def pending(self) -> int:
        return self.huey.pending_count()

    def job_ids(self) -> set[int]:
        """Job ids Huey still holds, queued or scheduled for later."""
        return {task.args[0] for task in [*self.huey.pending(), *self.huey.scheduled()] if task.args}

    def consumer(self, execute: Execute, workers: int | None = None) -> Consumer:
        """A consumer whose worker threads run each job id with `execute`."""
        self._execute = execute
        return self.huey.create_consumer(
            workers=workers or self.workers,
            worker_type="thread",
            periodic=False,
            initial_delay=POLL_INITIAL,
            backoff=1.5,
            max_delay=POLL_MAX,
        )

    def start_in_process(self, execute: Execute, workers: int | None = None) -> Consumer:
        """Start consumer threads inside this process, leaving its signal handling alone."""
        consumer = self.consumer(execute, workers)
        saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
        consumer.start()
        for sig, handler in saved.items():
            signal.signal(sig, handler)
        return consumer
