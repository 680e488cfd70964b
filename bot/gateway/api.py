"""The REST API under /api/v1: what a person can ask in chat, for programs, with the chat's rules.

Each route names the token scope it needs; the server has checked the token
before a handler runs. What the token's identity may see or do is then decided
as in chat: its own jobs (everyone's for admins, as `/jobs all`), one job if it
is theirs (`/job`), cancelling (`/cancel`), schedules (`/schedules`) and the
audit log (`/audit`) only where the chat command is allowed, and approvals as
`/approve` and `/deny` decide them (bot.chat.approvals). A message, a cancel and
a decision go through `Bot.receive` as chat messages do, so they are audited and
answered in the identity's conversation too. Handlers are synchronous (SQLite)
and run off the event loop.
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bot.app import Bot
from bot.chat import approvals, commands, rbac, scheduled
from bot.errors import ArgumentError
from bot.flow import Job, JobState, Message, Reply
from bot.flow import request as as_said
from bot.gateway.tokens import Grant
from bot.store import approvals as decisions
from bot.store import audit, ledger, outbox

VERSION = "1"
MAX_LIMIT = 100


class BadRequest(Exception):
    """A request whose parameters cannot be used: 400 with this text."""


@dataclass(frozen=True)
class Request:
    """What a handler gets from an HTTP request: the path's {names}, the query and the JSON body."""

    path: dict[str, str] = field(default_factory=dict)
    query: dict[str, str] = field(default_factory=dict)
    body: Any = None


@dataclass(frozen=True)
class Answer:
    status: int
    body: Any


def error(status: int, text: str) -> Answer:
    return Answer(status, {"error": text})


Handler = Callable[["Api", Grant, Request], Answer]


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # under /api/v1
    scope: str  # the token scope it needs
    summary: str
    handler: Handler


def job_json(job: Job) -> dict[str, Any]:
    shown = {
        "id",
        "skill",
        "args",
        "requester",
        "conversation",
        "state",
        "created",
        "started",
        "finished",
        "exit_code",
        "output",
        "attempts",
    }
    return {k: v for k, v in dataclasses.asdict(job).items() if k in shown}


def reply_json(reply: Reply) -> dict[str, Any]:
    return {"text": reply.text, "code": reply.code, "job_id": reply.job_id}


def approval_json(job: Job, rule: decisions.Approval) -> dict[str, Any]:
    return {
        "id": job.id,
        "skill": job.skill,
        "request": as_said(job.skill, job.args),  # the args as chat shows them
        "requester": job.requester,
        "created": job.created,
        "deadline": rule.deadline,
        "roles": sorted(rule.roles),
    }


class Api:
    def __init__(self, bot: Bot):
        self.bot = bot

    def _roles(self, grant: Grant) -> frozenset[str]:
        return rbac.roles_of(self.bot.cfg, grant.identity, self.bot.db)

    def _denied(self, grant: Grant, why: str, what: str) -> Answer:
        audit.record(self.bot.db, grant.identity, grant.identity, "denied", detail=f"API {what}")
        return error(403, why)

    def _say(self, grant: Grant, text: str) -> list[Reply]:
        name = grant.identity.split(":", 1)[1]
        return self.bot.receive(Message("web", grant.identity, grant.identity, text, name, message_id=uuid.uuid4().hex))

    def post_message(self, grant: Grant, request: Request) -> Answer:
        text = request.body.get("text") if isinstance(request.body, dict) else None
        if not isinstance(text, str) or not text.strip():
            return error(400, 'the body is {"text": "what you would type in chat"}')
        return Answer(200, {"replies": [reply_json(r) for r in self._say(grant, text)]})

    def list_jobs(self, grant: Grant, request: Request) -> Answer:
        which = request.query.get("which", "mine")
        if which not in ("mine", "all", "failed"):
            return error(400, "which is mine, all or failed")
        limit = _number(request.query.get("limit", "10"), MAX_LIMIT, "limit")
        roles = self._roles(grant)
        if which != "mine" and not rbac.is_admin(self.bot.cfg, roles):
            return self._denied(grant, commands.admins_only(self.bot.services, roles, f"/jobs {which}"), f"jobs {which}")
        states = [JobState.FAILED, JobState.TIMED_OUT] if which == "failed" else None
        jobs = ledger.recent(self.bot.db, limit, grant.identity if which == "mine" else None, states)
        return Answer(200, {"jobs": [job_json(j) for j in jobs]})

    def get_job(self, grant: Grant, request: Request) -> Answer:
        job_id = _number(request.path["id"], commands.MAX_JOB_ID, "a job id")
        job = ledger.get(self.bot.db, job_id)
        if job is None or (job.requester != grant.identity and not rbac.is_admin(self.bot.cfg, self._roles(grant))):
            return error(404, f"There is no job {job_id} of yours.")
        return Answer(200, job_json(job))

    def cancel_job(self, grant: Grant, request: Request) -> Answer:
        job_id = _number(request.path["id"], commands.MAX_JOB_ID, "a job id")
        if (why := commands.denied(self.bot.services, self._roles(grant), "cancel")) is not None:
            return self._denied(grant, why, f"cancel {job_id}")
        before = ledger.get(self.bot.db, job_id)
        [answer] = self._say(grant, f"/cancel {job_id}")
        job = ledger.get(self.bot.db, job_id)
        theirs = before is not None and (before.requester == grant.identity or rbac.is_admin(self.bot.cfg, self._roles(grant)))
        if not theirs or job is None:  # as in chat: someone else's job is not there for you
            return error(404, answer.text)
        if before is None or before.state.terminal or job.state != JobState.CANCELLED:
            return error(409, answer.text)
        return Answer(200, job_json(job))

    def approve_job(self, grant: Grant, request: Request) -> Answer:
        return self._decide(grant, request, True)

    def deny_job(self, grant: Grant, request: Request) -> Answer:
        return self._decide(grant, request, False)

    def _decide(self, grant: Grant, request: Request, approved: bool) -> Answer:
        """`/approve ID` or `/deny ID [reason]` said in chat; the status follows what chat answered."""
        job_id = _number(request.path["id"], commands.MAX_JOB_ID, "a job id")
        reason = request.body.get("reason", "") if isinstance(request.body, dict) else ""
        if request.body is not None and (not isinstance(request.body, dict) or not isinstance(reason, str)):
            return error(400, 'the body is {"reason": "why"}, or none')
        before = ledger.get(self.bot.db, job_id)
        asked = decisions.get(self.bot.db, job_id)
        said = f"/approve {job_id}" if approved else " ".join(f"/deny {job_id} {reason}".split())
        answer = self._say(grant, said)[0]  # chat decides, refuses and audits
        if before is None or asked is None:  # no job, or one that never needed approval
            return error(404, answer.text)
        if before.state != JobState.AWAITING_APPROVAL:
            return error(409, answer.text)
        rule = decisions.get(self.bot.db, job_id)
        job = ledger.get(self.bot.db, job_id)
        if rule is None or job is None or rule.decided_by is None:  # chat refused: a role missing, or their own job
            return error(403, answer.text)
        if rule.decided_by != grant.identity:  # another approver, or the deadline, came first
            return error(409, answer.text)
        return Answer(200, job_json(job))

    def list_approvals(self, grant: Grant, request: Request) -> Answer:
        waiting = approvals.waiting_for(self.bot.db, grant.identity, self._roles(grant))
        return Answer(200, {"approvals": [approval_json(job, rule) for job, rule in waiting]})

    def list_skills(self, grant: Grant, request: Request) -> Answer:
        mine = sorted(self.bot.skills(grant.identity), key=lambda s: s.name)
        skills = [{"name": s.name, "description": s.description, "usage": s.usage(), "parameters": s.parameters} for s in mine]
        return Answer(200, {"skills": skills})

    def list_schedules(self, grant: Grant, request: Request) -> Answer:
        if (why := commands.denied(self.bot.services, self._roles(grant), "schedules")) is not None:
            return self._denied(grant, why, "schedules")
        rows = scheduled.listing(self.bot.services.catalog, self.bot.db, time.time())
        return Answer(200, {"schedules": [dataclasses.asdict(row) for row in rows]})

    def dashboard(self, grant: Grant, request: Request) -> Answer:
        """What the dashboard shows, in one request: jobs, skills, and for admins schedules, audit and the outbox backlog."""
        roles = self._roles(grant)
        admin = rbac.is_admin(self.bot.cfg, roles)
        jobs = ledger.recent(self.bot.db, 20, None if admin else grant.identity)
        board: dict[str, Any] = {
            "identity": grant.identity,
            "roles": sorted(roles),
            "admin": admin,
            "jobs": [job_json(j) for j in jobs],
            "approvals": self.list_approvals(grant, request).body["approvals"],
            "skills": self.list_skills(grant, request).body["skills"],
        }
        if admin:
            board["schedules"] = self.list_schedules(grant, request).body["schedules"]
            board["audit"] = [dataclasses.asdict(e) for e in reversed(audit.latest(self.bot.db, 15))]
            now = time.time()
            owed = outbox.backlog(self.bot.db)
            board["outbox"] = [{"platform": p, "pending": n, "oldest_seconds": round(now - first, 1)} for p, n, first in owed]
        return Answer(200, board)

    def read_audit(self, grant: Grant, request: Request) -> Answer:
        if (why := commands.denied(self.bot.services, self._roles(grant), "audit")) is not None:
            return self._denied(grant, why, "audit")
        limit = _number(request.query.get("limit", "20"), commands.MAX_AUDIT, "limit")
        return Answer(200, {"entries": [dataclasses.asdict(e) for e in audit.latest(self.bot.db, limit)]})


def _number(text: str, high: int, what: str) -> int:
    try:
        return commands.number(text, 1, high, what)
    except ArgumentError as exc:
        raise BadRequest(str(exc)) from None


ROUTES = (
    Route("POST", "/messages", "chat", "Send a message as the token's identity, as typed in chat; the immediate replies", Api.post_message),
    Route("GET", "/jobs", "read", "Your latest jobs (?which=all|failed for admins; ?limit=1..100)", Api.list_jobs),
    Route("GET", "/jobs/{id}", "read", "One job: state, exit code, output (yours, or any for admins)", Api.get_job),
    Route("POST", "/jobs/{id}/cancel", "cancel", "Cancel a queued or running job (admins, as /cancel)", Api.cancel_job),
    # Deciding is something a person says in chat, so it needs the chat scope, as POST /messages with "/approve 7" would.
    Route("POST", "/jobs/{id}/approve", "chat", "Approve a job that awaits your approval (as /approve)", Api.approve_job),
    Route(
        "POST", "/jobs/{id}/deny", "chat", 'Deny a job that awaits your approval (as /deny; body {"reason": "…"} optional)', Api.deny_job
    ),
    Route(
        "GET",
        "/approvals",
        "read",
        "The jobs awaiting an approval you may give: skill, args as shown, requester, deadline",
        Api.list_approvals,
    ),
    Route("GET", "/skills", "read", "The skills you may run, with their parameters (JSON Schema)", Api.list_skills),
    Route("GET", "/schedules", "read", "Cron schedules and their next run (admins, as /schedules)", Api.list_schedules),
    Route("GET", "/dashboard", "read", "Everything the dashboard shows (schedules, audit and outbox backlog for admins)", Api.dashboard),
    Route("GET", "/audit", "read", "The latest audit entries (?limit=1..100; admins, as /audit)", Api.read_audit),
)


def openapi() -> dict[str, Any]:
    """The OpenAPI document of ROUTES (served at /api/v1/openapi.json)."""
    errors = {
        "400": {"description": "a parameter or the body cannot be used"},
        "401": {"description": "no valid token (one line: unauthorized)"},
        "403": {"description": "the token lacks the scope, or the identity's roles do not allow it"},
    }
    decided = {
        "404": {"description": "no such job awaiting approval"},
        "409": {"description": "the job was already decided (or expired)"},
    }
    paths: dict[str, dict[str, Any]] = {}
    for route in ROUTES:
        operation: dict[str, Any] = {
            "summary": route.summary,
            "security": [{"bearer": [route.scope]}],
            "responses": {"200": {"description": "JSON"}, **errors},
        }
        if "{id}" in route.path:
            operation["parameters"] = [{"name": "id", "in": "path", "required": True, "schema": {"type": "integer", "minimum": 1}}]
        if route.method == "POST" and route.path == "/messages":
            body = {"type": "object", "required": ["text"], "properties": {"text": {"type": "string"}}}
            operation["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
        if route.path.endswith(("/approve", "/deny")):
            operation["responses"].update(decided)
        if route.path.endswith("/deny"):
            body = {
                "type": "object",
                "properties": {"reason": {"type": "string", "description": "one line; the first 300 characters are kept"}},
            }
            operation["requestBody"] = {"required": False, "content": {"application/json": {"schema": body}}}
        paths.setdefault(f"/api/v1{route.path}", {})[route.method.lower()] = operation
    paths["/api/v1/hooks/{name}"] = {
        "post": {
            "summary": "Run a configured hook's skill (HMAC-signed: X-Podbot-Timestamp, X-Podbot-Signature: sha256=HMAC(TIMESTAMP.BODY))",
            "security": [],
            "parameters": [{"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}],
            "responses": {"202": {"description": "queued: {job_id}"}, **errors},
        }
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "podbot gateway", "version": VERSION},
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}}},
        "paths": paths,
    }
