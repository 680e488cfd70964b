"""Run one job: claim it in the ledger, run its container, record the end, retry or fall back, reply via the outbox."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from dataclasses import replace

from bot.catalog import Catalog
from bot.config import Config
from bot.errors import PodbotError, incident
from bot.flow import Job, JobState, Reply, request
from bot.runtime.runner import Runner, RunResult, RunSpec, remove_job_containers
from bot.skill import Skill, complete, render_argv
from bot.store import audit, ledger, outbox
from bot.store.database import Database
from bot.vault import Vault, shown

log = logging.getLogger(__name__)

TAIL_LINES = 20
LEASE = 15.0  # seconds a running job's lease lasts without a heartbeat
CONCURRENCY_WAIT = 0.5  # seconds before a job blocked by its skill's concurrency tries again
FALLBACK_IDENTITY = "podbot:fallback"

Enqueue = Callable[[int, float], None]


def tail(text: str, lines: int = TAIL_LINES) -> str:
    return "\n".join(text.rstrip("\n").splitlines()[-lines:])


def _result_reply(job: Job, state: JobState, result: RunResult | None, error: str = "", limit: float = 0.0) -> Reply:
    head = f"job {job.id} {job.skill}"
    attempts = f" after {job.attempts} attempts" if job.attempts > 1 else ""
    if result is None:
        text, code = f"{head} failed{attempts}: {error}", None
    elif result.stopped_for_output:
        text, code = f"{head} was stopped{attempts}: it kept writing past its output cap; last lines:", tail(result.output)
    elif state == JobState.SUCCEEDED:
        text, code = f"{head} done in {result.duration:.2f} s", result.output
    elif state == JobState.TIMED_OUT:
        text, code = f"{head} timed out after {limit:g} s{attempts}; last output:", tail(result.output)
    else:
        text, code = f"{head} failed with exit code {result.exit_code}{attempts}; last lines:", tail(result.output)
    if result is not None and result.truncated:
        text += f" (output cut at {len(result.output.encode())} bytes)"
    return Reply(job.reply_to or job.conversation, text, code or None, None if job.reply_to else job.thread, job.id)


class Worker:
    """Runs jobs for this process and knows which ones it is running (for lease heartbeats)."""

    def __init__(
        self, cfg: Config, db: Database, catalog: Catalog, runner: Runner, enqueue: Enqueue, notify: Callable[[], None], vault: Vault
    ):
        self.cfg = cfg
        self.vault = vault  # secrets for the container; everything the run says is redacted before it is recorded
        self.db = db
        self.catalog = catalog
        self.runner = runner
        self.enqueue = enqueue
        self.notify = notify  # wakes the outbox senders
        self.id = f"{cfg.host}:{os.getpid()}"
        self._running: dict[int, int] = {}  # job id -> attempt
        self._lock = threading.Lock()

    def running(self) -> list[int]:
        with self._lock:
            return list(self._running)

    def heartbeat(self) -> None:
        ledger.heartbeat(self.db, self.running(), self.id, LEASE)

    def stop_job(self, job_id: int) -> int:
        """Remove a cancelled job's containers at once; returns how many were stopped."""
        return remove_job_containers(self.runner, job_id)

    def execute(self, job_id: int) -> None:
        """The Huey task. Safe to run twice for one job id: only one claim succeeds."""
        job = ledger.get(self.db, job_id)
        if job is None or job.state != JobState.QUEUED:
            return
        skill = self.catalog.get(job.skill)
        attempt = ledger.claim(self.db, job_id, self.id, LEASE, skill.concurrency if skill else None)
        if attempt is None:
            if (again := ledger.get(self.db, job_id)) and again.state == JobState.QUEUED:
                self.enqueue(job_id, CONCURRENCY_WAIT)  # its skill is at its concurrency limit
            return
        job = ledger.get(self.db, job_id)
        assert job is not None
        with self._lock:
            self._running[job_id] = attempt
        try:
            audit.record(self.db, job.requester, job.conversation, "started", job.skill, job.id, f"attempt {attempt} on {self.id}")
            fields = {"job": job.id, "skill": job.skill, "person": job.requester, "outcome": "started"}
            log.info("job %s %s for %s: attempt %s started", job.id, job.skill, job.requester, attempt, extra=fields)
            result, error = self._run(skill, job, attempt)
            self._end(skill, job, attempt, result, error)
        finally:
            with self._lock:
                self._running.pop(job_id, None)

    def _run(self, skill: Skill | None, job: Job, attempt: int) -> tuple[RunResult | None, str]:
        try:
            if skill is None:
                return None, f"skill {job.skill} is not loaded any more"
            args = complete(skill, self.vault.unseal_args(job.args, skill.secret_params))
            mounts = [(self.cfg.mounts[m.source], m.target) for m in skill.mounts]
            secret_env, secret_files = self.vault.for_container(skill.secrets)
            env = {**skill.env, **self.cfg.skill_env.get(skill.name, {}), **job.env, **secret_env}
            argv = render_argv(skill, args)
            spec = RunSpec(
                skill.run_image, argv, job.id, attempt, skill.timeout, skill.network, env, mounts, secret_files, skill.host_pid, skill.pull
            )
            result = self.runner.run(spec)
            return replace(result, output=self.vault.redact(result.output)), ""
        except PodbotError as exc:
            return None, self.vault.redact(str(exc))
        except Exception:  # a Podman API failure must still end the job and answer
            return None, f"the container could not run (incident {incident(f'job {job.id}: container run failed')})"

    def _end(self, skill: Skill | None, job: Job, attempt: int, result: RunResult | None, error: str) -> None:
        if result is None:
            state, exit_code, output = JobState.FAILED, None, error
        elif result.timed_out:
            state, exit_code, output = JobState.TIMED_OUT, None, result.output
        else:
            state = JobState.SUCCEEDED if result.exit_code == 0 else JobState.FAILED
            exit_code, output = result.exit_code, result.output
        duration = f"{result.duration:.3f}s" if result else "-"
        detail = f"{state.value} exit={exit_code} duration={duration} attempt={attempt}" + (f" error={error}" if error else "")
        fields = {"job": job.id, "skill": job.skill, "person": job.requester, "outcome": state.value}
        log.info("job %s %s for %s: %s", job.id, job.skill, job.requester, detail, extra=fields)
        retry = state != JobState.SUCCEEDED and skill is not None and attempt <= skill.retries
        again = ended = False
        fallback: int | None = None
        # What a job's end writes lands together (a piped console waits for "job ended and its reply
        # stored" and must never see one without the other); the queue hears of it after commit.
        with self.db.transaction():
            if retry:
                again = ledger.requeue(self.db, job.id, attempt, exit_code, output)
                if again:
                    audit.record(self.db, job.requester, job.conversation, "retrying", job.skill, job.id, detail)
            elif ledger.finish(self.db, job.id, attempt, state, exit_code, output):
                ended = True
                audit.record(self.db, job.requester, job.conversation, "finished", job.skill, job.id, detail)
                job.attempts = attempt
                reply = _result_reply(job, state, result, error, skill.timeout if skill else 0.0)
                outbox.put(self.db, f"job:{job.id}:0", reply)
                if state != JobState.SUCCEEDED and skill is not None and skill.fallback and job.parent is None:
                    fallback = self.start_fallback(job, skill, state, exit_code, output)
            else:  # cancelled, or re-queued after a lost lease: someone else answers
                audit.record(self.db, job.requester, job.conversation, "superseded", job.skill, job.id, detail)
        if again and skill is not None:
            self.enqueue(job.id, skill.retry_delay)
        if fallback is not None:
            self.enqueue(fallback, 0.0)
        if ended:
            self.notify()

    def start_fallback(self, job: Job, skill: Skill, state: JobState, exit_code: int | None, output: str) -> int | None:
        """The ledger job of the manifest's fallback skill, with the failed job as its input (to enqueue). Fallbacks never chain."""
        fallback = self.catalog.get(skill.fallback or "")
        if fallback is None:
            return None
        summary = f"job {job.id} {request(job.skill, job.args)} {state.value} (exit {exit_code}): {tail(output, 3)}"
        args = {name: summary[:900] for name in fallback.required if fallback.properties[name].get("type") == "string"}
        env = {
            "PODBOT_FAILED_SKILL": job.skill,
            "PODBOT_FAILED_ARGS": str({name: shown(value) for name, value in job.args.items()}),
            "PODBOT_FAILED_EXIT": "" if exit_code is None else str(exit_code),
            "PODBOT_FAILED_OUTPUT": tail(output),
        }
        reply_to = self.cfg.alert_conversation if fallback.reply_to == "alerts" else fallback.reply_to
        child = ledger.create(
            self.db,
            fallback.name,
            args,
            FALLBACK_IDENTITY,
            job.conversation,
            job.thread,
            reply_to or job.conversation,
            parent=job.id,
            env=env,
        )
        audit.record(self.db, FALLBACK_IDENTITY, job.conversation, "fallback", fallback.name, child.id, f"for job {job.id} {job.skill}")
        return child.id
