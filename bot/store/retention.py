"""Forgetting on purpose: finished history older than its retention is deleted, a batch at a time.

Only what is over is ever pruned: jobs in an end state (with their approvals),
audit entries, and replies already sent or given up. Work in flight, and
replies still owed, stay whatever their age. Small batches keep each delete's
hold on the write lock short, so messages and workers never wait behind a prune.
"""

from __future__ import annotations

from bot.config import Retention
from bot.flow import JobState
from bot.store.database import Database

BATCH = 1000
_ENDED = tuple(state.value for state in JobState if state.terminal)


def _in_batches(db: Database, table: str, key: str, where: str, params: tuple[object, ...]) -> int:
    removed = 0
    while True:
        with db.transaction():
            ids = [row[0] for row in db.execute(f"SELECT {key} FROM {table} WHERE {where} LIMIT {BATCH}", params).fetchall()]
            if ids:
                marks = ",".join("?" * len(ids))
                if table == "jobs":
                    db.execute(f"DELETE FROM approvals WHERE job_id IN ({marks})", tuple(ids))
                db.execute(f"DELETE FROM {table} WHERE {key} IN ({marks})", tuple(ids))
        removed += len(ids)
        if len(ids) < BATCH:
            return removed


def prune(db: Database, keep: Retention, now: float) -> dict[str, int]:
    """Delete what is past its retention at `now`; returns how many rows of each kind went."""
    removed = {"jobs": 0, "audit": 0, "outbox": 0}
    if keep.jobs is not None:
        states = ",".join("?" * len(_ENDED))
        removed["jobs"] = _in_batches(db, "jobs", "id", f"finished < ? AND state IN ({states})", (now - keep.jobs, *_ENDED))
    if keep.audit is not None:
        removed["audit"] = _in_batches(db, "audit", "id", "ts < ?", (now - keep.audit,))
    if keep.outbox is not None:
        cutoff = now - keep.outbox
        removed["outbox"] = _in_batches(db, "outbox", "id", "(sent < ? OR gave_up < ?)", (cutoff, cutoff))
    return removed
