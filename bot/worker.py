"""Run one job: ledger says running, a container runs it, the ledger records the end, the outbox gets the reply."""

from __future__ import annotations

import logging

from bot import audit, containers, ledger, outbox
from bot.context import Context
from bot.host import HostError
from bot.manifest import render_argv
from bot.models import Job, JobState, Reply, RunResult
from bot.router import ArgumentError, complete

log = logging.getLogger(__name__)

TAIL_LINES = 20


def _tail(text: str, lines: int = TAIL_LINES) -> str:
    return "\n".join(text.rstrip("\n").splitlines()[-lines:])


def _result_reply(job: Job, state: JobState, result: RunResult | None, error: str = "") -> Reply:
    head = f"job {job.id} {job.skill}"
    if result is None:
        text, code = f"{head} failed: {error}", None
    elif state == JobState.SUCCEEDED:
        text, code = f"{head} done in {result.duration:.2f} s", result.output
    elif state == JobState.TIMED_OUT:
        text, code = f"{head} timed out after {result.duration:.0f} s; last output:", _tail(result.output)
    else:
        text, code = f"{head} failed with exit code {result.exit_code}; last lines:", _tail(result.output)
    if result is not None and result.truncated:
        text += f" (output cut at {len(result.output.encode())} bytes)"
    return Reply(job.reply_to or job.conversation, text, code or None, None if job.reply_to else job.thread, job.id)


def execute(ctx: Context, job_id: int) -> None:
    job = ledger.get(ctx.db, job_id)
    if job is None or not ledger.start(ctx.db, job_id):
        log.info("job %s is not queued any more; skipping", job_id)
        return
    audit.record(ctx.db, job.requester, job.conversation, "started", job.skill, job.id)
    result, error = None, ""
    skill = ctx.skills.get(job.skill)
    try:
        if skill is None:
            raise ArgumentError(f"skill {job.skill} is not loaded any more")
        args = complete(skill, job.args)
        mounts = [(ctx.cfg.mounts[m.source], m.target) for m in skill.mounts]
        spec = containers.RunSpec(skill.run_image, render_argv(skill, args), job.id, skill.timeout, skill.network, skill.env, mounts)
        result = containers.run(ctx.cfg, spec)
    except (ArgumentError, HostError, KeyError) as exc:
        error = str(exc)
    except Exception as exc:  # a Podman API failure must still end the job and answer
        log.exception("job %s: container run failed", job.id)
        error = f"the container could not run: {exc}"
    if result is None:
        state, exit_code, output = JobState.FAILED, None, error
    elif result.timed_out:
        state, exit_code, output = JobState.TIMED_OUT, None, result.output
    else:
        state = JobState.SUCCEEDED if result.exit_code == 0 else JobState.FAILED
        exit_code, output = result.exit_code, result.output
    ledger.finish(ctx.db, job.id, state, exit_code, output)
    duration = f"{result.duration:.3f}s" if result else "-"
    audit.record(
        ctx.db,
        job.requester,
        job.conversation,
        "finished",
        job.skill,
        job.id,
        f"{state.value} exit={exit_code} duration={duration}" + (f" error={error}" if error else ""),
    )
    outbox.put(ctx.db, f"job:{job.id}:0", _result_reply(job, state, result, error))
    ctx.notify()
