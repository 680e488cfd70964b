"""Built-in commands: one table with names, arguments and help text.

Platform adapters register these same entries as native slash commands.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from bot.chat import approvals, rbac, scheduled
from bot.chat.decision import Decision, say
from bot.chat.services import Services
from bot.errors import ArgumentError, Refusal
from bot.flow import Job, JobState, Message, answer, request
from bot.skill import Skill
from bot.store import audit, grants, ledger, schedules

Handler = Callable[[Services, Message, frozenset[str], str], Decision]

MAX_JOB_ID = 2**63 - 1  # job ids are SQLite INTEGERs
MAX_AUDIT = 100

# What an identity looks like on each platform (as the adapters build them): a grant to anything else could never
# match anyone. Grants match exactly, so no wildcards either.
IDENTITY = re.compile(r"telegram:[0-9]+|slack:[A-Z0-9]+:[A-Z0-9]+|discord:[0-9]+|console:[^\s:*?\[\]]+|web:[A-Za-z0-9._@-]{1,64}")


def number(text: str, low: int, high: int, usage: str) -> int:
    """A whole number from `low` to `high` written in ASCII digits, else a one-line ArgumentError ending in `usage`."""
    word = text.strip()
    # Checked before int(): int() also reads "²" or "٣", and a number past SQLite's INTEGER cannot be looked up.
    if re.fullmatch(r"[0-9]{1,19}", word) and low <= int(word) <= high:
        return int(word)
    raise ArgumentError(f"expected a number from {low} to {high}; usage: {usage}")


def admins_only(s: Services, roles: frozenset[str], what: str) -> str:
    admins = ", ".join(sorted(s.cfg.admin_roles))
    return f"{what} is for admins ({admins}); you have {', '.join(sorted(roles))}."


@dataclass(frozen=True)
class Command:
    name: str
    args: str
    help: str
    handler: Handler
    admin: bool = False


def _help(s: Services, msg: Message, roles: frozenset[str], rest: str) -> Decision:
    words = rest.split()
    if len(words) > 1:
        raise ArgumentError("usage: /help [SKILL or COMMAND]")
    if words:
        return _help_on(s, msg, roles, words[0].lstrip("/"))
    lines = [
        "  /SKILL key=value …   e.g. /disk_usage path=/",
        "  /SKILL value …       values in the order /skills shows",
        "  or a phrase a skill understands, e.g. `df /` or `say hello`",
        "I answer at once with a job number, then with the result when the job ends.",
        "Commands (/help SKILL explains a skill):",
    ]
    for command in COMMANDS.values():
        if not command.admin or rbac.is_admin(s.cfg, roles):
            lines.append(f"  /{command.name}{' ' + command.args if command.args else ''} — {command.help}")
    return say(msg, "command", "Ask me to run a skill:", "\n".join(lines))


def _help_on(s: Services, msg: Message, roles: frozenset[str], name: str) -> Decision:
    """One skill explained (or one command); a skill this person may not run is named, never explained."""
    command = COMMANDS.get(name)
    if command is not None:
        who = " (admins)" if command.admin else ""
        return say(msg, "command", f"/{name}{' ' + command.args if command.args else ''} — {command.help}{who}")
    skill = s.catalog.get(name)
    if skill is None:
        return say(msg, "command", f"There is no skill or command {name[:100]}; /skills lists the skills you may run.")
    if not rbac.may_run(s.cfg, roles, skill):
        needed = ", ".join(sorted(skill.roles | s.cfg.admin_roles))
        return say(msg, "command", f"{skill.name} needs the role {needed}; you have {', '.join(sorted(roles))}.")
    lines = [f"Usage: {skill.usage()}"]
    if skill.properties:
        lines.append("Arguments:")
        lines += [f"  {_argument(skill, name, prop)}" for name, prop in skill.properties.items()]
    if skill.examples:
        lines.append("Examples:")
        lines += [f"  {example}" for example in skill.examples]
    admins = ", ".join(sorted(s.cfg.admin_roles))
    lines.append(f"Who may run it: {', '.join(sorted(skill.roles))}, and admins ({admins})")
    if skill.confirm:
        lines.append("It asks you to confirm before it runs.")
    return say(msg, "command", f"{skill.name} — {' '.join(skill.description.split())}", "\n".join(lines))


def _argument(skill: Skill, name: str, prop: dict[str, Any]) -> str:
    """`path (string, default "/", pattern …) — what it is`."""
    facts = [str(prop.get("type", "any"))]
    if name in skill.required:
        facts.append("required")
    if "default" in prop:
        facts.append(f"default {json.dumps(prop['default'])}")
    if "enum" in prop:
        facts.append("one of " + ", ".join(map(json.dumps, prop["enum"])))
    if "minimum" in prop or "maximum" in prop:
        facts.append(f"{prop.get('minimum', '…')} to {prop.get('maximum', '…')}")
    if "pattern" in prop:
        facts.append(f"pattern {prop['pattern']}")
    about = prop.get("description")
    return f"{name} ({', '.join(facts)})" + (f" — {about}" if about else "")


def _skills(s: Services, msg: Message, roles: frozenset[str], rest: str) -> Decision:
    mine = rbac.runnable(s.cfg, roles, s.catalog)
    if not mine:
        return say(msg, "command", "There are no skills you may run.")
    lines = [f"{m.usage()} — {m.description}" for m in sorted(mine, key=lambda m: m.name)]
    return say(msg, "command", f"Skills you may run ({len(mine)}):", "\n".join(lines))


def _whoami(s: Services, msg: Message, roles: frozenset[str], rest: str) -> Decision:
    name = f" ({msg.user_name})" if msg.user_name else ""
    admin = " You are an admin." if rbac.is_admin(s.cfg, roles) else ""
    return say(msg, "command", f"You are {msg.user}{name}; roles: {', '.join(sorted(roles))}.{admin}")


def summary(job: Job) -> str:
    when = time.strftime("%H:%M:%S", time.localtime(job.created))
    exit_code = f" exit {job.exit_code}" if job.exit_code is not None else ""
    return f"job {job.id} {job.state.value}{exit_code} — {request(job.skill, job.args)} ({when}, {job.requester})"


def _jobs(s: Services, msg: Message, roles: frozenset[str], rest: str) -> Decision:
    words = set(rest.split())
    if not words <= {"all", "failed"}:
        raise ArgumentError("usage: /jobs [all|failed]")
    if words and not rbac.is_admin(s.cfg, roles):
        raise Refusal(admins_only(s, roles, f"/jobs {' '.join(sorted(words))}"), "denied")
    states = [JobState.FAILED, JobState.TIMED_OUT] if "failed" in words else None
    jobs = ledger.recent(s.db, 10, None if words else msg.user, states)
    if not jobs:
        return say(msg, "command", "No jobs yet.")
    return say(msg, "command", f"Latest {len(jobs)} jobs:", "\n".join(summary(j) for j in jobs))


def _job(s: Services, msg: Message, roles: frozenset[str], rest: str) -> Decision:
    job_id = number(rest, 1, MAX_JOB_ID, "/job ID (the number from 'job 42 queued')")
    job = ledger.get(s.db, job_id)
    if job is None or (job.requester != msg.user and not rbac.is_admin(s.cfg, roles)):
        return say(msg, "command", f"There is no job {job_id} of yours.")
    timing = ""
    if job.started and job.finished:
        timing = f", ran {job.finished - job.started:.2f} s"
    attempts = f", {job.attempts} attempts" if job.attempts > 1 else ""
    text = summary(job) + timing + attempts + approvals.describe(s.db, job)
    return say(msg, "command", text, job.output if job.state.terminal and job.state != JobState.DENIED else None, job_id=job.id)


def _cancel(s: Services, msg: Message, roles: frozenset[str], rest: str) -> Decision:
    job_id = number(rest, 1, MAX_JOB_ID, "/cancel ID")
    job = ledger.get(s.db, job_id)
    # As for /job: someone else's job is not there for you, so its number tells you nothing.
    if job is None or (job.requester != msg.user and not rbac.is_admin(s.cfg, roles)):
        return say(msg, "command", f"There is no job {job_id} of yours.")
    if not ledger.cancel(s.db, job_id):
        return say(msg, "command", f"job {job_id} is {job.state.value}; only jobs that have not ended can be cancelled.")
    removed = s.stop_job(job_id)
    text = f"job {job_id} cancelled" + (" and its container stopped." if removed else ".")
    return say(msg, "cancelled", text, job_id=job_id, detail=f"{removed} container(s) stopped")


def _approve(s: Services, msg: Message, roles: frozenset[str], rest: str) -> Decision:
    return approvals.decide(s, msg, roles, number(rest, 1, MAX_JOB_ID, "/approve ID"), approved=True)


def _deny(s: Services, msg: Message, roles: frozenset[str], rest: str) -> Decision:
    word, _, reason = rest.strip().partition(" ")
    return approvals.decide(s, msg, roles, number(word, 1, MAX_JOB_ID, "/deny ID [reason]"), approved=False, reason=reason.strip()[:300])


def _audit(s: Services, msg: Message, roles: frozenset[str], rest: str) -> Decision:
    limit = number(rest, 1, MAX_AUDIT, "/audit [N]") if rest.strip() else 10
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
        for e in audit.latest(s.db, limit)
    ]
    return say(msg, "command", f"Latest {len(lines)} audit entries:", "\n".join(lines))


def _grant(s: Services, msg: Message, roles: frozenset[str], rest: str) -> Decision:
    parts = rest.split()
    if len(parts) != 2:
        return say(msg, "command", "usage: /grant IDENTITY ROLE, e.g. /grant slack:T1:U123 operator")
    identity, role = parts
    if not IDENTITY.fullmatch(identity):
        shapes = "telegram:<digits>, slack:<team>:<user>, discord:<digits>, console:<name> or web:<name>"
        raise ArgumentError(f"{identity[:100]} is not an identity; identities look like {shapes}.")
    known = _known_roles(s)
    if role not in known:
        raise ArgumentError(f"There is no role {role[:100]}; known roles: {', '.join(sorted(known))}.")
    added = grants.grant(s.db, identity, role, msg.user)
    text = f"{identity} now has the role {role}." if added else f"{identity} already had the role {role}."
    return say(msg, "grant", text, detail=f"{identity} +{role}")


def _known_roles(s: Services) -> set[str]:
    """The roles that mean something: named in the config, or needed by a loaded skill."""
    return {s.cfg.default_role, *s.cfg.roles, *s.cfg.admin_roles, *(role for skill in s.catalog for role in skill.roles)}


def _revoke(s: Services, msg: Message, roles: frozenset[str], rest: str) -> Decision:
    parts = rest.split()
    if len(parts) != 2:
        return say(msg, "command", "usage: /revoke IDENTITY ROLE")
    identity, role = parts
    if grants.revoke(s.db, identity, role):
        still = " (podbot.yaml still gives it)" if role in rbac.roles_of(s.cfg, identity, s.db) else ""
        text = f"{identity} no longer has the granted role {role}{still}."
    else:
        text = f"{identity} had no granted role {role}; roles from podbot.yaml change only there."
    return say(msg, "revoke", text, detail=f"{identity} -{role}")


def _roles(s: Services, msg: Message, roles: frozenset[str], rest: str) -> Decision:
    granted = grants.every(s.db)
    lines = []
    for role in sorted(_known_roles(s)):
        holders = [f"{who} (podbot.yaml)" for who in s.cfg.roles.get(role, [])]
        holders += [f"{g.identity} (granted)" for g in granted if g.role == role]
        if role == s.cfg.default_role:
            holders.append("everyone (default role)")
        admin = " [admin]" if role in s.cfg.admin_roles else ""
        lines.append(f"{role}{admin}: {', '.join(holders) or 'nobody'}")
    return say(msg, "command", f"{len(lines)} roles:", "\n".join(lines))


def _grants(s: Services, msg: Message, roles: frozenset[str], rest: str) -> Decision:
    granted = grants.every(s.db)
    if not granted:
        return say(msg, "command", "No granted roles; /grant IDENTITY ROLE adds one.")
    lines = [f"{g.identity} {g.role} — by {g.by}, {time.strftime('%Y-%m-%d %H:%M', time.localtime(g.created))}" for g in granted]
    return say(msg, "command", f"{len(lines)} granted roles:", "\n".join(lines))


def _reload(s: Services, msg: Message, roles: frozenset[str], rest: str) -> Decision:
    problems = s.catalog.reload()
    detail = f"{len(problems)} errors"
    if problems:
        text = f"Manifests have {len(problems)} errors; keeping the last good set ({len(s.catalog)} skills)."
        return say(msg, "reload", text, "\n".join(map(str, problems)), detail=detail)
    return say(msg, "reload", f"Reloaded {len(s.catalog)} skills: {', '.join(sorted(s.catalog.skills))}.", detail=detail)


def _schedules(s: Services, msg: Message, roles: frozenset[str], rest: str) -> Decision:
    words = rest.split()
    if len(words) == 2 and words[0] == "run":
        return _run_schedule(s, msg, words[1])
    if len(words) == 2 and words[0] in ("pause", "resume"):
        if not schedules.set_paused(s.db, words[1], words[0] == "pause", time.time()):
            return say(msg, "command", f"There is no schedule {words[1]}; /schedules lists them.")
        text = f"Schedule {words[1]} {'paused' if words[0] == 'pause' else 'resumed'}."
        return say(msg, f"schedule_{words[0]}", text, detail=words[1])
    if words:
        return say(msg, "command", "usage: /schedules [run NAME | pause NAME | resume NAME]")
    rows = scheduled.listing(s.catalog, s.db, time.time())
    if not rows:
        return say(msg, "command", "No schedules.")
    lines = [
        f"{r.name} — {r.skill} — {r.cron}{' ' + r.timezone if r.timezone else ''} — " + ("paused" if r.paused else _next(r.next_run))
        for r in rows
    ]
    return say(msg, "command", f"{len(rows)} schedules:", "\n".join(lines))


def _run_schedule(s: Services, msg: Message, name: str) -> Decision:
    """Run an entry now, as its identity and through a fire's checks; the result goes where the entry's results go."""
    found = scheduled.find(s.catalog, name)
    if found is None:
        return say(msg, "command", f"There is no schedule {name[:100]}; /schedules lists them.")
    skill, entry = found
    try:
        job, notices = scheduled.job_for(s.cfg, s.db, skill, entry)
    except Refusal as exc:
        return say(
            msg, exc.outcome, f"Schedule {name} did not run {skill.name}: {exc}.", skill=skill.name, detail=f"schedule {name}: {exc}"
        )
    if notices:
        told = answer(msg, f"job {job.id} awaits approval: {request(skill.name, job.args)} (schedule {name}, as {entry.identity})")
        return Decision("awaiting_approval", (told, *notices), skill.name, job.id, f"schedule {name} as {entry.identity}")
    text = (
        f"job {job.id} queued: {request(skill.name, job.args)} (schedule {name}, as {entry.identity}); the result goes to {entry.reply_to}"
    )
    return say(msg, "schedule_run", text, skill=skill.name, job_id=job.id, detail=f"{name} as {entry.identity}", enqueue=(job.id,))


COMMANDS: dict[str, Command] = {
    c.name: c
    for c in [
        Command("help", "[SKILL]", "how to talk to me; /help SKILL explains a skill", _help),
        Command("skills", "", "the skills you may run", _skills),
        Command("whoami", "", "your identity and roles", _whoami),
        Command("jobs", "[all|failed]", "your latest jobs (admins: all, or all failed)", _jobs),
        Command("job", "ID", "one job: state, attempts, exit code, output", _job),
        Command("approve", "ID", "let a job that awaits your approval run", _approve),
        Command("deny", "ID [reason]", "refuse a job that awaits your approval", _deny),
        Command("cancel", "ID", "stop your job that awaits approval, is queued or running (admins: anyone's) and its container", _cancel),
        Command("audit", "[N]", "the latest N audit entries", _audit, admin=True),
        Command("grant", "IDENTITY ROLE", "give a person a role (kept in the database)", _grant, admin=True),
        Command("revoke", "IDENTITY ROLE", "take back a granted role", _revoke, admin=True),
        Command("reload", "", "re-read the manifests (errors keep the last good set)", _reload, admin=True),
        Command("schedules", "[run|pause|resume NAME]", "cron schedules and their next run; run one now", _schedules, admin=True),
        Command("roles", "", "who has which role (podbot.yaml and grants)", _roles, admin=True),
        Command("grants", "", "the roles granted with /grant", _grants, admin=True),
    ]
}


def _next(when: float | None) -> str:
    return f"next {time.strftime('%Y-%m-%d %H:%M', time.localtime(when))}" if when is not None else "no run within a year"


def denied(s: Services, roles: frozenset[str], name: str) -> str | None:
    """Why someone with `roles` may not use the command `name` (in chat, or its equivalent in the gateway's API); None if they may."""
    return admins_only(s, roles, f"/{name}") if COMMANDS[name].admin and not rbac.is_admin(s.cfg, roles) else None


def run(s: Services, msg: Message, roles: frozenset[str], name: str, rest: str) -> Decision | None:
    """Run built-in command `name`, or None if there is no such command."""
    command = COMMANDS.get(name)
    if command is None:
        return None
    if (why := denied(s, roles, name)) is not None:
        return say(msg, "denied", why, detail=f"/{name}")
    decision = command.handler(s, msg, roles, rest)
    return decision if decision.detail else replace(decision, detail=msg.text[:200])
