"""Wiring: config + manifests + database + queue + adapters, and the background loops of a podbot process.

Loops (threads): the outbox sender (every process with adapters); the
supervisor (lease heartbeats and recovery, in every process that runs jobs);
the scheduler and the manifest watcher (in the bot process).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from bot import containers, images, ledger, outbox, pipeline, recovery, scheduler, worker
from bot.config import Config
from bot.context import Context
from bot.db import Database
from bot.manifest import Manifest, load_all, manifest_files
from bot.models import Message, Reply
from bot.queue import JobQueue
from bot.schema import Problem
from bot.understand import Understanding

log = logging.getLogger(__name__)

OUTBOX_POLL = 0.05
HEARTBEAT = 2.0  # seconds between lease renewals and recovery passes (the lease lasts worker.LEASE)
WATCH_EVERY = 2.0


class Adapter(Protocol):
    platform: str

    def send(self, reply: Reply) -> None:
        """Deliver one reply; raise (or raise outbox.RetryLater) if the platform did not accept it."""


class ManifestError(Exception):
    def __init__(self, problems: list[Problem]):
        super().__init__("\n".join(map(str, problems)))
        self.problems = problems


def load_skills(cfg: Config) -> dict[str, Manifest]:
    skills, problems = load_all(list(cfg.manifest_dirs), set(cfg.mounts))
    if problems:
        raise ManifestError(problems)
    return skills


class Bot:
    def __init__(self, cfg: Config):
        self.cfg = cfg
        self.db = Database(cfg.db_path)
        self._wake = threading.Event()
        self.ctx = Context(cfg, self.db, load_skills(cfg), enqueue=lambda job_id, delay=0.0: None, notify=self._wake.set)
        self.queue = JobQueue(cfg, lambda job_id: worker.execute(self.ctx, job_id))
        self.ctx.enqueue = self.queue.enqueue
        self.ctx.reload = self.reload
        # Loads its models on first use, once per process (they are shared by every Bot in it).
        self.ctx.understanding = Understanding(cfg.model, lambda: self.ctx.skills)
        self.adapters: dict[str, Adapter] = {}
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._consumer = None
        self._manifest_stamp = self._stamp()

    def check_host(self) -> containers.Engine:
        """Fail early, with how to fix it, when Podman or the base image is not there."""
        engine = containers.connect(self.cfg)
        images.ensure_base(self.cfg, lambda line: log.info("image: %s", line))
        return engine

    def add_adapter(self, adapter: Adapter) -> None:
        self.adapters[adapter.platform] = adapter

    def _loop(self, name: str, every: float | Callable[[], float], step: Callable[[], object]) -> None:
        def run() -> None:
            while not self._stop.is_set():
                try:
                    step()
                except Exception:
                    log.exception("%s loop failed; going on", name)
                self._stop.wait(every() if callable(every) else every)

        thread = threading.Thread(target=run, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def start(self, workers: int | None = None, schedules: bool = True, watch: bool = True) -> None:
        """Start job workers (unless workers == 0), the outbox sender, the scheduler and the manifest watcher."""
        if workers != 0:
            self.start_supervisor()
            self._consumer = self.queue.start_in_process(workers)
        sender = threading.Thread(target=self._send_loop, name="outbox", daemon=True)
        sender.start()
        self._threads.append(sender)
        if schedules:
            self._loop("scheduler", lambda: scheduler.pause_before_next_tick(time.time()), lambda: scheduler.tick(self.ctx))
        if watch:
            self._loop("manifest-watcher", WATCH_EVERY, self._reload_if_changed)

    def start_supervisor(self) -> None:
        """Lease heartbeats and recovery: this process's running jobs stay ours; dead workers' jobs come back."""
        recovery.recover(self.ctx, self.queue.job_ids)
        self._loop("supervisor", HEARTBEAT, self._supervise)

    def _supervise(self) -> None:
        with self.ctx.lock:
            mine = list(self.ctx.running)
        ledger.heartbeat(self.db, mine, self.ctx.worker_id, worker.LEASE)
        recovery.recover(self.ctx, self.queue.job_ids)

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._consumer is not None:
            self._consumer.stop(graceful=True)
        for thread in self._threads:
            thread.join(timeout=5)

    def receive(self, msg: Message) -> list[Reply]:
        """Run a message through the pipeline; its replies go out through the outbox."""
        replies = pipeline.handle(self.ctx, msg)
        message_id = msg.message_id or uuid.uuid4().hex
        for seq, reply in enumerate(replies):
            outbox.put(self.db, f"msg:{msg.platform}:{message_id}:{seq}", reply)
        self._wake.set()
        return replies

    def idle(self, job_ids: list[int]) -> bool:
        """True when these jobs have ended and every reply for our adapters is sent."""
        return not ledger.unfinished(self.db, job_ids) and outbox.count_pending(self.db, list(self.adapters)) == 0

    def _send_loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(OUTBOX_POLL)
            self._wake.clear()
            self.flush()

    def flush(self) -> int:
        return outbox.deliver(self.db, {platform: adapter.send for platform, adapter in self.adapters.items()})

    def reload(self) -> list[Problem]:
        """Re-read the manifests; on any error keep the last good set and return the problems."""
        skills, problems = load_all(list(self.cfg.manifest_dirs), set(self.cfg.mounts))
        self._manifest_stamp = self._stamp()
        if problems:
            log.error("manifests not reloaded, keeping the last good set:\n%s", "\n".join(map(str, problems)))
            return problems
        self.ctx.skills = skills
        log.info("reloaded %d skills", len(skills))
        return []

    def _stamp(self) -> tuple:
        files = manifest_files([Path(d) for d in self.cfg.manifest_dirs])
        return tuple((str(f), f.stat().st_mtime_ns, f.stat().st_size) for f in files if f.exists())

    def _reload_if_changed(self) -> None:
        if self._stamp() != self._manifest_stamp:
            self.reload()
