"""Roles granted at run time by admins (/grant, /revoke), kept in the database on top of config."""

from __future__ import annotations

import time

from bot.store.database import Database


def of(db: Database, identity: str) -> set[str]:
    return {r["role"] for r in db.execute("SELECT role FROM grants WHERE identity = ?", (identity,)).fetchall()}


def roles(db: Database) -> set[str]:
    """Every role granted to someone."""
    return {r["role"] for r in db.execute("SELECT DISTINCT role FROM grants").fetchall()}


def grant(db: Database, identity: str, role: str, by: str) -> bool:
    cur = db.execute(
        "INSERT OR IGNORE INTO grants (identity, role, granted_by, created) VALUES (?, ?, ?, ?)", (identity, role, by, time.time())
    )
    return cur.rowcount == 1


def revoke(db: Database, identity: str, role: str) -> bool:
    return db.execute("DELETE FROM grants WHERE identity = ? AND role = ?", (identity, role)).rowcount == 1
