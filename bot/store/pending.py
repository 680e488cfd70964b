"""What the bot is waiting for from one person in one conversation: a confirmation or a missing argument.

At most one pending item per (conversation, person); a newer one replaces it.
Only that person, in that conversation, before it expires, can answer it.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from bot.store.database import Database

CONFIRM = "confirm"
ASK = "ask"


@dataclass(frozen=True)
class Pending:
    conversation: str
    user: str
    kind: str  # CONFIRM or ASK
    skill: str
    args: dict[str, Any] = field(default_factory=dict)
    missing: str | None = None  # for ASK: the parameter the answer fills
    thread: str | None = None
    expires: float = 0.0


def put(db: Database, item: Pending, ttl: float) -> None:
    db.execute(
        "INSERT INTO pending (conversation, person, kind, skill, args, missing, thread, expires) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (conversation, person) DO UPDATE SET kind = excluded.kind, skill = excluded.skill, args = excluded.args,"
        " missing = excluded.missing, thread = excluded.thread, expires = excluded.expires",
        (item.conversation, item.user, item.kind, item.skill, json.dumps(item.args), item.missing, item.thread, time.time() + ttl),
    )


def take(db: Database, conversation: str, user: str) -> Pending | None:
    """Remove and return what this person owes an answer to here; None if nothing or expired."""
    row = db.execute("DELETE FROM pending WHERE conversation = ? AND person = ? RETURNING *", (conversation, user)).fetchone()
    if row is None or row["expires"] < time.time():
        return None
    return Pending(
        row["conversation"],
        row["person"],
        row["kind"],
        row["skill"],
        json.loads(row["args"]),
        row["missing"],
        row["thread"],
        row["expires"],
    )
