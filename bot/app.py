"""One podbot process, built in one step: database, skills, queue, runner, understanding, pipeline, then loops.

Loops (bot.loops): one outbox sender per platform adapter (a platform that
rate-limits never holds up the others); the supervisor (lease heartbeats and
recovery, in every process that runs jobs); the scheduler, the approval
deadlines, the manifest watcher and retention (in the bot process). `receive` is the
error boundary of a message: whatever happens, the person gets one line and
the audit log one entry.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from bot.catalog import Catalog
from bot.chat import approvals, pipeline, rbac
from bot.chat.commands import COMMANDS, Command
from bot.chat.decision import Decision
from bot.chat.services import Services
from bot.config import Config
from bot.errors import Unavailable, apology, incident
from bot.flow import JobState, Message, Reply
from bot.jobs import recovery
from bot.jobs.queue import JobQueue
from bot.jobs.scheduler import Scheduler, pause_before_next_tick
from bot.jobs.worker import Worker
from bot.loops import Loops
from bot.runtime import images
from bot.runtime.podman import PodmanRunner
from bot.runtime.runner import Engine, Runner
from bot.skill import Skill
from bot.store import audit, ledger, outbox, retention
from bot.store.database import Database, open_database
from bot.timing import StageTimes
from bot.understanding.stages import Understanding
from bot.vault import Vault

if TYPE_CHECKING:
    from huey.consumer import Consumer

    from adapters.contract import Adapter

log = logging.getLogger(__name__)

OUTBOX_POLL = 0.05  # the senders also poll: replies may come from worker processes
HEARTBEAT = 2.0  # seconds between lease renewals and recovery passes (the lease lasts worker.LEASE)
WATCH_EVERY = 2.0
APPROVALS_EVERY = 1.0  # seconds between looks for approvals past their deadline
PRUNE_EVERY = 3600.0  # seconds between retention passes (config `retention`)


class Bot:
    def __init__(self, cfg: Config, runner: Runner | None = None, understanding: Understanding | None = None):
        """Build everything (raises Problems when the manifests have errors); nothing runs until start().

        `runner` defaults to rootless Podman and `understanding` to the local models; tests pass their own.
        """
        self.cfg = cfg
        self.db: Database = open_database(cfg.database, cfg.data_dir)
        self.catalog = Catalog(cfg)
        self.runner: Runner = runner if runner is not None else PodmanRunner(cfg)
        self.queue = JobQueue(cfg)
        self.loops = Loops()
        self.vault = Vault(cfg.secrets, cfg.data_dir)
        self.vault.guard(logging.getLogger())  # podbot's log files never get a secret it has seen
        self.worker = Worker(cfg, self.db, self.catalog, self.runner, self.queue.enqueue, self.loops.wake, self.vault)
        self.scheduler = Scheduler(cfg, self.db, self.catalog, self.queue.enqueue, self.loops.wake)
        # Loads its models on first use, once per process (they are shared by every Bot in it).
        self.understanding = understanding if understanding is not None else Understanding(cfg.model, self.catalog)
        self.services = Services(cfg, self.db, self.catalog, self.worker.stop_job, self.vault, self.understanding)
        self.adapters: dict[str, Adapter] = {}
        self.stage_times = StageTimes()  # how long each stage of receive() takes (the gateway's /metrics)
        # An adapter added with `conversations` delivers only those of its platform (a console delivers its person's,
        # the gateway those with a client connected at the time); None: all of them.
        self._delivers: dict[str, Callable[[], Sequence[str] | None]] = {}
        self._consumer: Consumer | None = None
        self._started = False

    def check_host(self) -> Engine:
        """Fail early, with how to fix it, when Podman or the base image is not there; build the other images skills need.

        An image that cannot be built here (the Debian base needs root) is logged: its skills answer
        in one line that it is missing, and everything else runs.
        """
        engine = self.runner.engine()
        images.ensure_base(self.runner, lambda line: log.info("image: %s", line))
        try:
            images.ensure_all(self.runner, list(self.catalog), lambda line: log.info("image: %s", line))
        except Unavailable as exc:
            log.warning("some skills' images are not here: %s", exc)
        return engine

    def add_adapter(self, adapter: Adapter, conversations: Sequence[str] | Callable[[], Sequence[str]] | None = None) -> None:
        """Deliver the replies of `adapter.platform` through `adapter`: all of them, or only those to `conversations`
        (a list, or a function giving the list each time; the others wait in the outbox, untried)."""
        self.adapters[adapter.platform] = adapter
        if callable(conversations):
            self._delivers[adapter.platform] = conversations
        else:
            fixed = tuple(conversations) if conversations is not None else None
            self._delivers[adapter.platform] = lambda: fixed
        self.catalog.on_change(adapter.skills_changed)
        if self._started:
            self._start_sender(adapter)

    def _start_sender(self, adapter: Adapter) -> None:
        senders: dict[str, Callable[[Reply], None]] = {adapter.platform: adapter.send}
        only = self._delivers[adapter.platform]
        self.loops.every(
            f"outbox-{adapter.platform}", OUTBOX_POLL, lambda: outbox.deliver(self.db, senders, conversations=only()), wakeable=True
        )

    def start(self, workers: int | None = None, schedules: bool = True, watch: bool = True) -> None:
        """Start job workers (unless workers == 0), the outbox senders, the scheduler and the manifest watcher."""
        self._started = True
        if workers != 0:
            self.start_supervisor()
            self._consumer = self.queue.start_in_process(self.worker.execute, workers)
        for adapter in self.adapters.values():
            self._start_sender(adapter)
        self._expire_approvals()  # what expired while no bot was running is denied before anything else
        self.loops.every("approval-deadlines", APPROVALS_EVERY, self._expire_approvals)
        if schedules:
            self.loops.every("scheduler", lambda: pause_before_next_tick(time.time()), self.scheduler.tick)
        if watch:
            self.loops.every("manifest-watcher", WATCH_EVERY, self.catalog.reload_if_changed)
        self.loops.every("retention", PRUNE_EVERY, self.prune)

    def start_supervisor(self) -> None:
        """Lease heartbeats and recovery: this process's running jobs stay ours; dead workers' jobs come back."""
        recovery.recover(self.worker, self.queue.job_ids)
        self.loops.every("supervisor", HEARTBEAT, self._supervise)

    def _supervise(self) -> None:
        self.worker.heartbeat()
        recovery.recover(self.worker, self.queue.job_ids)

    def prune(self) -> dict[str, int]:
        """Delete finished history past its retention (config `retention`); returns rows removed per kind."""
        removed = retention.prune(self.db, self.cfg.retention, time.time())
        if any(removed.values()):
            log.info("retention removed %s", ", ".join(f"{n} {kind}" for kind, n in removed.items()))
        return removed

    def _expire_approvals(self) -> None:
        if approvals.expire(self.db):
            self.loops.wake()

    def serve_jobs(self, workers: int | None = None) -> None:
        """Run only the job consumer in the foreground (`podbot worker`); Huey's consumer handles the signals."""
        self.start_supervisor()
        consumer = self.queue.consumer(self.worker.execute, workers)
        log.info("job consumer started: %d workers as %s on %s", consumer.workers, self.worker.id, self.queue.where)
        consumer.run()

    def stop(self) -> None:
        if self._consumer is not None:
            self._consumer.stop(graceful=True)
        self.loops.stop()
        self.queue.close()
        self.db.close()

    # --- what adapters get (adapters.contract.BotPort) ---

    def receive(self, msg: Message) -> list[Reply]:
        """Run a message through the pipeline, audit the decision, queue its replies in the outbox, then its jobs.

        What handling writes (job rows, a pending question, the audit entry, the replies) is one transaction,
        and the queue hears of a job only once it is committed: a failure anywhere leaves none of it behind.
        """
        clock = [time.perf_counter()]

        def lap(stage: str) -> None:
            clock.append(time.perf_counter())
            self.stage_times.observe(stage, clock[-1] - clock[-2])

        try:
            with self.db.transaction():
                lap("lock")
                decision = pipeline.handle(self.services, msg)
                lap("decide")
                self._record(msg, decision)
                lap("record")
            lap("commit")
        except Exception:
            ident = incident(f"handling a message from {msg.user} in {msg.conversation}")
            decision = Decision("error", (Reply(msg.conversation, apology(ident), None, msg.thread),), detail=f"incident {ident}")
            try:
                self._record(msg, decision)
            except Exception:  # the database itself fails (full disk, locked too long): the log has both
                incident(f"recording the apology for incident {ident}")
        for job_id in decision.enqueue:
            self._enqueue(job_id)
        if decision.enqueue:
            lap("enqueue")
        self.loops.wake()
        return list(decision.replies)

    def _enqueue(self, job_id: int) -> None:
        try:
            self.queue.enqueue(job_id, 0.0)
        except Exception:
            # The job is in the ledger and its person has the ack: recovery queues it again (recovery.LOST_AFTER).
            incident(f"handing job {job_id} to the queue; recovery will queue it again")

    def _record(self, msg: Message, decision: Decision) -> None:
        if decision is not pipeline.IGNORED:
            audit.record(self.db, msg.user, msg.conversation, decision.outcome, decision.skill, decision.job_id, decision.detail)
        message_id = msg.message_id or uuid.uuid4().hex
        for seq, reply in enumerate(decision.replies):
            outbox.put(self.db, f"msg:{msg.platform}:{message_id}:{seq}", reply)

    def commands(self) -> Sequence[Command]:
        return list(COMMANDS.values())

    def skills(self, user: str | None = None) -> Sequence[Skill]:
        if user is None:
            return sorted(self.catalog, key=lambda s: s.name)
        return rbac.runnable(self.cfg, rbac.roles_of(self.cfg, user, self.db), self.catalog)

    def job_active(self, job_id: int) -> bool:
        job = ledger.get(self.db, job_id)
        return job is not None and job.state in (JobState.QUEUED, JobState.RUNNING)

    def idle(self, job_ids: list[int]) -> bool:
        """True when these jobs have ended and every reply our adapters deliver is sent."""
        if ledger.unfinished(self.db, job_ids):
            return False
        return all(outbox.count_pending(self.db, [platform], only()) == 0 for platform, only in self._delivers.items())
