"""The outbox: every reply is stored before it is sent and marked sent only after the platform accepted it.

Keys make stores idempotent: a job's result is keyed `job:ID:SEQ`, so a retried
store never produces a second reply for the same job. A reply the platform
refuses stays, and is tried again with exponential backoff and jitter (or when
the platform said, via RetryLater); replies to one conversation go out in order,
so a refused one holds back the later ones of its conversation only.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from bot.errors import RetryLater, Undeliverable
from bot.flow import Action, Reply
from bot.store.database import Database, Row

log = logging.getLogger(__name__)

BACKOFF_BASE = 0.5
BACKOFF_MAX = 60.0


@dataclass(frozen=True)
class Outgoing:
    id: int
    key: str
    reply: Reply
    attempts: int = 0
    next_try: float = 0.0
    last_error: str = ""
    created: float = 0.0


def put(db: Database, key: str, reply: Reply) -> None:
    db.execute(
        "INSERT INTO outbox (key, conversation, platform, thread, text, code, job_id, created, actions)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO NOTHING",
        (key, reply.conversation, reply.platform, reply.thread, reply.text, reply.code, reply.job_id, time.time(), _actions(reply)),
    )


def _actions(reply: Reply) -> str | None:
    return json.dumps([[a.label, a.command] for a in reply.actions]) if reply.actions else None


_SELECT = "SELECT id, key, conversation, platform, thread, text, code, job_id, attempts, next_try, last_error, created, actions FROM outbox"


def _pending(r: Row) -> Outgoing:
    actions = tuple(Action(label, command) for label, command in json.loads(r["actions"] or "[]"))
    reply = Reply(r["conversation"], r["text"], r["code"], r["thread"], r["job_id"], actions)
    return Outgoing(r["id"], r["key"], reply, r["attempts"], r["next_try"] or 0.0, r["last_error"] or "", r["created"])


def _owed(platforms: list[str], conversations: Sequence[str] | None) -> tuple[str, tuple[str, ...]]:
    """The WHERE condition (and its parameters) for unsent replies to these platforms, or only to `conversations` of them."""
    where = f"sent IS NULL AND gave_up IS NULL AND platform IN ({','.join('?' * len(platforms))})"
    if conversations is None:
        return where, tuple(platforms)
    return f"{where} AND conversation IN ({','.join('?' * len(conversations))})", (*platforms, *conversations)


def pending(
    db: Database, platforms: list[str], limit: int = 500, now: float | None = None, conversations: Sequence[str] | None = None
) -> list[Outgoing]:
    """Unsent replies for these platforms (only to `conversations`, when given) that may go now, oldest first.

    A conversation whose oldest unsent reply waits for a retry is left out whole, so
    its order holds and a long backlog there never hides other conversations' replies.
    """
    if not platforms:
        return []
    now = time.time() if now is None else now
    where, params = _owed(platforms, conversations)
    rows = db.execute(
        f"{_SELECT} WHERE {where} AND conversation NOT IN"
        " (SELECT conversation FROM outbox WHERE sent IS NULL AND gave_up IS NULL AND next_try > ?) ORDER BY id LIMIT ?",
        (*params, now, limit),
    ).fetchall()
    return [_pending(r) for r in rows]


def give_up(db: Database, item: Outgoing, error: Exception) -> None:
    """Stop trying a reply the platform will never take; it stays in the table with the reason."""
    db.execute("UPDATE outbox SET gave_up = ?, last_error = ? WHERE id = ?", (time.time(), f"undeliverable: {error}"[:300], item.id))


def mark_sent(db: Database, outbox_id: int) -> None:
    db.execute("UPDATE outbox SET sent = ? WHERE id = ? AND sent IS NULL", (time.time(), outbox_id))


def mark_failed(db: Database, item: Outgoing, error: Exception) -> float:
    """Record a refused send; return the delay before the next try."""
    if isinstance(error, RetryLater):
        delay = error.seconds
    else:
        delay = min(BACKOFF_MAX, BACKOFF_BASE * 2**item.attempts) * random.uniform(0.5, 1.5)
    db.execute(
        "UPDATE outbox SET attempts = attempts + 1, next_try = ?, last_error = ? WHERE id = ?",
        (time.time() + delay, f"{type(error).__name__}: {error}"[:300], item.id),
    )
    return delay


def retry_now(db: Database, conversation: str) -> None:
    """Its platform can take this conversation's replies again (a client reconnected): try them now, not after the backoff."""
    db.execute("UPDATE outbox SET next_try = NULL WHERE conversation = ? AND sent IS NULL AND gave_up IS NULL", (conversation,))


def count_pending(db: Database, platforms: list[str], conversations: Sequence[str] | None = None) -> int:
    if not platforms:
        return 0
    where, params = _owed(platforms, conversations)
    return db.execute(f"SELECT COUNT(*) FROM outbox WHERE {where}", params).fetchone()[0]


def deliver(
    db: Database, senders: dict[str, Callable[[Reply], None]], now: float | None = None, conversations: Sequence[str] | None = None
) -> int:
    """One pass over what is owed to the platforms in `senders` (platform -> send(reply)), or only to `conversations`
    of them; returns how many went out."""
    now = time.time() if now is None else now
    blocked: set[str] = set()
    sent = 0
    for item in pending(db, list(senders), now=now, conversations=conversations):
        conversation = item.reply.conversation
        if conversation in blocked:
            continue
        try:
            senders[item.reply.platform](item.reply)
        except Undeliverable as exc:
            give_up(db, item, exc)
            log.error("%s will never take %s (%s); gave it up", item.reply.platform, item.key, exc)
            continue
        except Exception as exc:  # any refusal: keep it, try later, hold back its conversation
            delay = mark_failed(db, item, exc)
            log.warning("%s refused %s (%s); next try in %.1f s", item.reply.platform, item.key, exc, delay)
            blocked.add(conversation)
            continue
        mark_sent(db, item.id)
        sent += 1
    return sent


def backlog(db: Database) -> list[tuple[str, int, float]]:
    """(platform, replies owed, when the oldest was stored) for every platform that is owed any."""
    rows = db.execute(
        "SELECT platform, COUNT(*) AS n, MIN(created) AS first FROM outbox WHERE sent IS NULL AND gave_up IS NULL GROUP BY platform"
    )
    return [(r["platform"], r["n"], r["first"]) for r in rows]


def all_pending(db: Database) -> list[Outgoing]:
    """Every unsent reply, oldest first (for `podbot outbox`)."""
    return [_pending(r) for r in db.execute(f"{_SELECT} WHERE sent IS NULL AND gave_up IS NULL ORDER BY id").fetchall()]
