"""The audit log: one row per decision podbot makes about a request or a job."""

from __future__ import annotations

import time
from dataclasses import dataclass

from bot.store.database import Database


@dataclass(frozen=True)
class Entry:
    id: int
    ts: float
    actor: str
    conversation: str
    event: str
    skill: str | None
    job_id: int | None
    detail: str


def record(
    db: Database, actor: str, conversation: str, event: str, skill: str | None = None, job_id: int | None = None, detail: str = ""
) -> None:
    db.execute(
        "INSERT INTO audit (ts, actor, conversation, event, skill, job_id, detail) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (time.time(), actor, conversation, event, skill, job_id, detail[:2000]),
    )


def latest(db: Database, limit: int = 20) -> list[Entry]:
    rows = db.execute(
        "SELECT id, ts, actor, conversation, event, skill, job_id, detail FROM audit ORDER BY id DESC LIMIT ?",
        (limit,),
    ).fetchall()
    return [Entry(**dict(r)) for r in reversed(rows)]
