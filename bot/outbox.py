"""The outbox: every reply is stored before it is sent and marked sent only after.

Keys make stores idempotent: a job's replies are keyed `job:ID:SEQ`, so a
retried store never produces a second reply for the same job.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from bot.db import Database
from bot.models import Reply


@dataclass(frozen=True)
class Pending:
    id: int
    key: str
    reply: Reply


def put(db: Database, key: str, reply: Reply) -> None:
    db.execute(
        "INSERT OR IGNORE INTO outbox (key, conversation, platform, thread, text, code, job_id, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (key, reply.conversation, reply.platform, reply.thread, reply.text, reply.code, reply.job_id, time.time()),
    )


def pending(db: Database, platforms: list[str], limit: int = 100) -> list[Pending]:
    if not platforms:
        return []
    marks = ",".join("?" * len(platforms))
    rows = db.execute(
        f"SELECT id, key, conversation, thread, text, code, job_id FROM outbox"
        f" WHERE sent IS NULL AND platform IN ({marks}) ORDER BY id LIMIT ?",
        (*platforms, limit),
    ).fetchall()
    return [Pending(r["id"], r["key"], Reply(r["conversation"], r["text"], r["code"], r["thread"], r["job_id"])) for r in rows]


def mark_sent(db: Database, outbox_id: int) -> None:
    db.execute("UPDATE outbox SET sent = ? WHERE id = ?", (time.time(), outbox_id))


def count_pending(db: Database, platforms: list[str]) -> int:
    marks = ",".join("?" * len(platforms))
    row = db.execute(f"SELECT COUNT(*) FROM outbox WHERE sent IS NULL AND platform IN ({marks})", tuple(platforms)).fetchone()
    return row[0]


class RetryLater(Exception):
    """Raised by an adapter's send() when the platform says when to try again (e.g. HTTP 429 retry_after)."""

    def __init__(self, seconds: float, reason: str = "rate limited"):
        super().__init__(f"{reason}; retry in {seconds:.1f} s")
        self.seconds = seconds
