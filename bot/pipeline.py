"""One message in, immediate replies out.

roles → an answer the bot was waiting for? → built-in command → route →
authorize → ask for a missing argument → validate → confirm → enqueue.

Authorization comes before argument checks and questions: a person who may not
run a skill learns nothing about its arguments and is never asked for them.
Plain Python over `Message`; adapters call it through `Bot.receive`. Every
decision is audited. A job's result arrives later, through the outbox.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from bot import audit, commands, ledger, pending, rbac
from bot.context import Context
from bot.manifest import Manifest
from bot.models import JobState, Message, Reply, answer, request
from bot.router import ArgumentError, coerce, complete, route, split_command

log = logging.getLogger(__name__)

MAX_TEXT = 4000
YES = {"yes", "y", "confirm", "ok", "/confirm", "/yes"}


def _unknown(ctx: Context, msg: Message, roles: frozenset[str], what: str) -> list[Reply]:
    mine = sorted(m.name for m in rbac.runnable(ctx.cfg, roles, ctx.skills))
    audit.record(ctx.db, msg.user, msg.conversation, "unknown", detail=msg.text[:200])
    can = ", ".join(mine) if mine else "nothing yet"
    return [answer(msg, f"{what} You can run: {can}. /skills shows how, /help explains.")]


def _resume(ctx: Context, msg: Message, roles: frozenset[str], waiting: pending.Pending, text: str) -> list[Reply] | None:
    """Handle the answer to a confirmation or a question; None when the text is something new."""
    skill = ctx.skills.get(waiting.skill)
    if waiting.kind == pending.CONFIRM:
        if text.lower() in YES and skill is not None:
            audit.record(ctx.db, msg.user, msg.conversation, "confirmed", skill.name)
            return decide(ctx, msg, roles, skill, waiting.args, confirmed=True)
        audit.record(ctx.db, msg.user, msg.conversation, "cancelled", waiting.skill, detail="not confirmed")
        return [answer(msg, f"Cancelled {request(waiting.skill, waiting.args)}.")]
    if text.startswith("/") or skill is None or waiting.missing is None:
        return None
    args = {**waiting.args, waiting.missing: coerce(text, skill.properties.get(waiting.missing, {}))}
    return decide(ctx, msg, roles, skill, args)


def handle(ctx: Context, msg: Message) -> list[Reply]:
    text = msg.text.strip()
    if not text:
        return []
    if len(text) > MAX_TEXT:
        audit.record(ctx.db, msg.user, msg.conversation, "rejected", detail=f"message of {len(text)} characters")
        return [answer(msg, f"That message is too long ({len(text)} characters; the limit is {MAX_TEXT}).")]
    roles = rbac.roles_of(ctx.cfg, msg.user, ctx.db)

    waiting = pending.take(ctx.db, msg.conversation, msg.user)
    if waiting is not None:
        replies = _resume(ctx, msg, roles, waiting, text)
        if replies is not None:
            return replies

    command = split_command(text)
    if command and command[0] not in ctx.skills:
        replies = commands.run(ctx, msg, roles, *command)
        if replies is not None:
            audit.record(ctx.db, msg.user, msg.conversation, "command", detail=text[:200])
            return replies
        return _unknown(ctx, msg, roles, f"I don't know /{command[0]}.")

    try:
        found = route(text, ctx.skills)
    except ArgumentError as exc:
        audit.record(ctx.db, msg.user, msg.conversation, "invalid_arguments", detail=str(exc))
        return [answer(msg, str(exc))]
    if found is None:
        # Free text: understood among the skills this person may run, never the others.
        understood = ctx.understanding.understand(text, rbac.runnable(ctx.cfg, roles, ctx.skills)) if ctx.understanding else None
        if understood is None or understood.skill is None:
            log.info("not understood: %r (%s)", text[:80], understood.note if understood else "no understanding stage")
            return _unknown(ctx, msg, roles, "I don't know how to do that.")
        detail = f"via {understood.via}: {understood.args} ({understood.note})"
        audit.record(ctx.db, msg.user, msg.conversation, "routed", understood.skill.name, detail=detail)
        return decide(ctx, msg, roles, understood.skill, understood.args)
    audit.record(ctx.db, msg.user, msg.conversation, "routed", found.skill.name, detail=f"via {found.via}: {found.args}")
    return decide(ctx, msg, roles, found.skill, found.args)


def decide(
    ctx: Context, msg: Message, roles: frozenset[str], skill: Manifest, args: dict[str, Any], confirmed: bool = False
) -> list[Reply]:
    """From a chosen skill and its arguments to a queued job, a question, or a one-line refusal."""
    if not rbac.may_run(ctx.cfg, roles, skill):
        job = ledger.create(ctx.db, skill.name, args, msg.user, msg.conversation, msg.thread, state=JobState.DENIED)
        needed = ", ".join(sorted(skill.roles | ctx.cfg.admin_roles))
        has = ", ".join(sorted(roles))
        audit.record(ctx.db, msg.user, msg.conversation, "denied", skill.name, job.id, f"needs one of {needed}; has {has}")
        return [answer(msg, f"Denied: {skill.name} needs the role {needed}; you have {has}.", job_id=job.id)]

    missing = skill.missing(args)
    if missing:
        name = missing[0]
        item = pending.Pending(msg.conversation, msg.user, pending.ASK, skill.name, args, name, msg.thread)
        pending.put(ctx.db, item, ctx.cfg.answer_timeout)
        audit.record(ctx.db, msg.user, msg.conversation, "asked", skill.name, detail=f"missing {name}")
        hint = skill.properties.get(name, {}).get("description")
        return [answer(msg, f"Which {name} for {skill.name}?" + (f" ({hint})" if hint else ""))]

    try:
        args = complete(skill, args)
    except ArgumentError as exc:
        audit.record(ctx.db, msg.user, msg.conversation, "invalid_arguments", skill.name, detail=str(exc))
        return [answer(msg, str(exc))]

    if skill.network and not ctx.cfg.allow_network:
        audit.record(ctx.db, msg.user, msg.conversation, "refused", skill.name, detail="network not allowed by config")
        return [answer(msg, f"{skill.name} needs network access, which this bot's config does not allow (allow_network).")]

    if skill.cache:
        hit = ledger.cached(ctx.db, skill.name, args, time.time() - skill.cache)
        if hit is not None:
            age = time.time() - hit.finished
            audit.record(ctx.db, msg.user, msg.conversation, "cached", skill.name, hit.id, f"{age:.0f} s old")
            return [
                answer(
                    msg,
                    f"{request(skill.name, args)}: from job {hit.id}, {age:.0f} s ago (cached, no new run)",
                    hit.output or None,
                )
            ]

    limit = ctx.cfg.rate_limit
    started = ledger.recent_count(ctx.db, msg.user, time.time() - limit.per)
    if started >= limit.jobs:
        audit.record(ctx.db, msg.user, msg.conversation, "rate_limited", skill.name, detail=f"{started} jobs in {limit.per:.0f} s")
        return [
            answer(msg, f"Slow down: you started {started} jobs in the last {limit.per:.0f} s (limit {limit.jobs}). Try again shortly.")
        ]

    if skill.confirm and not confirmed:
        item = pending.Pending(msg.conversation, msg.user, pending.CONFIRM, skill.name, args, None, msg.thread)
        pending.put(ctx.db, item, ctx.cfg.answer_timeout)
        audit.record(ctx.db, msg.user, msg.conversation, "confirm_requested", skill.name, detail=str(args))
        return [
            answer(
                msg, f"Run {request(skill.name, args)}? Reply yes within {ctx.cfg.answer_timeout:.0f} s to confirm; anything else cancels."
            )
        ]

    reply_to = ctx.cfg.alert_conversation if skill.reply_to == "alerts" else skill.reply_to
    job = ledger.create(ctx.db, skill.name, args, msg.user, msg.conversation, msg.thread, reply_to)
    ctx.enqueue(job.id)
    audit.record(ctx.db, msg.user, msg.conversation, "enqueued", skill.name, job.id, str(args))
    where = f"; the result goes to {reply_to}" if reply_to and reply_to != msg.conversation else ""
    return [answer(msg, f"job {job.id} queued: {request(skill.name, args)}" + where, job_id=job.id)]
