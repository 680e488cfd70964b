"""Nothing lost: take back jobs whose worker died, and jobs whose Huey message was lost.

Huey's dequeue deletes a task before it runs, so the ledger decides what is
owed: a running job whose lease ran out is re-queued (its leftover container
removed first), and a queued job that Huey no longer holds is enqueued again.
Running a job id twice is harmless: only one claim succeeds.

Every process that runs jobs, on every host, makes these passes: a lease that ran
out is what hands a dead host's jobs to the others (workers.dead_here only spares the
wait for this host's own dead processes), and every take-back is a compare-and-set
on the attempt, so passes racing over one job re-queue it once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from bot.flow import Job, JobState, Reply
from bot.jobs.worker import Worker
from bot.runtime.runner import remove_job_containers
from bot.store import audit, ledger, outbox, workers

log = logging.getLogger(__name__)

LOST_AFTER = 10.0  # seconds a queued job may be missing from Huey before it is enqueued again
GIVE_UP_EXTRA = 3  # lost leases tolerated beyond a skill's retries (a job that keeps killing its worker)


def orphans(worker: Worker) -> list[Job]:
    """Running jobs whose lease expired, or whose worker process on this host is gone."""
    expired = {job.id: job for job in ledger.expired(worker.db)}
    for job in ledger.recent(worker.db, 1000, states=[JobState.RUNNING]):
        if job.id not in expired and workers.dead_here(job.worker or "", worker.cfg.host):
            expired[job.id] = job
    return list(expired.values())


def recover(worker: Worker, held: Callable[[], set[int]]) -> int:
    """One recovery pass; `held()` gives the job ids Huey still holds. Returns how many jobs were re-queued."""
    count = 0
    for job in orphans(worker):
        # Only the lost attempt's: another process may have re-queued the job since, and a worker run it again.
        remove_job_containers(worker.runner, job.id, job.attempts)
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
    workers.prune(worker.db)
    if count:
        log.info("recovery re-queued %d jobs", count)
    return count


def sweep(worker: Worker) -> int:
    """Remove containers no running attempt owns.

    A worker killed mid-request can leave the Podman service finishing its create or
    start after recovery already removed the job's containers; this catches those.
    Hosts sharing one Podman see each other's containers (the instance label is the
    database), and a live one's stays: a container is created only after its attempt's
    claim is committed, so its job reads as running that attempt until the run is over.
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
