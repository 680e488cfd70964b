"""Roles granted at run time by admins (/grant, /revoke), kept in the database on top of config."""

from __future__ import annotations

import time
from dataclasses import dataclass

from bot.store.database import Database


@dataclass(frozen=True)
class Grant:
    identity: str
    role: str
    by: str
    created: float


def of(db: Database, identity: str) -> set[str]:
    return {r["role"] for r in db.execute("SELECT role FROM grants WHERE identity = ?", (identity,)).fetchall()}


def roles(db: Database) -> set[str]:
    """Every role granted to someone."""
    return {r["role"] for r in db.execute("SELECT DISTINCT role FROM grants").fetchall()}


def grant(db: Database, identity: str, role: str, by: str) -> bool:
    cur = db.execute(
        "INSERT INTO grants (identity, role, granted_by, created) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
        (identity, role, by, time.time()),
    )
    return cur.rowcount == 1


def revoke(db: Database, identity: str, role: str) -> bool:
    return db.execute("DELETE FROM grants WHERE identity = ? AND role = ?", (identity, role)).rowcount == 1


def every(db: Database) -> list[Grant]:
    rows = db.execute("SELECT identity, role, granted_by, created FROM grants ORDER BY identity, role").fetchall()
    return [Grant(r["identity"], r["role"], r["granted_by"], r["created"]) for r in rows]
