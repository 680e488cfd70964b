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
from dataclasses import dataclass

from bot import audit, cron, ledger, outbox, rbac
from bot.context import Context
from bot.manifest import Manifest, Schedule
from bot.models import JobState, Reply
from bot.router import ArgumentError, complete

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Fired:
    schedule: str
    due: float  # the minute mark it was due at
    job_id: int | None
    at: float  # when it was queued


def pause_before_next_tick(now: float, longest: float = 1.0) -> float:
    """Sleep until just after the next minute mark, but at most `longest` (so pauses and reloads are seen)."""
    return min(longest, 60 - now % 60 + 0.002)


def entries(skills: dict[str, Manifest]) -> list[tuple[Manifest, Schedule]]:
    return [(m, s) for m in skills.values() for s in m.schedules]


def _state(ctx: Context, name: str, now: float) -> tuple[bool, float]:
    ctx.db.execute("INSERT OR IGNORE INTO schedules (name, paused, last_fire) VALUES (?, 0, ?)", (name, now))
    row = ctx.db.execute("SELECT paused, last_fire FROM schedules WHERE name = ?", (name,)).fetchone()
    return bool(row["paused"]), row["last_fire"]


def set_paused(ctx: Context, name: str, paused: bool, now: float | None = None) -> bool:
    """Pause or resume; resuming starts from now, so a pause is never caught up."""
    now = time.time() if now is None else now
    cur = ctx.db.execute(
        "UPDATE schedules SET paused = ?, last_fire = CASE WHEN ? THEN last_fire ELSE ? END WHERE name = ?",
        (int(paused), int(paused), now, name),
    )
    return cur.rowcount == 1


def tick(ctx: Context, now: float | None = None) -> list[Fired]:
    """Fire every schedule entry that is due at `now` (injectable for tests and benchmarks)."""
    now = time.time() if now is None else now
    fired = []
    this_minute = math.floor(now / 60) * 60
    for skill, entry in entries(ctx.skills):
        paused, last = _state(ctx, entry.name, now)
        if paused:
            continue
        due = cron.due(cron.parse(entry.cron), cron.zone(entry.timezone), last, now)
        if not due:
            continue
        claimed = ctx.db.execute("UPDATE schedules SET last_fire = ? WHERE name = ? AND last_fire = ?", (due[-1], entry.name, last))
        if claimed.rowcount != 1:
            continue  # another process fired it
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
                ctx.db,
                entry.identity,
                entry.reply_to,
                "schedule_missed",
                skill.name,
                detail=f"{entry.name}: {len(missed)} missed, policy {entry.catch_up}, running {len(chosen)}",
            )
        fired.extend(_fire(ctx, skill, entry, t) for t in chosen)
    return fired


def _fire(ctx: Context, skill: Manifest, entry: Schedule, due: float) -> Fired:
    roles = rbac.roles_of(ctx.cfg, entry.identity, ctx.db)
    when = time.strftime("%Y-%m-%d %H:%M", time.gmtime(due))
    if not rbac.may_run(ctx.cfg, roles, skill):
        audit.record(ctx.db, entry.identity, entry.reply_to, "denied", skill.name, detail=f"schedule {entry.name} at {when} UTC")
        text = f"Schedule {entry.name} did not run {skill.name}: {entry.identity} lacks the role {', '.join(sorted(skill.roles))}."
        outbox.put(ctx.db, f"schedule:{entry.name}:{due:.0f}", Reply(entry.reply_to, text))
        ctx.notify()
        return Fired(entry.name, due, None, time.time())
    try:
        args = complete(skill, entry.args)
    except ArgumentError as exc:
        audit.record(ctx.db, entry.identity, entry.reply_to, "invalid_arguments", skill.name, detail=f"schedule {entry.name}: {exc}")
        return Fired(entry.name, due, None, time.time())
    job = ledger.create(ctx.db, skill.name, args, entry.identity, entry.reply_to, state=JobState.QUEUED)
    ctx.enqueue(job.id)
    audit.record(ctx.db, entry.identity, entry.reply_to, "scheduled", skill.name, job.id, f"{entry.name} due {when} UTC")
    return Fired(entry.name, due, job.id, time.time())


def listing(ctx: Context, now: float | None = None) -> list[tuple[str, str, str, bool, float | None]]:
    """(name, skill, cron, paused, next fire) for every entry."""
    now = time.time() if now is None else now
    rows = []
    for skill, entry in entries(ctx.skills):
        paused, _ = _state(ctx, entry.name, now)
        upcoming = None if paused else cron.next_fire(cron.parse(entry.cron), cron.zone(entry.timezone), now)
        rows.append((entry.name, skill.name, entry.cron + (f" {entry.timezone}" if entry.timezone else ""), paused, upcoming))
    return rows
