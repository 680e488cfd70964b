"""Built-in commands: one table with names, arguments and help text.

Platform adapters register these same entries as native slash commands.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from bot import ledger, rbac
from bot.context import Context
from bot.models import Job, JobState, Message, Reply, answer

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
    args = " ".join(f"{k}={v}" for k, v in job.args.items())
    when = time.strftime("%H:%M:%S", time.localtime(job.created))
    exit_code = f" exit {job.exit_code}" if job.exit_code is not None else ""
    return f"job {job.id} {job.state.value}{exit_code} — {job.skill} {args} ({when}, {job.requester})".replace("  ", " ")


def _jobs(ctx: Context, msg: Message, roles: frozenset[str], rest: str) -> list[Reply]:
    everyone = rbac.is_admin(ctx.cfg, roles) and rest.strip() == "all"
    jobs = ledger.recent(ctx.db, 10, None if everyone else msg.user)
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
    text = summary(job) + timing
    return [answer(msg, text, job.output if job.state.terminal and job.state != JobState.DENIED else None, job.id)]


COMMANDS: dict[str, Command] = {
    c.name: c
    for c in [
        Command("help", "", "how to talk to me", _help),
        Command("skills", "", "the skills you may run", _skills),
        Command("whoami", "", "your identity and roles", _whoami),
        Command("jobs", "[all]", "your latest jobs (admins: all jobs)", _jobs),
        Command("job", "ID", "one job: state, exit code, output", _job),
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
