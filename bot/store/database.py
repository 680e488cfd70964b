"""The SQLite file that holds podbot's truth: the job ledger, the audit log, the outbox, approvals."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    skill TEXT NOT NULL,
    args TEXT NOT NULL,
    requester TEXT NOT NULL,
    conversation TEXT NOT NULL,
    thread TEXT,
    reply_to TEXT,
    state TEXT NOT NULL,
    created REAL NOT NULL,
    started REAL,
    finished REAL,
    exit_code INTEGER,
    output TEXT NOT NULL DEFAULT '',
    attempts INTEGER NOT NULL DEFAULT 0,
    lease_until REAL,
    worker TEXT,
    parent INTEGER,
    env TEXT
);
CREATE INDEX IF NOT EXISTS jobs_state ON jobs(state, skill);
CREATE INDEX IF NOT EXISTS jobs_requester ON jobs(requester, created);
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ts REAL NOT NULL,
    actor TEXT NOT NULL,
    conversation TEXT NOT NULL,
    event TEXT NOT NULL,
    skill TEXT,
    job_id INTEGER,
    detail TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL UNIQUE,
    conversation TEXT NOT NULL,
    platform TEXT NOT NULL,
    thread TEXT,
    text TEXT NOT NULL,
    code TEXT,
    job_id INTEGER,
    created REAL NOT NULL,
    sent REAL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_try REAL,
    last_error TEXT,
    gave_up REAL,
    actions TEXT
);
CREATE INDEX IF NOT EXISTS outbox_pending ON outbox(sent, platform, conversation);
CREATE TABLE IF NOT EXISTS grants (
    identity TEXT NOT NULL,
    role TEXT NOT NULL,
    granted_by TEXT NOT NULL,
    created REAL NOT NULL,
    PRIMARY KEY (identity, role)
);
CREATE TABLE IF NOT EXISTS schedules (
    name TEXT PRIMARY KEY,
    paused INTEGER NOT NULL DEFAULT 0,
    last_fire REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS pending (
    conversation TEXT NOT NULL,
    user TEXT NOT NULL,
    kind TEXT NOT NULL,
    skill TEXT NOT NULL,
    args TEXT NOT NULL,
    missing TEXT,
    thread TEXT,
    expires REAL NOT NULL,
    PRIMARY KEY (conversation, user)
);
CREATE TABLE IF NOT EXISTS approvals (
    job_id INTEGER PRIMARY KEY,
    roles TEXT NOT NULL,
    self_approve INTEGER NOT NULL,
    deadline REAL NOT NULL,
    decided REAL,
    decided_by TEXT,
    approved INTEGER,
    reason TEXT
);
CREATE INDEX IF NOT EXISTS approvals_open ON approvals(decided, deadline);
CREATE TABLE IF NOT EXISTS tokens (
    id TEXT PRIMARY KEY,
    identity TEXT NOT NULL,
    scopes TEXT NOT NULL,
    created REAL NOT NULL,
    expires REAL NOT NULL,
    revoked REAL
);
CREATE TABLE IF NOT EXISTS logins (
    code_hash TEXT PRIMARY KEY,
    identity TEXT NOT NULL,
    expires REAL NOT NULL,
    used REAL
);
"""


# Columns added after a table first shipped: a database made by an older podbot gets them at open.
ADDED_COLUMNS = {
    "jobs": {"attempts": "INTEGER NOT NULL DEFAULT 0", "lease_until": "REAL", "worker": "TEXT", "parent": "INTEGER", "env": "TEXT"},
    "outbox": {"attempts": "INTEGER NOT NULL DEFAULT 0", "next_try": "REAL", "last_error": "TEXT", "gave_up": "REAL", "actions": "TEXT"},
}


class Database:
    """One SQLite file shared by threads and processes (WAL, one connection per thread)."""

    def __init__(self, path: Path):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        conn = self.connect()
        for table, columns in ADDED_COLUMNS.items():
            have = {row["name"] for row in conn.execute(f"PRAGMA table_info({table})")}
            for name, decl in columns.items():
                if have and name not in have:
                    conn.execute(f"ALTER TABLE {table} ADD COLUMN {name} {decl}")
        conn.executescript(SCHEMA)

    def connect(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA busy_timeout=30000")
            self._local.conn = conn
        return conn

    def execute(self, sql: str, params: tuple = ()) -> sqlite3.Cursor:
        return self.connect().execute(sql, params)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Everything written inside lands together or not at all (on this thread's connection).

        BEGIN IMMEDIATE takes the write lock at once, so a transaction never fails half-way because
        another process wrote since it read. Inside one already, it simply joins it.
        """
        conn = self.connect()
        if conn.in_transaction:
            yield
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
            conn.execute("COMMIT")
        finally:
            if conn.in_transaction:  # the block raised, or COMMIT failed: never leave the connection inside it
                conn.execute("ROLLBACK")
