"""Wiring: config + manifests + database + queue + adapters, and the outbox sender."""

from __future__ import annotations

import logging
import threading
import uuid
from typing import Protocol

from bot import containers, images, ledger, outbox, pipeline, worker
from bot.config import Config
from bot.context import Context
from bot.db import Database
from bot.manifest import load_all
from bot.models import Message, Reply
from bot.queue import JobQueue
from bot.schema import Problem

log = logging.getLogger(__name__)

OUTBOX_POLL = 0.05


class Adapter(Protocol):
    platform: str

    def send(self, reply: Reply) -> None:
        """Deliver one reply; raise if the platform did not accept it."""


class ManifestError(Exception):
    def __init__(self, problems: list[Problem]):
        super().__init__("\n".join(map(str, problems)))
        self.problems = problems


def load_skills(cfg: Config) -> dict:
    skills, problems = load_all(list(cfg.manifest_dirs), set(cfg.mounts))
    if problems:
        raise ManifestError(problems)
    return skills


class Bot:
    def __init__(self, cfg: Config):
        self.cfg = cfg
        self.db = Database(cfg.db_path)
        self._wake = threading.Event()
        self.ctx = Context(cfg, self.db, load_skills(cfg), enqueue=lambda job_id: None, notify=self._wake.set)
        self.queue = JobQueue(cfg, lambda job_id: worker.execute(self.ctx, job_id))
        self.ctx.enqueue = self.queue.enqueue
        self.adapters: dict[str, Adapter] = {}
        self._stop = threading.Event()
        self._sender: threading.Thread | None = None
        self._consumer = None

    def check_host(self) -> containers.Engine:
        """Fail early, with how to fix it, when Podman or the base image is not there."""
        engine = containers.connect(self.cfg)
        images.ensure_base(self.cfg, lambda line: log.info("image: %s", line))
        return engine

    def add_adapter(self, adapter: Adapter) -> None:
        self.adapters[adapter.platform] = adapter

    def start(self, workers: int | None = None) -> None:
        """Start the in-process Huey consumer (unless workers == 0) and the outbox sender."""
        if workers != 0:
            self._consumer = self.queue.start_in_process(workers)
        self._sender = threading.Thread(target=self._send_loop, name="outbox", daemon=True)
        self._sender.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._consumer is not None:
            self._consumer.stop(graceful=True)
        if self._sender is not None:
            self._sender.join(timeout=5)

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

    def flush(self) -> None:
        for item in outbox.pending(self.db, list(self.adapters)):
            try:
                self.adapters[item.reply.platform].send(item.reply)
            except Exception:
                log.exception("sending %s failed; it stays in the outbox", item.key)
                return
            outbox.mark_sent(self.db, item.id)
