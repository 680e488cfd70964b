"""One message in, immediate replies out: roles → built-ins → route → arguments → authorize → enqueue.

Plain Python over `Message`; adapters call it through `Bot.receive`. Every
decision is audited. The job's result arrives later, through the outbox.
"""

from __future__ import annotations

import logging

from bot import audit, commands, ledger, rbac
from bot.context import Context
from bot.models import JobState, Message, Reply, answer
from bot.router import ArgumentError, complete, route, split_command

log = logging.getLogger(__name__)

MAX_TEXT = 4000


def _unknown(ctx: Context, msg: Message, roles: frozenset[str], what: str) -> list[Reply]:
    mine = sorted(m.name for m in rbac.runnable(ctx.cfg, roles, ctx.skills))
    audit.record(ctx.db, msg.user, msg.conversation, "unknown", detail=msg.text[:200])
    can = ", ".join(mine) if mine else "nothing yet"
    return [answer(msg, f"{what} You can run: {can}. /skills shows how, /help explains.")]


def handle(ctx: Context, msg: Message) -> list[Reply]:
    text = msg.text.strip()
    if not text:
        return []
    if len(text) > MAX_TEXT:
        audit.record(ctx.db, msg.user, msg.conversation, "rejected", detail=f"message of {len(text)} characters")
        return [answer(msg, f"That message is too long ({len(text)} characters; the limit is {MAX_TEXT}).")]
    roles = rbac.roles_of(ctx.cfg, msg.user)

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
        return _unknown(ctx, msg, roles, "I don't know how to do that.")
    skill = found.skill
    audit.record(ctx.db, msg.user, msg.conversation, "routed", skill.name, detail=f"via {found.via}: {found.args}")

    try:
        args = complete(skill, found.args)
    except ArgumentError as exc:
        audit.record(ctx.db, msg.user, msg.conversation, "invalid_arguments", skill.name, detail=str(exc))
        return [answer(msg, str(exc))]

    if not rbac.may_run(ctx.cfg, roles, skill):
        job = ledger.create(ctx.db, skill.name, args, msg.user, msg.conversation, msg.thread, state=JobState.DENIED)
        needed = ", ".join(sorted(skill.roles | ctx.cfg.admin_roles))
        audit.record(
            ctx.db, msg.user, msg.conversation, "denied", skill.name, job.id, f"needs one of {needed}; has {', '.join(sorted(roles))}"
        )
        return [answer(msg, f"Denied: {skill.name} needs the role {needed}; you have {', '.join(sorted(roles))}.", job_id=job.id)]
    if skill.network and not ctx.cfg.allow_network:
        audit.record(ctx.db, msg.user, msg.conversation, "refused", skill.name, detail="network not allowed by config")
        return [answer(msg, f"{skill.name} needs network access, which this bot's config does not allow (allow_network).")]

    reply_to = ctx.cfg.alert_conversation if skill.reply_to == "alerts" else skill.reply_to
    job = ledger.create(ctx.db, skill.name, args, msg.user, msg.conversation, msg.thread, reply_to)
    ctx.enqueue(job.id)
    audit.record(ctx.db, msg.user, msg.conversation, "enqueued", skill.name, job.id, str(args))
    shown = " ".join(f"{k}={v}" for k, v in args.items())
    where = f"; the result goes to {reply_to}" if reply_to and reply_to != msg.conversation else ""
    return [answer(msg, f"job {job.id} queued: {skill.name} {shown}".rstrip() + where, job_id=job.id)]
