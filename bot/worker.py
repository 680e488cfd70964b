"""Run one job: claim it in the ledger, run its container, record the end, retry or fall back, reply via the outbox."""

from __future__ import annotations

import logging

from bot import audit, containers, ledger, outbox
from bot.context import Context
from bot.host import HostError
from bot.manifest import Manifest, render_argv
from bot.models import Job, JobState, Reply, RunResult, request
from bot.router import ArgumentError, complete

log = logging.getLogger(__name__)

TAIL_LINES = 20
LEASE = 15.0  # seconds a running job's lease lasts without a heartbeat
CONCURRENCY_WAIT = 0.5  # seconds before a job blocked by its skill's concurrency tries again
FALLBACK_IDENTITY = "podbot:fallback"


def tail(text: str, lines: int = TAIL_LINES) -> str:
    return "\n".join(text.rstrip("\n").splitlines()[-lines:])


def _result_reply(job: Job, state: JobState, result: RunResult | None, error: str = "", limit: float = 0.0) -> Reply:
    head = f"job {job.id} {job.skill}"
    attempts = f" after {job.attempts} attempts" if job.attempts > 1 else ""
    if result is None:
        text, code = f"{head} failed{attempts}: {error}", None
    elif state == JobState.SUCCEEDED:
        text, code = f"{head} done in {result.duration:.2f} s", result.output
    elif state == JobState.TIMED_OUT:
        text, code = f"{head} timed out after {limit:g} s{attempts}; last output:", tail(result.output)
    else:
        text, code = f"{head} failed with exit code {result.exit_code}{attempts}; last lines:", tail(result.output)
    if result is not None and result.truncated:
        text += f" (output cut at {len(result.output.encode())} bytes)"
    return Reply(job.reply_to or job.conversation, text, code or None, None if job.reply_to else job.thread, job.id)


def _run(ctx: Context, skill: Manifest | None, job: Job, attempt: int) -> tuple[RunResult | None, str]:
    try:
        if skill is None:
            raise ArgumentError(f"skill {job.skill} is not loaded any more")
        args = complete(skill, job.args)
        mounts = [(ctx.cfg.mounts[m.source], m.target) for m in skill.mounts]
        env = {**skill.env, **job.env}
        spec = containers.RunSpec(skill.run_image, render_argv(skill, args), job.id, attempt, skill.timeout, skill.network, env, mounts)
        return containers.run(ctx.cfg, spec), ""
    except (ArgumentError, HostError, KeyError) as exc:
        return None, str(exc)
    except Exception as exc:  # a Podman API failure must still end the job and answer
        log.exception("job %s: container run failed", job.id)
        return None, f"the container could not run: {exc}"


def execute(ctx: Context, job_id: int) -> None:
    """The Huey task. Safe to run twice for one job id: only one claim succeeds."""
    job = ledger.get(ctx.db, job_id)
    if job is None or job.state != JobState.QUEUED:
        return
    skill = ctx.skills.get(job.skill)
    attempt = ledger.claim(ctx.db, job_id, ctx.worker_id, LEASE, skill.concurrency if skill else None)
    if attempt is None:
        if (again := ledger.get(ctx.db, job_id)) and again.state == JobState.QUEUED:
            ctx.enqueue(job_id, CONCURRENCY_WAIT)  # its skill is at its concurrency limit
        return
    job = ledger.get(ctx.db, job_id)
    with ctx.lock:
        ctx.running[job_id] = attempt
    try:
        audit.record(ctx.db, job.requester, job.conversation, "started", job.skill, job.id, f"attempt {attempt} on {ctx.worker_id}")
        result, error = _run(ctx, skill, job, attempt)
        _end(ctx, skill, job, attempt, result, error)
    finally:
        with ctx.lock:
            ctx.running.pop(job_id, None)


def _end(ctx: Context, skill: Manifest | None, job: Job, attempt: int, result: RunResult | None, error: str) -> None:
    if result is None:
        state, exit_code, output = JobState.FAILED, None, error
    elif result.timed_out:
        state, exit_code, output = JobState.TIMED_OUT, None, result.output
    else:
        state = JobState.SUCCEEDED if result.exit_code == 0 else JobState.FAILED
        exit_code, output = result.exit_code, result.output
    duration = f"{result.duration:.3f}s" if result else "-"
    detail = f"{state.value} exit={exit_code} duration={duration} attempt={attempt}" + (f" error={error}" if error else "")
    if state != JobState.SUCCEEDED and skill is not None and attempt <= skill.retries:
        if ledger.requeue(ctx.db, job.id, attempt, exit_code, output):
            audit.record(ctx.db, job.requester, job.conversation, "retrying", job.skill, job.id, detail)
            ctx.enqueue(job.id, skill.retry_delay)
        return
    if not ledger.finish(ctx.db, job.id, attempt, state, exit_code, output):
        audit.record(ctx.db, job.requester, job.conversation, "superseded", job.skill, job.id, detail)
        return  # cancelled, or re-queued after a lost lease: someone else answers
    audit.record(ctx.db, job.requester, job.conversation, "finished", job.skill, job.id, detail)
    job.attempts = attempt
    outbox.put(ctx.db, f"job:{job.id}:0", _result_reply(job, state, result, error, skill.timeout if skill else 0.0))
    if state != JobState.SUCCEEDED and skill is not None and skill.fallback and job.parent is None:
        start_fallback(ctx, job, skill, state, exit_code, output)
    ctx.notify()


def start_fallback(ctx: Context, job: Job, skill: Manifest, state: JobState, exit_code: int | None, output: str) -> None:
    """Queue the manifest's fallback skill with the failed job as its input. Fallbacks never chain."""
    fallback = ctx.skills.get(skill.fallback)
    if fallback is None:
        return
    summary = f"job {job.id} {request(job.skill, job.args)} {state.value} (exit {exit_code}): {tail(output, 3)}"
    args = {name: summary[:900] for name in fallback.required if fallback.properties[name].get("type") == "string"}
    env = {
        "PODBOT_FAILED_SKILL": job.skill,
        "PODBOT_FAILED_ARGS": str(job.args),
        "PODBOT_FAILED_EXIT": "" if exit_code is None else str(exit_code),
        "PODBOT_FAILED_OUTPUT": tail(output),
    }
    reply_to = ctx.cfg.alert_conversation if fallback.reply_to == "alerts" else fallback.reply_to
    child = ledger.create(
        ctx.db, fallback.name, args, FALLBACK_IDENTITY, job.conversation, job.thread, reply_to or job.conversation, parent=job.id, env=env
    )
    audit.record(ctx.db, FALLBACK_IDENTITY, job.conversation, "fallback", fallback.name, child.id, f"for job {job.id} {job.skill}")
    ctx.enqueue(child.id)
