"""Schedule entries as people see them: what is scheduled with its next run, and one entry turned into a job.

The scheduler (`bot.jobs.scheduler`) fires entries through `job_for`, and so does `/schedules run NAME`:
a run now passes exactly the checks a fire does.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from bot import cron
from bot.chat import approvals, rbac
from bot.config import Config
from bot.errors import Refusal
from bot.flow import Job, JobState, Reply
from bot.skill import Schedule, Skill, complete
from bot.store import ledger, schedules
from bot.store.database import Database


@dataclass(frozen=True)
class Row:
    name: str
    skill: str
    cron: str
    timezone: str | None
    identity: str
    reply_to: str
    paused: bool
    next_run: float | None  # None: paused, or no run within a year


def listing(skills: Iterable[Skill], db: Database, now: float) -> list[Row]:
    rows = []
    for skill in skills:
        for entry in skill.schedules:
            paused, _ = schedules.state(db, entry.name, now)
            upcoming = None if paused else cron.next_fire(cron.parse(entry.cron), cron.zone(entry.timezone), now)
            rows.append(Row(entry.name, skill.name, entry.cron, entry.timezone, entry.identity, entry.reply_to, paused, upcoming))
    return rows


def find(skills: Iterable[Skill], name: str) -> tuple[Skill, Schedule] | None:
    return next(((skill, entry) for skill in skills for entry in skill.schedules if entry.name == name), None)


def job_for(cfg: Config, db: Database, skill: Skill, entry: Schedule) -> tuple[Job, tuple[Reply, ...]]:
    """A queued ledger job for `entry`, run as its identity, which the caller hands to the queue; or, for a skill
    that needs approval, the job awaiting it with the notices to send (not queued). Refusal (outcome denied) when
    that identity may not run the skill, ArgumentError when its arguments fail the schema."""
    roles = rbac.roles_of(cfg, entry.identity, db)
    if not rbac.may_run(cfg, roles, skill):
        raise Refusal(f"{entry.identity} lacks the role {', '.join(sorted(skill.roles))}", "denied")
    args = complete(skill, entry.args)
    if skill.approval is not None:  # waits like a person's request, the schedule's identity the requester
        return approvals.ask(cfg, db, skill, skill.approval, args, entry.identity, entry.reply_to)
    return ledger.create(db, skill.name, args, entry.identity, entry.reply_to, state=JobState.QUEUED), ()
