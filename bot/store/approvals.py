"""Approvals: who may approve each awaiting job, until when, and who decided.

The job's state in the ledger is the truth (`awaiting_approval` until decided);
a decision here changes both in one compare-and-set on that state, so two
approvers (or an approver and the expiry loop) never both decide one job.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

from bot.flow import JobState
from bot.store import ledger
from bot.store.database import Database, Row

TIMEOUT_ACTOR = "podbot:approval-timeout"  # who "decided" a job nobody answered in time


@dataclass(frozen=True)
class Approval:
    job_id: int
    roles: frozenset[str]
    self_approve: bool
    deadline: float
    decided: float | None = None
    decided_by: str | None = None
    approved: bool | None = None
    reason: str = ""


def put(db: Database, job_id: int, roles: frozenset[str], self_approve: bool, deadline: float) -> None:
    db.execute(
        "INSERT INTO approvals (job_id, roles, self_approve, deadline) VALUES (?, ?, ?, ?)",
        (job_id, json.dumps(sorted(roles)), int(self_approve), deadline),
    )


_COLUMNS = "job_id, roles, self_approve, deadline, decided, decided_by, approved, reason"


def get(db: Database, job_id: int) -> Approval | None:
    row = db.execute(f"SELECT {_COLUMNS} FROM approvals WHERE job_id = ?", (job_id,)).fetchone()
    return None if row is None else _approval(row)


def undecided(db: Database) -> list[Approval]:
    """Every approval nobody has decided yet, oldest job first."""
    return [_approval(row) for row in db.execute(f"SELECT {_COLUMNS} FROM approvals WHERE decided IS NULL ORDER BY job_id").fetchall()]


def _approval(row: Row) -> Approval:
    return Approval(
        job_id=row["job_id"],
        roles=frozenset(json.loads(row["roles"])),
        self_approve=bool(row["self_approve"]),
        deadline=row["deadline"],
        decided=row["decided"],
        decided_by=row["decided_by"],
        approved=None if row["approved"] is None else bool(row["approved"]),
        reason=row["reason"] or "",
    )


def decide(db: Database, job_id: int, by: str, approved: bool, reason: str = "") -> bool:
    """Approve (the job is queued) or deny (it ends denied with `reason`); False if the job was no longer awaiting.

    Call inside a transaction: the job's state and the approval's record change together.
    """
    changed = ledger.approve(db, job_id) if approved else ledger.deny(db, job_id, reason)
    if changed:
        db.execute(
            "UPDATE approvals SET decided = ?, decided_by = ?, approved = ?, reason = ? WHERE job_id = ?",
            (time.time(), by, int(approved), reason, job_id),
        )
    return changed


def overdue(db: Database, now: float) -> list[int]:
    """Jobs still awaiting approval whose deadline has passed."""
    rows = db.execute(
        "SELECT a.job_id FROM approvals AS a JOIN jobs AS j ON j.id = a.job_id"
        " WHERE a.decided IS NULL AND a.deadline < ? AND j.state = ? ORDER BY a.job_id",
        (now, JobState.AWAITING_APPROVAL.value),
    ).fetchall()
    return [r["job_id"] for r in rows]
