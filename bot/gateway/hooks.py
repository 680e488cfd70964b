"""Inbound webhooks: `POST /api/v1/hooks/NAME` with an HMAC-signed body runs a configured skill as a configured identity.

A hook is for programs that cannot hold a conversation (Alertmanager, CI): the
config names the skill, the identity it runs as (whose roles are checked like a
person's), fixed arguments, the parameter that gets the body, and where the
result goes. The request is signed like Slack's: `X-Podbot-Timestamp: UNIX
SECONDS` and `X-Podbot-Signature: sha256=HEX`, the HMAC-SHA256 of
`TIMESTAMP.BODY` with the hook's secret `HOOK_<NAME>_SECRET` (environment or
platforms.secrets_file). A timestamp more than SKEW seconds away is refused, so
a captured request cannot be replayed later, and a signature already accepted
within that window is refused too, so it cannot be replayed sooner. The job goes through the same
authorization, ledger, audit and queue as a scheduled run.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bot.app import Bot
from bot.chat import rbac
from bot.errors import ArgumentError
from bot.flow import JobState, clean
from bot.skill import complete
from bot.store import audit, ledger

log = logging.getLogger(__name__)

SKEW = 300.0  # seconds a signed request's timestamp may differ from our clock


@dataclass(frozen=True)
class Hook:
    name: str
    skill: str
    identity: str
    reply_to: str
    args: dict[str, Any] = field(default_factory=dict)
    body_arg: str | None = None
    secret: str | None = None  # None: not set anywhere, so every request is refused


def secret_name(hook: str) -> str:
    return f"HOOK_{hook.upper().replace('-', '_')}_SECRET"


def configured(
    settings: dict[str, dict[str, Any]], alert_conversation: str, secrets: Callable[[list[str]], dict[str, str]]
) -> dict[str, Hook]:
    """The hooks of `gateway.hooks`, each with its secret (looked up by `secrets(names)`)."""
    found = secrets([secret_name(name) for name in settings])
    hooks = {}
    for name, data in settings.items():
        hooks[name] = Hook(
            name,
            data["skill"],
            data["as"],
            data.get("reply_to", alert_conversation),
            dict(data.get("args", {})),
            data.get("body_arg"),
            found.get(secret_name(name)),
        )
        if hooks[name].secret is None:
            log.warning("hook %s: %s is not set; its requests are refused", name, secret_name(name))
    return hooks


def signature(secret: str, timestamp: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def unsigned(hook: Hook | None, timestamp: str, given: str, body: bytes, now: float | None = None) -> str | None:
    """Why the request must be refused (for the audit log), or None when it is signed by the hook's secret, recently."""
    if hook is None:
        return "no such hook"
    if hook.secret is None:
        return f"{secret_name(hook.name)} is not set"
    try:
        sent = float(timestamp)
    except ValueError:
        return "no timestamp"
    now = time.time() if now is None else now
    if abs(now - sent) > SKEW:
        return f"timestamp {sent:.0f} is more than {SKEW:.0f} s away"
    if not hmac.compare_digest(signature(hook.secret, timestamp, body), given):
        return "bad signature"
    return None


class Replays:
    """Requests (a hook's name and signature) accepted within the last 2 × SKEW seconds (a timestamp may be SKEW off
    either way); used on the event loop only."""

    def __init__(self) -> None:
        self._until: dict[str, float] = {}

    def first_time(self, request: str, now: float | None = None) -> bool:
        now = time.time() if now is None else now
        self._until = {seen: until for seen, until in self._until.items() if until > now}
        if request in self._until:
            return False
        self._until[request] = now + 2 * SKEW
        return True


@dataclass(frozen=True)
class Outcome:
    status: int
    body: dict[str, Any]


def run(bot: Bot, hook: Hook, body: bytes) -> Outcome:
    """Authorize, record and queue the hook's job (blocking): what it writes is one transaction, queued once committed."""
    where = hook.reply_to
    with bot.db.transaction():
        skill = bot.catalog.get(hook.skill)
        if skill is None:
            audit.record(bot.db, hook.identity, where, "unknown_skill", hook.skill, detail=f"hook {hook.name}")
            return Outcome(404, {"error": f"hook {hook.name}: there is no skill {hook.skill}"})
        if not rbac.may_run(bot.cfg, rbac.roles_of(bot.cfg, hook.identity, bot.db), skill):
            audit.record(bot.db, hook.identity, where, "denied", skill.name, detail=f"hook {hook.name}")
            return Outcome(403, {"error": f"{hook.identity} may not run {skill.name}"})
        args = dict(hook.args)
        if hook.body_arg is not None:
            args[hook.body_arg] = clean(body.decode("utf-8", "replace"))
        try:
            args = complete(skill, args)
        except ArgumentError as exc:
            audit.record(bot.db, hook.identity, where, "invalid_arguments", skill.name, detail=f"hook {hook.name}: {exc}")
            return Outcome(400, {"error": str(exc)})
        job = ledger.create(bot.db, skill.name, args, hook.identity, where, state=JobState.QUEUED)
        audit.record(bot.db, hook.identity, where, "hook", skill.name, job.id, f"hook {hook.name}")
    bot.queue.enqueue(job.id, 0.0)  # should this fail, recovery queues the job again: it is in the ledger
    return Outcome(202, {"job_id": job.id})
