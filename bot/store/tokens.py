"""The gateway's tokens and one-time login codes.

Every token issued has a row, so that it can be revoked before it expires. The
signed token itself never reaches the database: only its id, whom it speaks
for, what it may do and until when. A login code is kept only as its SHA-256,
and using it is a compare-and-set, so it works once.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from bot.store.database import Database, Row


@dataclass(frozen=True)
class Issued:
    id: str
    identity: str
    scopes: tuple[str, ...]
    created: float
    expires: float
    revoked: float | None


def add(db: Database, token_id: str, identity: str, scopes: tuple[str, ...], expires: float) -> None:
    db.execute(
        "INSERT INTO tokens (id, identity, scopes, created, expires) VALUES (?, ?, ?, ?, ?)",
        (token_id, identity, " ".join(scopes), time.time(), expires),
    )


def _issued(row: Row) -> Issued:
    return Issued(row["id"], row["identity"], tuple(row["scopes"].split()), row["created"], row["expires"], row["revoked"])


def get(db: Database, token_id: str) -> Issued | None:
    row = db.execute("SELECT id, identity, scopes, created, expires, revoked FROM tokens WHERE id = ?", (token_id,)).fetchone()
    return None if row is None else _issued(row)


def listing(db: Database, since: float) -> list[Issued]:
    """Tokens (and browser sessions) that expire after `since`, newest first."""
    rows = db.execute(
        "SELECT id, identity, scopes, created, expires, revoked FROM tokens WHERE expires > ? ORDER BY created DESC", (since,)
    )
    return [_issued(r) for r in rows]


def revoke(db: Database, token_id: str) -> bool:
    """Revoke a token; False when there is no such token or it was revoked already."""
    return db.execute("UPDATE tokens SET revoked = ? WHERE id = ? AND revoked IS NULL", (time.time(), token_id)).rowcount == 1


def add_login(db: Database, code_hash: str, identity: str, expires: float) -> None:
    db.execute("INSERT INTO logins (code_hash, identity, expires) VALUES (?, ?, ?)", (code_hash, identity, expires))


def use_login(db: Database, code_hash: str, now: float) -> str | None:
    """The identity of an unused, unexpired login code, which is used up by this call; None for any other code."""
    with db.transaction():
        taken = db.execute("UPDATE logins SET used = ? WHERE code_hash = ? AND used IS NULL AND expires > ?", (now, code_hash, now))
        if taken.rowcount != 1:
            return None
        return db.execute("SELECT identity FROM logins WHERE code_hash = ?", (code_hash,)).fetchone()["identity"]
