"""Schedule state: when each cron entry last fired, and whether it is paused.

Firing is a compare-and-set on the last fire time, so several podbot
processes ticking the same schedules fire each minute once.
"""

from __future__ import annotations

from bot.store.database import Database


def state(db: Database, name: str, now: float) -> tuple[bool, float]:
    """(paused, last fire) of one entry; a new entry starts as fired now, so it never catches up its past."""
    db.execute("INSERT INTO schedules (name, paused, last_fire) VALUES (?, 0, ?) ON CONFLICT DO NOTHING", (name, now))
    row = db.execute("SELECT paused, last_fire FROM schedules WHERE name = ?", (name,)).fetchone()
    return bool(row["paused"]), row["last_fire"]


def claim(db: Database, name: str, last: float, fired: float) -> bool:
    """Record a fire at `fired`, if nobody recorded another since `last`."""
    cur = db.execute("UPDATE schedules SET last_fire = ? WHERE name = ? AND last_fire = ?", (fired, name, last))
    return cur.rowcount == 1


def set_paused(db: Database, name: str, paused: bool, now: float) -> bool:
    """Pause or resume; resuming starts from now, so a pause is never caught up."""
    if paused:
        cur = db.execute("UPDATE schedules SET paused = 1 WHERE name = ?", (name,))
    else:
        cur = db.execute("UPDATE schedules SET paused = 0, last_fire = ? WHERE name = ?", (now, name))
    return cur.rowcount == 1


def paused(db: Database, name: str) -> bool:
    """Whether an entry is paused, without creating its row (a reader such as `podbot status` must not start its clock)."""
    row = db.execute("SELECT paused FROM schedules WHERE name = ?", (name,)).fetchone()
    return row is not None and bool(row["paused"])
