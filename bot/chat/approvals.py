"""Approvals: a run of a skill whose manifest has `approval:` waits until another person says yes.

The job waits in the ledger (`awaiting_approval`), never in the queue; approvers
are told in the requesting conversation (or the manifest's `notify`) and the
alert conversation, with `/approve ID` and `/deny ID [reason]` and, where the
platform has them, buttons that say the same. Approval queues the job the
normal way (`Decision.enqueue`, after commit); denial, or no answer before the
deadline (`expire`, from a background loop), ends it denied. Every decision is
audited with who made it.
"""

from __future__ import annotations

import time
from typing import Any

from bot.chat.decision import Decision, say
from bot.chat.services import Services
from bot.config import Config
from bot.flow import Action, Job, JobState, Message, Reply, answer, request
from bot.skill import ApprovalRule, Skill
from bot.store import approvals, audit, ledger, outbox
from bot.store.database import Database

REFUSED = "approval_refused"


def _clock(when: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(when))


def _who(roles: frozenset[str]) -> str:
    return ", ".join(sorted(roles))


def ask(
    cfg: Config,
    db: Database,
    skill: Skill,
    rule: ApprovalRule,
    args: dict[str, Any],
    requester: str,
    conversation: str,
    thread: str | None = None,
    reply_to: str | None = None,
) -> tuple[Job, tuple[Reply, ...]]:
    """The job, awaiting approval, and what to say: the requester's answer, and the approvers' notices (with buttons)."""
    job = ledger.create(db, skill.name, args, requester, conversation, thread, reply_to, state=JobState.AWAITING_APPROVAL)
    deadline = time.time() + (rule.timeout or cfg.approval_timeout)
    approvals.put(db, job.id, rule.roles, rule.self_approve, deadline)
    buttons = (Action("Approve", f"/approve {job.id}"), Action("Deny", f"/deny {job.id}"))
    how = f"/approve {job.id} or /deny {job.id} [reason]"
    what = request(skill.name, args)
    told = [cfg.alert_conversation if rule.notify == "alerts" else rule.notify] if rule.notify else [conversation, cfg.alert_conversation]
    here = conversation in told
    text = f"job {job.id} awaits approval by {_who(rule.roles)} until {_clock(deadline)}: {what}"
    replies = [Reply(conversation, text + (f" — {how}" if here else ""), None, thread, job.id, buttons if here else ())]
    notice = f"{requester} asks to run job {job.id} {what}; {_who(rule.roles)}: {how} by {_clock(deadline)}"
    replies += [Reply(where, notice, None, None, job.id, buttons) for where in dict.fromkeys(told) if where != conversation]
    return job, tuple(replies)


def decide(s: Services, msg: Message, roles: frozenset[str], job_id: int, approved: bool, reason: str = "") -> Decision:
    """`/approve ID` or `/deny ID [reason]` from `msg.user`; a one-line refusal, audited with the job, when it is not theirs to decide."""
    job = ledger.get(s.db, job_id)
    rule = approvals.get(s.db, job_id)
    refusal = _refusal(msg.user, roles, job, rule, job_id)
    if refusal:
        return say(msg, REFUSED, refusal, skill=job.skill if job else None, job_id=job_id, detail=refusal)
    assert job is not None
    why = reason or f"denied by {msg.user}"
    if not approvals.decide(s.db, job_id, msg.user, approved, "" if approved else why):
        return say(msg, REFUSED, f"job {job_id} was decided meanwhile.", skill=job.skill, job_id=job_id, detail="decided meanwhile")
    what = request(job.skill, job.args)
    if approved:
        mine, theirs = f"job {job_id} approved; queued: {what}", f"job {job_id} {job.skill} approved by {msg.user}; queued."
    else:
        said = f": {reason}" if reason else ""
        mine, theirs = f"job {job_id} denied: {what}{said}", f"job {job_id} {job.skill} denied by {msg.user}{said}"
    replies = [answer(msg, mine, job_id=job_id)]
    if job.conversation != msg.conversation:
        replies.append(Reply(job.conversation, theirs, None, job.thread, job_id))
    outcome, detail = ("approved", f"requested by {job.requester}") if approved else ("approval_denied", why)
    return Decision(outcome, tuple(replies), job.skill, job_id, detail, (job_id,) if approved else ())


def waiting_for(db: Database, user: str, roles: frozenset[str]) -> list[tuple[Job, approvals.Approval]]:
    """The jobs awaiting approval that `user` may decide now (what /approve would accept), oldest first."""
    pending = ((ledger.get(db, rule.job_id), rule) for rule in approvals.undecided(db))
    return [(job, rule) for job, rule in pending if job is not None and not _refusal(user, roles, job, rule, job.id)]


def _refusal(user: str, roles: frozenset[str], job: Job | None, rule: approvals.Approval | None, job_id: int) -> str:
    """Why `user` may not decide this job, or "" when they may."""
    if job is None or rule is None:
        return f"There is no job {job_id} awaiting approval."
    if job.state != JobState.AWAITING_APPROVAL:
        by = f" by {rule.decided_by}" if rule.decided_by else ""
        return f"job {job_id} is {job.state.value}{by}; there is nothing left to decide."
    if not roles & rule.roles:
        return f"Deciding job {job_id} needs the role {_who(rule.roles)}; you have {_who(roles)}."
    if user == job.requester and not rule.self_approve:
        return f"You asked for job {job_id}; someone else with the role {_who(rule.roles)} must decide."
    return ""


def expire(db: Database, now: float | None = None) -> int:
    """Deny every job whose approval deadline passed; returns how many (their requesters are told via the outbox)."""
    now = time.time() if now is None else now
    count = 0
    for job_id in approvals.overdue(db, now):
        with db.transaction():
            job = ledger.get(db, job_id)
            if job is None or not approvals.decide(db, job_id, approvals.TIMEOUT_ACTOR, False, "nobody decided in time"):
                continue
            audit.record(
                db, approvals.TIMEOUT_ACTOR, job.conversation, "approval_expired", job.skill, job_id, f"requested by {job.requester}"
            )
            text = f"job {job_id} {job.skill} denied: nobody approved it in time."
            outbox.put(db, f"approval:{job_id}", Reply(job.conversation, text, None, job.thread, job_id))
            count += 1
    return count


def describe(db: Database, job: Job) -> str:
    """What /job adds about an approval: whom it waits for, or who decided."""
    rule = approvals.get(db, job.id)
    if rule is None:
        return ""
    if job.state == JobState.AWAITING_APPROVAL:
        return f"; awaits approval by {_who(rule.roles)} until {_clock(rule.deadline)}"
    if rule.decided_by is None:
        return ""
    verdict = "approved" if rule.approved else f"denied ({rule.reason})"
    return f"; {verdict} by {rule.decided_by}"
