"""Named leases in the database: one holder at a time, for as long as it keeps renewing.

Taking and renewing are one upsert: the row changes only when its holder is the
one asking, or when its time ran out, so whoever's write lands first holds it
and everyone else is told no. Times are each host's clock (as the job leases'
are): hosts that share a database keep their clocks in step (NTP).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from bot.store.database import Database


@dataclass(frozen=True)
class Lease:
    name: str
    holder: str
    until: float


def hold(db: Database, name: str, holder: str, seconds: float, now: float | None = None) -> bool:
    """Take the lease `name` for `holder`, or renew it, until now + `seconds`; False while someone else holds it."""
    now = time.time() if now is None else now
    row = db.execute(
        "INSERT INTO leases (name, holder, until) VALUES (?, ?, ?)"
        " ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, until = excluded.until"
        " WHERE leases.holder = excluded.holder OR leases.until < ? RETURNING holder",
        (name, holder, now + seconds, now),
    ).fetchone()
    return row is not None


def take_over(db: Database, name: str, holder: str, previous: str, seconds: float, now: float | None = None) -> bool:
    """Take the lease from `previous` before its time runs out (it is known dead); False if it changed hands meanwhile."""
    now = time.time() if now is None else now
    cur = db.execute("UPDATE leases SET holder = ?, until = ? WHERE name = ? AND holder = ?", (holder, now + seconds, name, previous))
    return cur.rowcount == 1


def release(db: Database, name: str, holder: str) -> None:
    """Give the lease up at once (a clean stop), if `holder` still holds it."""
    db.execute("DELETE FROM leases WHERE name = ? AND holder = ?", (name, holder))


def current(db: Database, name: str, now: float | None = None) -> Lease | None:
    """Who holds `name` now; None when nobody does (never taken, released, or run out)."""
    now = time.time() if now is None else now
    row = db.execute("SELECT name, holder, until FROM leases WHERE name = ? AND until >= ?", (name, now)).fetchone()
    return Lease(row["name"], row["holder"], row["until"]) if row else None


def held(db: Database, prefix: str, now: float | None = None) -> list[Lease]:
    """The leases whose names start with `prefix` and whose time has not run out, by name."""
    now = time.time() if now is None else now
    rows = db.execute("SELECT name, holder, until FROM leases WHERE name LIKE ? AND until >= ? ORDER BY name", (f"{prefix}%", now))
    return [Lease(r["name"], r["holder"], r["until"]) for r in rows]
