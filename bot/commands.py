"""Built-in commands: one table with names, arguments and help text.

Platform adapters register these same entries as native slash commands.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from bot import audit, containers, grants, ledger, rbac, scheduler
from bot.context import Context
from bot.models import Job, JobState, Message, Reply, answer, request

Handler = Callable[[Context, Message, frozenset[str], str], list[Reply]]


@dataclass(frozen=True)
class Command:
    name: str
    args: str
    help: str
    handler: Handler
    admin: bool = False


def _help(ctx: Context, msg: Message, roles: frozenset[str], rest: str) -> list[Reply]:
    lines = [
        "Ask me to run a skill:",
        "  /SKILL key=value …   e.g. /disk_usage path=/",
        "  /SKILL value …       values in the order /skills shows",
        "  or a phrase a skill understands, e.g. `df /` or `say hello`",
        "I answer at once with a job number, then with the result when the job ends.",
        "Commands:",
    ]
    for command in COMMANDS.values():
        if not command.admin or rbac.is_admin(ctx.cfg, roles):
            lines.append(f"  /{command.name}{' ' + command.args if command.args else ''} — {command.help}")
    return [answer(msg, "\n".join(lines))]


def _skills(ctx: Context, msg: Message, roles: frozenset[str], rest: str) -> list[Reply]:
    mine = rbac.runnable(ctx.cfg, roles, ctx.skills)
    if not mine:
        return [answer(msg, "There are no skills you may run.")]
    lines = [f"{m.usage()} — {m.description}" for m in sorted(mine, key=lambda m: m.name)]
    return [answer(msg, f"Skills you may run ({len(mine)}):", "\n".join(lines))]


def _whoami(ctx: Context, msg: Message, roles: frozenset[str], rest: str) -> list[Reply]:
    name = f" ({msg.user_name})" if msg.user_name else ""
    admin = " You are an admin." if rbac.is_admin(ctx.cfg, roles) else ""
    return [answer(msg, f"You are {msg.user}{name}; roles: {', '.join(sorted(roles))}.{admin}")]


def summary(job: Job) -> str:
    when = time.strftime("%H:%M:%S", time.localtime(job.created))
    exit_code = f" exit {job.exit_code}" if job.exit_code is not None else ""
    return f"job {job.id} {job.state.value}{exit_code} — {request(job.skill, job.args)} ({when}, {job.requester})"


def _jobs(ctx: Context, msg: Message, roles: frozenset[str], rest: str) -> list[Reply]:
    words = rest.split()
    admin = rbac.is_admin(ctx.cfg, roles)
    everyone = admin and ("all" in words or "failed" in words)
    states = [JobState.FAILED, JobState.TIMED_OUT] if "failed" in words else None
    jobs = ledger.recent(ctx.db, 10, None if everyone else msg.user, states)
    if not jobs:
        return [answer(msg, "No jobs yet.")]
    return [answer(msg, f"Latest {len(jobs)} jobs:", "\n".join(summary(j) for j in jobs))]


def _job(ctx: Context, msg: Message, roles: frozenset[str], rest: str) -> list[Reply]:
    if not rest.strip().isdigit():
        return [answer(msg, "usage: /job ID (the number from 'job 42 queued')")]
    job = ledger.get(ctx.db, int(rest))
    if job is None or (job.requester != msg.user and not rbac.is_admin(ctx.cfg, roles)):
        return [answer(msg, f"There is no job {rest.strip()} of yours.")]
    timing = ""
    if job.started and job.finished:
        timing = f", ran {job.finished - job.started:.2f} s"
    attempts = f", {job.attempts} attempts" if job.attempts > 1 else ""
    text = summary(job) + timing + attempts
    return [answer(msg, text, job.output if job.state.terminal and job.state != JobState.DENIED else None, job.id)]


def _cancel(ctx: Context, msg: Message, roles: frozenset[str], rest: str) -> list[Reply]:
    if not rest.strip().isdigit():
        return [answer(msg, "usage: /cancel ID")]
    job_id = int(rest)
    if not ledger.cancel(ctx.db, job_id):
        job = ledger.get(ctx.db, job_id)
        return [
            answer(
                msg,
                f"job {job_id} is {job.state.value}; only queued or running jobs can be cancelled."
                if job
                else f"There is no job {job_id}.",
            )
        ]
    removed = containers.remove_job_containers(ctx.cfg, job_id)
    audit.record(ctx.db, msg.user, msg.conversation, "cancelled", job_id=job_id, detail=f"{removed} container(s) stopped")
    return [answer(msg, f"job {job_id} cancelled" + (" and its container stopped." if removed else "."), job_id=job_id)]


def _audit(ctx: Context, msg: Message, roles: frozenset[str], rest: str) -> list[Reply]:
    limit = int(rest) if rest.strip().isdigit() else 10
    lines = [
        " ".join(
            part
            for part in (
                time.strftime("%m-%d %H:%M:%S", time.localtime(e.ts)),
                e.actor,
                e.event,
                e.skill,
                e.job_id and f"job {e.job_id}",
                e.detail,
            )
            if part
        )
        for e in audit.latest(ctx.db, min(limit, 100))
    ]
    return [answer(msg, f"Latest {len(lines)} audit entries:", "\n".join(lines))]


def _grant(ctx: Context, msg: Message, roles: frozenset[str], rest: str) -> list[Reply]:
    parts = rest.split()
    if len(parts) != 2 or ":" not in parts[0]:
        return [answer(msg, "usage: /grant IDENTITY ROLE, e.g. /grant slack:T1:U123 operator")]
    identity, role = parts
    added = grants.grant(ctx.db, identity, role, msg.user)
    audit.record(ctx.db, msg.user, msg.conversation, "grant", detail=f"{identity} +{role}")
    return [answer(msg, f"{identity} now has the role {role}." if added else f"{identity} already had the role {role}.")]


def _revoke(ctx: Context, msg: Message, roles: frozenset[str], rest: str) -> list[Reply]:
    parts = rest.split()
    if len(parts) != 2:
        return [answer(msg, "usage: /revoke IDENTITY ROLE")]
    identity, role = parts
    removed = grants.revoke(ctx.db, identity, role)
    audit.record(ctx.db, msg.user, msg.conversation, "revoke", detail=f"{identity} -{role}")
    if removed:
        still = " (podbot.yaml still gives it)" if role in rbac.roles_of(ctx.cfg, identity, ctx.db) else ""
        return [answer(msg, f"{identity} no longer has the granted role {role}{still}.")]
    return [answer(msg, f"{identity} had no granted role {role}; roles from podbot.yaml change only there.")]


def _reload(ctx: Context, msg: Message, roles: frozenset[str], rest: str) -> list[Reply]:
    problems = ctx.reload()
    audit.record(ctx.db, msg.user, msg.conversation, "reload", detail=f"{len(problems)} errors")
    if problems:
        return [
            answer(
                msg,
                f"Manifests have {len(problems)} errors; keeping the last good set ({len(ctx.skills)} skills).",
                "\n".join(map(str, problems)),
            )
        ]
    return [answer(msg, f"Reloaded {len(ctx.skills)} skills: {', '.join(sorted(ctx.skills))}.")]


def _schedules(ctx: Context, msg: Message, roles: frozenset[str], rest: str) -> list[Reply]:
    words = rest.split()
    if len(words) == 2 and words[0] in ("pause", "resume"):
        if not scheduler.set_paused(ctx, words[1], words[0] == "pause"):
            return [answer(msg, f"There is no schedule {words[1]}; /schedules lists them.")]
        audit.record(ctx.db, msg.user, msg.conversation, f"schedule_{words[0]}", detail=words[1])
        return [answer(msg, f"Schedule {words[1]} {'paused' if words[0] == 'pause' else 'resumed'}.")]
    if words:
        return [answer(msg, "usage: /schedules [pause NAME | resume NAME]")]
    rows = scheduler.listing(ctx)
    if not rows:
        return [answer(msg, "No schedules.")]
    lines = [
        f"{name} — {skill} — {expr} — " + ("paused" if paused else f"next {time.strftime('%Y-%m-%d %H:%M', time.localtime(nxt))}")
        for name, skill, expr, paused, nxt in rows
    ]
    return [answer(msg, f"{len(rows)} schedules:", "\n".join(lines))]


COMMANDS: dict[str, Command] = {
    c.name: c
    for c in [
        Command("help", "", "how to talk to me", _help),
        Command("skills", "", "the skills you may run", _skills),
        Command("whoami", "", "your identity and roles", _whoami),
        Command("jobs", "[all|failed]", "your latest jobs (admins: all, or all failed)", _jobs),
        Command("job", "ID", "one job: state, attempts, exit code, output", _job),
        Command("cancel", "ID", "stop a job and its container", _cancel, admin=True),
        Command("audit", "[N]", "the latest N audit entries", _audit, admin=True),
        Command("grant", "IDENTITY ROLE", "give a person a role (kept in the database)", _grant, admin=True),
        Command("revoke", "IDENTITY ROLE", "take back a granted role", _revoke, admin=True),
        Command("reload", "", "re-read the manifests (errors keep the last good set)", _reload, admin=True),
        Command("schedules", "[pause|resume NAME]", "cron schedules and their next run", _schedules, admin=True),
    ]
}


def run(ctx: Context, msg: Message, roles: frozenset[str], name: str, rest: str) -> list[Reply] | None:
    """Run built-in command `name`, or None if there is no such command."""
    command = COMMANDS.get(name)
    if command is None:
        return None
    if command.admin and not rbac.is_admin(ctx.cfg, roles):
        return [answer(msg, f"/{name} is for admins ({', '.join(sorted(ctx.cfg.admin_roles))}); you have {', '.join(sorted(roles))}.")]
    return command.handler(ctx, msg, roles, rest)
