"""The job ledger: every job and its state. Huey only carries job ids; this is the truth."""

from __future__ import annotations

import json
import time
from typing import Any

from bot.db import Database
from bot.models import Job, JobState

_COLUMNS = "id, skill, args, requester, conversation, thread, reply_to, state, created, started, finished, exit_code, output"


def _job(row) -> Job:
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
) -> Job:
    cur = db.execute(
        "INSERT INTO jobs (skill, args, requester, conversation, thread, reply_to, state, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (skill, json.dumps(args, sort_keys=True), requester, conversation, thread, reply_to, state.value, time.time()),
    )
    return get(db, cur.lastrowid)


def get(db: Database, job_id: int) -> Job | None:
    row = db.execute(f"SELECT {_COLUMNS} FROM jobs WHERE id = ?", (job_id,)).fetchone()
    return _job(row) if row else None


def start(db: Database, job_id: int) -> bool:
    """Move a queued job to running; False if it is not queued (already taken or ended)."""
    cur = db.execute(
        "UPDATE jobs SET state = ?, started = ? WHERE id = ? AND state = ?",
        (JobState.RUNNING.value, time.time(), job_id, JobState.QUEUED.value),
    )
    return cur.rowcount == 1


def finish(db: Database, job_id: int, state: JobState, exit_code: int | None, output: str) -> None:
    db.execute(
        "UPDATE jobs SET state = ?, finished = ?, exit_code = ?, output = ? WHERE id = ?",
        (state.value, time.time(), exit_code, output, job_id),
    )


def recent(db: Database, limit: int = 10, requester: str | None = None, states: list[JobState] | None = None) -> list[Job]:
    sql, params = f"SELECT {_COLUMNS} FROM jobs WHERE 1=1", []
    if requester:
        sql += " AND requester = ?"
        params.append(requester)
    if states:
        sql += f" AND state IN ({','.join('?' * len(states))})"
        params.extend(s.value for s in states)
    sql += " ORDER BY id DESC LIMIT ?"
    params.append(limit)
    return [_job(r) for r in db.execute(sql, tuple(params)).fetchall()]


def unfinished(db: Database, ids: list[int]) -> list[int]:
    if not ids:
        return []
    marks = ",".join("?" * len(ids))
    rows = db.execute(
        f"SELECT id FROM jobs WHERE id IN ({marks}) AND state IN (?, ?)",
        (*ids, JobState.QUEUED.value, JobState.RUNNING.value),
    ).fetchall()
    return [r["id"] for r in rows]
