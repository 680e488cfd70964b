"""Nothing lost: take back jobs whose worker died, and jobs whose Huey message was lost.

Huey's dequeue deletes a task before it runs, so the ledger decides what is
owed: a running job whose lease ran out is re-queued (its leftover container
removed first), and a queued job that Huey no longer holds is enqueued again.
Running a job id twice is harmless: only one claim succeeds.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable

from bot.flow import Job, JobState, Reply
from bot.jobs.worker import Worker
from bot.runtime.runner import remove_job_containers
from bot.store import audit, ledger, outbox

log = logging.getLogger(__name__)

LOST_AFTER = 10.0  # seconds a queued job may be missing from Huey before it is enqueued again
GIVE_UP_EXTRA = 3  # lost leases tolerated beyond a skill's retries (a job that keeps killing its worker)


def _dead_here(job: Job, here: str) -> bool:
    """The job's worker was a process on this host (`here`) that no longer exists."""
    host, _, pid = (job.worker or "").rpartition(":")
    if host != here or not pid.isdigit() or int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def orphans(worker: Worker) -> list[Job]:
    """Running jobs whose lease expired, or whose worker process on this host is gone."""
    expired = {job.id: job for job in ledger.expired(worker.db)}
    for job in ledger.recent(worker.db, 1000, states=[JobState.RUNNING]):
        if job.id not in expired and _dead_here(job, worker.cfg.host):
            expired[job.id] = job
    return list(expired.values())


def recover(worker: Worker, held: Callable[[], set[int]]) -> int:
    """One recovery pass; `held()` gives the job ids Huey still holds. Returns how many jobs were re-queued."""
    count = 0
    for job in orphans(worker):
        remove_job_containers(worker.runner, job.id)
        skill = worker.catalog.get(job.skill)
        with worker.db.transaction():  # the state and what is said about it land together
            state = ledger.release(worker.db, job, (skill.retries if skill else 0) + GIVE_UP_EXTRA)
            if state == JobState.QUEUED:
                audit.record(worker.db, job.requester, job.conversation, "recovered", job.skill, job.id, f"worker {job.worker} lost it")
            elif state == JobState.FAILED:
                audit.record(worker.db, job.requester, job.conversation, "finished", job.skill, job.id, "failed: worker lost it too often")
                text = f"job {job.id} {job.skill} failed: its worker stopped {job.attempts} times while running it"
                outbox.put(worker.db, f"job:{job.id}:0", Reply(job.reply_to or job.conversation, text, None, job.thread, job.id))
        if state == JobState.QUEUED:
            worker.enqueue(job.id, 0.0)
            count += 1
        elif state == JobState.FAILED:
            worker.notify()
    stale = ledger.stale_queued(worker.db, time.time() - LOST_AFTER)
    in_huey = held() if stale else set()
    for job_id in stale:
        if job_id not in in_huey:
            worker.enqueue(job_id, 0.0)
            count += 1
            if (lost := ledger.get(worker.db, job_id)) is not None:
                audit.record(worker.db, lost.requester, lost.conversation, "requeued", lost.skill, job_id, "not in the queue")
    sweep(worker)
    if count:
        log.info("recovery re-queued %d jobs", count)
    return count


def sweep(worker: Worker) -> int:
    """Remove containers no running attempt owns.

    A worker killed mid-request can leave the Podman service finishing its create or
    start after recovery already removed the job's containers; this catches those.
    """
    stale = []
    for found in worker.runner.containers():
        job = ledger.get(worker.db, found.job_id)
        if job is None or job.state != JobState.RUNNING or job.attempts != found.attempt:
            stale.append(found)
    for found in stale:
        worker.runner.remove(found.name)
        log.info("removed container %s left by job %s attempt %s", found.name, found.job_id, found.attempt)
    return len(stale)
