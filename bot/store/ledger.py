"""The job ledger: every job and its state. Huey only carries job ids; this is the truth.

A running job holds a lease that its worker keeps extending. Every change of
state is a compare-and-set on (state, attempt), so a job is run by one worker
at a time and a worker that lost its job (cancelled, or re-queued after its
lease ran out) cannot overwrite what happened since.
"""

from __future__ import annotations

import json
import time
from typing import Any

from bot.flow import Job, JobState
from bot.store.database import Database, Row

_COLUMNS = (
    "id, skill, args, requester, conversation, thread, reply_to, state, created, started, finished, exit_code, output,"
    " attempts, lease_until, worker, parent, env"
)
RUNNING, QUEUED, AWAITING = JobState.RUNNING.value, JobState.QUEUED.value, JobState.AWAITING_APPROVAL.value


def _job(row: Row) -> Job:
    return Job(
        id=row["id"],
        skill=row["skill"],
        args=json.loads(row["args"]),
        requester=row["requester"],
        conversation=row["conversation"],
        thread=row["thread"],
        reply_to=row["reply_to"],
        state=JobState(row["state"]),
        created=row["created"],
        started=row["started"],
        finished=row["finished"],
        exit_code=row["exit_code"],
        output=row["output"],
        attempts=row["attempts"],
        worker=row["worker"],
        parent=row["parent"],
        env=json.loads(row["env"] or "{}"),
    )


def create(
    db: Database,
    skill: str,
    args: dict[str, Any],
    requester: str,
    conversation: str,
    thread: str | None = None,
    reply_to: str | None = None,
    state: JobState = JobState.QUEUED,
    parent: int | None = None,
    env: dict[str, str] | None = None,
) -> Job:
    row = db.execute(
        "INSERT INTO jobs (skill, args, requester, conversation, thread, reply_to, state, created, parent, env)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        (
            skill,
            json.dumps(args, sort_keys=True),
            requester,
            conversation,
            thread,
            reply_to,
            state.value,
            time.time(),
            parent,
            json.dumps(env or {}),
        ),
    ).fetchone()
    job = get(db, row["id"])
    assert job is not None
    return job


def get(db: Database, job_id: int) -> Job | None:
    row = db.execute(f"SELECT {_COLUMNS} FROM jobs WHERE id = ?", (job_id,)).fetchone()
    return _job(row) if row else None


def claim(db: Database, job_id: int, worker: str, lease: float, concurrency: int | None = None) -> int | None:
    """Take a queued job for `worker`; return its attempt number, or None if it is not ours to run.

    With `concurrency`, the job is taken only while fewer jobs of its skill run (across all workers and
    hosts: the count and the claim are one exclusive transaction).
    """
    now = time.time()
    sql = "UPDATE jobs SET state = ?, started = ?, attempts = attempts + 1, lease_until = ?, worker = ? WHERE id = ? AND state = ?"
    params: tuple[object, ...] = (RUNNING, now, now + lease, worker, job_id, QUEUED)
    if concurrency is not None:
        sql += " AND (SELECT COUNT(*) FROM jobs AS j WHERE j.skill = jobs.skill AND j.state = ?) < ?"
        params += (RUNNING, concurrency)
    with db.transaction(exclusive=concurrency is not None):
        row = db.execute(sql + " RETURNING attempts", params).fetchone()
    return None if row is None else row["attempts"]


def heartbeat(db: Database, job_ids: list[int], worker: str, lease: float) -> None:
    if job_ids:
        marks = ",".join("?" * len(job_ids))
        db.execute(
            f"UPDATE jobs SET lease_until = ? WHERE id IN ({marks}) AND state = ? AND worker = ?",
            (time.time() + lease, *job_ids, RUNNING, worker),
        )


def finish(db: Database, job_id: int, attempt: int, state: JobState, exit_code: int | None, output: str) -> bool:
    """Record how a run ended; False if the job is no longer this attempt's (cancelled or re-queued)."""
    cur = db.execute(
        "UPDATE jobs SET state = ?, finished = ?, exit_code = ?, output = ?, lease_until = NULL"
        " WHERE id = ? AND state = ? AND attempts = ?",
        (state.value, time.time(), exit_code, output, job_id, RUNNING, attempt),
    )
    return cur.rowcount == 1


def requeue(db: Database, job_id: int, attempt: int, exit_code: int | None, output: str) -> bool:
    """Put a failed attempt back in the queue for a retry."""
    cur = db.execute(
        "UPDATE jobs SET state = ?, exit_code = ?, output = ?, lease_until = NULL WHERE id = ? AND state = ? AND attempts = ?",
        (QUEUED, exit_code, output, job_id, RUNNING, attempt),
    )
    return cur.rowcount == 1


def expired(db: Database) -> list[Job]:
    """Running jobs whose worker stopped renewing the lease (it died, or hangs)."""
    rows = db.execute(f"SELECT {_COLUMNS} FROM jobs WHERE state = ? AND lease_until < ?", (RUNNING, time.time())).fetchall()
    return [_job(r) for r in rows]


def release(db: Database, job: Job, give_up_after: int) -> JobState | None:
    """Take back an expired job: queued again, or failed after too many attempts. None if it moved meanwhile."""
    state = JobState.FAILED if job.attempts >= give_up_after else JobState.QUEUED
    note = f"worker {job.worker} stopped during attempt {job.attempts}"
    ended = time.time() if state == JobState.FAILED else None
    cur = db.execute(
        "UPDATE jobs SET state = ?, lease_until = NULL, output = ?, finished = ? WHERE id = ? AND state = ? AND attempts = ?",
        (state.value, note, ended, job.id, RUNNING, job.attempts),
    )
    return state if cur.rowcount == 1 else None


def stale_queued(db: Database, older_than: float) -> list[int]:
    """Queued jobs created before `older_than` (candidates for a lost Huey message)."""
    rows = db.execute("SELECT id FROM jobs WHERE state = ? AND created < ? ORDER BY id", (QUEUED, older_than)).fetchall()
    return [r["id"] for r in rows]


def cancel(db: Database, job_id: int) -> bool:
    cur = db.execute(
        "UPDATE jobs SET state = ?, finished = ?, lease_until = NULL WHERE id = ? AND state IN (?, ?, ?)",
        (JobState.CANCELLED.value, time.time(), job_id, QUEUED, RUNNING, AWAITING),
    )
    return cur.rowcount == 1


def approve(db: Database, job_id: int) -> bool:
    """An awaiting job becomes queued (the caller enqueues it after commit); False if it is not awaiting any more."""
    cur = db.execute("UPDATE jobs SET state = ? WHERE id = ? AND state = ?", (QUEUED, job_id, AWAITING))
    return cur.rowcount == 1


def deny(db: Database, job_id: int, reason: str) -> bool:
    """An awaiting job ends denied, with the reason as its output; False if it is not awaiting any more."""
    cur = db.execute(
        "UPDATE jobs SET state = ?, finished = ?, output = ? WHERE id = ? AND state = ?",
        (JobState.DENIED.value, time.time(), reason, job_id, AWAITING),
    )
    return cur.rowcount == 1


def cached(db: Database, skill: str, args: dict[str, Any], since: float) -> Job | None:
    """The latest successful run of the same skill with the same arguments since `since`."""
    row = db.execute(
        f"SELECT {_COLUMNS} FROM jobs WHERE skill = ? AND args = ? AND state = ? AND finished >= ? ORDER BY finished DESC LIMIT 1",
        (skill, json.dumps(args, sort_keys=True), JobState.SUCCEEDED.value, since),
    ).fetchone()
    return _job(row) if row else None


def recent_count(db: Database, requester: str, since: float) -> int:
    return db.execute(
        "SELECT COUNT(*) FROM jobs WHERE requester = ? AND created >= ? AND state != ?", (requester, since, JobState.DENIED.value)
    ).fetchone()[0]


def recent(
    db: Database,
    limit: int = 10,
    requester: str | None = None,
    states: list[JobState] | None = None,
    skill: str | None = None,
    since: float | None = None,
) -> list[Job]:
    """The newest jobs first, of one requester, in these states, of one skill, created since `since` (each when given)."""
    sql, params = f"SELECT {_COLUMNS} FROM jobs WHERE 1=1", list[object]()
    if requester:
        sql += " AND requester = ?"
        params.append(requester)
    if states:
        sql += f" AND state IN ({','.join('?' * len(states))})"
        params.extend(s.value for s in states)
    if skill:
        sql += " AND skill = ?"
        params.append(skill)
    if since is not None:
        sql += " AND created >= ?"
        params.append(since)
    sql += " ORDER BY id DESC LIMIT ?"
    params.append(limit)
    return [_job(r) for r in db.execute(sql, tuple(params)).fetchall()]


def unfinished(db: Database, ids: list[int]) -> list[int]:
    if not ids:
        return []
    marks = ",".join("?" * len(ids))
    rows = db.execute(f"SELECT id FROM jobs WHERE id IN ({marks}) AND state IN (?, ?)", (*ids, QUEUED, RUNNING)).fetchall()
    return [r["id"] for r in rows]


def counts(db: Database, states: tuple[JobState, ...] = (JobState.QUEUED, JobState.RUNNING)) -> dict[str, int]:
    """How many jobs are in each of `states` (for `podbot status`)."""
    marks = ", ".join("?" for _ in states)
    rows = db.execute(f"SELECT state, COUNT(*) AS n FROM jobs WHERE state IN ({marks}) GROUP BY state", tuple(states)).fetchall()
    found = {row["state"]: row["n"] for row in rows}
    return {state.value: found.get(state.value, 0) for state in states}
