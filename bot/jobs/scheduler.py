"""Cron triggers from manifests: each fire becomes a job, checked like a person's request.

Fire times are recorded in the ledger database, so schedules survive restarts:
at start, runs missed while podbot was down are handled by each entry's
`catch_up` policy (skip, once, all). Recording is a compare-and-set, so several
podbot processes can tick the same schedules and each minute fires once.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from bot import cron
from bot.catalog import Catalog
from bot.chat import scheduled
from bot.config import Config
from bot.errors import ArgumentError, Refusal
from bot.flow import Reply
from bot.skill import Schedule, Skill
from bot.store import audit, outbox, schedules
from bot.store.database import Database

log = logging.getLogger(__name__)

Enqueue = Callable[[int, float], None]


@dataclass(frozen=True)
class Fired:
    schedule: str
    due: float  # the minute mark it was due at
    job_id: int | None
    at: float  # when it was queued


def pause_before_next_tick(now: float, longest: float = 1.0) -> float:
    """Sleep until just after the next minute mark, but at most `longest` (so pauses and reloads are seen)."""
    return min(longest, 60 - now % 60 + 0.002)


def entries(skills: Catalog) -> list[tuple[Skill, Schedule]]:
    return [(m, s) for m in skills for s in m.schedules]


class Scheduler:
    def __init__(self, cfg: Config, db: Database, catalog: Catalog, enqueue: Enqueue, notify: Callable[[], None]):
        self.cfg = cfg
        self.db = db
        self.catalog = catalog
        self.enqueue = enqueue
        self.notify = notify

    def tick(self, now: float | None = None) -> list[Fired]:
        """Fire every schedule entry that is due at `now` (injectable for tests and benchmarks)."""
        now = time.time() if now is None else now
        fired: list[Fired] = []
        this_minute = math.floor(now / 60) * 60
        for skill, entry in entries(self.catalog):
            paused, last = schedules.state(self.db, entry.name, now)
            if paused:
                continue
            due = cron.due(cron.parse(entry.cron), cron.zone(entry.timezone), last, now)
            if not due or not schedules.claim(self.db, entry.name, last, due[-1]):
                continue  # nothing due, or another process fired it
            missed = [t for t in due if t < this_minute]
            current = [t for t in due if t >= this_minute]
            if entry.catch_up == "all":
                chosen = due
            elif entry.catch_up == "once":
                chosen = current or missed[-1:]
            else:
                chosen = current
            if missed:
                audit.record(
                    self.db,
                    entry.identity,
                    entry.reply_to,
                    "schedule_missed",
                    skill.name,
                    detail=f"{entry.name}: {len(missed)} missed, policy {entry.catch_up}, running {len(chosen)}",
                )
            fired.extend(self._fire(skill, entry, t) for t in chosen)
        return fired

    def _fire(self, skill: Skill, entry: Schedule, due: float) -> Fired:
        when = time.strftime("%Y-%m-%d %H:%M", time.gmtime(due))
        try:
            with self.db.transaction():
                job, notices = scheduled.job_for(self.cfg, self.db, skill, entry)
                for seq, reply in enumerate(notices):
                    outbox.put(self.db, f"schedule:{entry.name}:{due:.0f}:{seq}", reply)
        except ArgumentError as exc:
            audit.record(self.db, entry.identity, entry.reply_to, "invalid_arguments", skill.name, detail=f"schedule {entry.name}: {exc}")
            return Fired(entry.name, due, None, time.time())
        except Refusal as exc:
            audit.record(self.db, entry.identity, entry.reply_to, exc.outcome, skill.name, detail=f"schedule {entry.name} at {when} UTC")
            text = f"Schedule {entry.name} did not run {skill.name}: {exc}."
            outbox.put(self.db, f"schedule:{entry.name}:{due:.0f}", Reply(entry.reply_to, text))
            self.notify()
            return Fired(entry.name, due, None, time.time())
        if notices:
            audit.record(self.db, entry.identity, entry.reply_to, "awaiting_approval", skill.name, job.id, f"{entry.name} due {when} UTC")
            self.notify()
            return Fired(entry.name, due, job.id, time.time())
        self.enqueue(job.id, 0.0)
        audit.record(self.db, entry.identity, entry.reply_to, "scheduled", skill.name, job.id, f"{entry.name} due {when} UTC")
        fields = {"job": job.id, "skill": skill.name, "person": entry.identity, "outcome": "scheduled"}
        log.info("schedule %s: job %s %s queued as %s", entry.name, job.id, skill.name, entry.identity, extra=fields)
        return Fired(entry.name, due, job.id, time.time())
