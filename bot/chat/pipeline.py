"""One message in, one decision out.

roles → an answer the bot was waiting for? → built-in command → route →
authorize → ask for a missing argument → validate → confirm → a ledger job
(queued, or awaiting approval: bot.chat.approvals).

Authorization comes before argument checks and questions: a person who may not
run a skill learns nothing about its arguments and is never asked for them
(an explicit `/skill args` is authorized before its arguments are even read).
Plain Python over `Message`: every step returns a `Decision` (or raises a
`Refusal`, which becomes one); `bot.app.Bot.receive` runs it in one database
transaction, audits it, puts its replies in the outbox, and hands its jobs to
the queue once that is committed. A job's result arrives later, through the outbox.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from bot.chat import approvals, commands, rbac
from bot.chat.decision import Decision, say
from bot.chat.routing import explicit, match_pattern, parse_args, split_command
from bot.chat.services import Services
from bot.errors import Refusal
from bot.flow import JobState, Message, answer, request
from bot.skill import Skill, coerce, complete
from bot.store import ledger, pending
from bot.understanding.stages import Understood

log = logging.getLogger(__name__)

MAX_TEXT = 4000
YES = {"yes", "y", "confirm", "ok", "/confirm", "/yes"}
IGNORED = Decision("ignored")  # nothing to answer (an empty message); not audited


def handle(s: Services, msg: Message) -> Decision:
    try:
        return _handle(s, msg)
    except Refusal as exc:
        return say(msg, exc.outcome, str(exc), detail=str(exc))


def _handle(s: Services, msg: Message) -> Decision:
    text = msg.text.strip()
    if not text:
        return IGNORED
    if len(text) > MAX_TEXT:
        reply = f"That message is too long ({len(text)} characters; the limit is {MAX_TEXT})."
        return say(msg, "rejected", reply, detail=f"message of {len(text)} characters")
    roles = rbac.roles_of(s.cfg, msg.user, s.db)

    waiting = pending.take(s.db, msg.conversation, msg.user)
    if waiting is not None:
        resumed = _resume(s, msg, roles, waiting, text)
        if resumed is not None:
            return resumed

    called = explicit(text, s.catalog.skills)
    if called is not None:
        return _explicit(s, msg, roles, *called)
    command = split_command(text)
    if command:
        done = commands.run(s, msg, roles, *command)
        return done if done is not None else _unknown(s, msg, roles, f"I don't know /{command[0]}.")

    found = match_pattern(text, s.catalog.skills)
    if found is not None:
        return decide(s, msg, roles, found.skill, found.args, via=f"via {found.via}: {found.args}")
    # Free text: understood among the skills this person may run, never the others.
    understood = s.understanding.understand(text, rbac.runnable(s.cfg, roles, s.catalog)) if s.understanding else None
    if understood is None:
        log.info("not understood: %r (no understanding stage)", text[:80])
        return _unknown(s, msg, roles, "I don't know how to do that.")
    return act_on(s, msg, roles, understood)


def act_on(s: Services, msg: Message, roles: frozenset[str], understood: Understood) -> Decision:
    """Free text understood: decide on its skill, unless nothing fits, or a question would follow a choice that is not sure."""
    skill = understood.skill
    if skill is None:
        log.info("not understood: %r (%s)", msg.text[:80], understood.note)
        return _unknown(s, msg, roles, "I don't know how to do that.")
    missing = skill.missing(understood.args)
    if missing and not understood.confident:
        # Asking "Which file for tail_log?" after "please restart nginx" is worse than saying we did not understand.
        log.info("not sure enough to ask: %r (%s)", msg.text[:80], understood.note)
        what = f"I'm not sure what you mean. If you want {skill.name}, say which {missing[0]}, or use /{skill.name}."
        return _unknown(s, msg, roles, what)
    via = f"via {understood.via}: {understood.args} ({understood.note})"
    return decide(s, msg, roles, skill, understood.args, via=via)


def _looks_new(s: Services, roles: frozenset[str], asked: Skill, text: str) -> bool:
    """An answer to a question that a pattern claims, or that confidently asks for another skill, is a new request."""
    if match_pattern(text, s.catalog.skills) is not None:
        return True
    if s.understanding is None:
        return False
    understood = s.understanding.understand(text, rbac.runnable(s.cfg, roles, s.catalog), fill=False)
    return understood.skill is not None and understood.skill.name != asked.name and understood.confident


def _explicit(s: Services, msg: Message, roles: frozenset[str], skill: Skill, rest: str) -> Decision:
    """`/skill args`: whoever may not run the skill is told so, whatever the arguments say."""
    if not rbac.may_run(s.cfg, roles, skill):
        typed = "(not shown: it may hold a secret)" if skill.secret_params else rest[:200]
        return _denied(s, msg, roles, skill, {}, f"via command: {typed}; ")
    try:
        args = parse_args(skill, rest)
    except Refusal as exc:
        return _refused(msg, exc, skill, "via command")
    return decide(s, msg, roles, skill, args, via=f"via command: {args}")


def _unknown(s: Services, msg: Message, roles: frozenset[str], what: str) -> Decision:
    mine = sorted(m.name for m in rbac.runnable(s.cfg, roles, s.catalog))
    can = ", ".join(mine) if mine else "nothing yet"
    return say(msg, "unknown", f"{what} You can run: {can}. /skills shows how, /help explains.", detail=msg.text[:200])


def _resume(s: Services, msg: Message, roles: frozenset[str], waiting: pending.Pending, text: str) -> Decision | None:
    """Handle the answer to a confirmation or a question; None when the text is something new."""
    skill = s.catalog.get(waiting.skill)
    if waiting.kind == pending.CONFIRM:
        if text.lower() in YES and skill is not None:
            return decide(s, msg, roles, skill, waiting.args, via="confirmed", confirmed=True)
        return say(msg, "cancelled", f"Cancelled {request(waiting.skill, waiting.args)}.", skill=waiting.skill, detail="not confirmed")
    if text.startswith("/") or skill is None or waiting.missing is None or _looks_new(s, roles, skill, text):
        return None
    args = {**waiting.args, waiting.missing: coerce(text, skill.properties.get(waiting.missing, {}))}
    return decide(s, msg, roles, skill, args, via=f"answer for {waiting.missing}")


def decide(
    s: Services, msg: Message, roles: frozenset[str], skill: Skill, args: dict[str, Any], via: str = "", confirmed: bool = False
) -> Decision:
    """From a chosen skill and its arguments to a queued job, a question, or a one-line refusal."""
    secret = skill.secret_params & args.keys()
    if secret:  # sealed before anything below stores or shows them
        plain = s.vault.unseal_args(args, secret)
        via = s.vault.redact(via, [str(plain[name]) for name in secret])
        args = s.vault.seal_args(secret, plain)
    try:
        return _decide(s, msg, roles, skill, args, confirmed, via)
    except Refusal as exc:
        return _refused(msg, exc, skill, via)


def _refused(msg: Message, exc: Refusal, skill: Skill, via: str) -> Decision:
    return say(msg, exc.outcome, str(exc), skill=skill.name, detail=f"{via}; {exc}" if via else str(exc))


def _denied(s: Services, msg: Message, roles: frozenset[str], skill: Skill, args: dict[str, Any], why: str) -> Decision:
    """The one answer to a person who may not run `skill`; the ledger keeps the attempt as a denied job."""
    job = ledger.create(s.db, skill.name, args, msg.user, msg.conversation, msg.thread, state=JobState.DENIED)
    needed = ", ".join(sorted(skill.roles | s.cfg.admin_roles))
    has = ", ".join(sorted(roles))
    reply = f"Denied: {skill.name} needs the role {needed}; you have {has}."
    return say(msg, "denied", reply, skill=skill.name, job_id=job.id, detail=f"{why}needs one of {needed}; has {has}")


def _decide(s: Services, msg: Message, roles: frozenset[str], skill: Skill, args: dict[str, Any], confirmed: bool, via: str) -> Decision:
    cfg = s.cfg
    why = f"{via}; " if via else ""
    if not rbac.may_run(cfg, roles, skill):
        return _denied(s, msg, roles, skill, args, why)

    missing = skill.missing(args)
    if missing:
        name = missing[0]
        pending.put(s.db, pending.Pending(msg.conversation, msg.user, pending.ASK, skill.name, args, name, msg.thread), cfg.answer_timeout)
        hint = skill.properties.get(name, {}).get("description")
        reply = f"Which {name} for {skill.name}?" + (f" ({hint})" if hint else "")
        return say(msg, "asked", reply, skill=skill.name, detail=f"{why}missing {name}")

    args = {**complete(skill, s.vault.unseal_args(args, skill.secret_params)), **args}  # the values are checked; sealed ones stay sealed

    if skill.network and not cfg.allow_network:
        raise Refusal(f"{skill.name} needs network access, which this bot's config does not allow (allow_network).")

    if skill.cache:
        hit = ledger.cached(s.db, skill.name, args, time.time() - skill.cache)
        if hit is not None and hit.finished is not None:
            age = time.time() - hit.finished
            reply = f"{request(skill.name, args)}: from job {hit.id}, {age:.0f} s ago (cached, no new run)"
            # The audit names the job answered from; the reply does not, as it announces no run of its own.
            return Decision("cached", (answer(msg, reply, hit.output or None),), skill.name, hit.id, f"{why}{age:.0f} s old")

    limit = cfg.rate_limit
    started = ledger.recent_count(s.db, msg.user, time.time() - limit.per)
    if started >= limit.jobs:
        reply = f"Slow down: you started {started} jobs in the last {limit.per:.0f} s (limit {limit.jobs}). Try again shortly."
        return say(msg, "rate_limited", reply, skill=skill.name, detail=f"{why}{started} jobs in {limit.per:.0f} s")

    if skill.confirm and not confirmed:
        item = pending.Pending(msg.conversation, msg.user, pending.CONFIRM, skill.name, args, None, msg.thread)
        pending.put(s.db, item, cfg.answer_timeout)
        reply = f"Run {request(skill.name, args)}? Reply yes within {cfg.answer_timeout:.0f} s to confirm; anything else cancels."
        return say(msg, "confirm_requested", reply, skill=skill.name, detail=f"{why}{args}")

    reply_to = cfg.alert_conversation if skill.reply_to == "alerts" else skill.reply_to
    if skill.approval is not None:
        job, replies = approvals.ask(cfg, s.db, skill, skill.approval, args, msg.user, msg.conversation, msg.thread, reply_to)
        return Decision("awaiting_approval", replies, skill.name, job.id, f"{why}{args}")
    job = ledger.create(s.db, skill.name, args, msg.user, msg.conversation, msg.thread, reply_to)
    log.info("job %s %s queued for %s", job.id, request(skill.name, args), msg.user)
    where = f"; the result goes to {reply_to}" if reply_to and reply_to != msg.conversation else ""
    reply = f"job {job.id} queued: {request(skill.name, args)}" + where
    return say(msg, "enqueued", reply, skill=skill.name, job_id=job.id, detail=f"{why}{args}", enqueue=(job.id,))
