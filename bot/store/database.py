"""The database that holds podbot's truth (job ledger, outbox, audit, grants, approvals …), on one of two engines.

SQLite is the embedded default: one file in the data dir, no server. PostgreSQL
(`database: postgresql://…`) is the shared engine for workers on several hosts.
Both take the same SQL: the store modules write `?` placeholders and the
statements both engines speak (ON CONFLICT, RETURNING); the schema and its
migrations live once, in bot/store/migrations.py.

A transaction's writes land together on both engines. One that checks and then
writes on what it read (a skill's concurrency limit, a migration) asks for
`exclusive`: SQLite's BEGIN IMMEDIATE takes the file's one write lock for every
transaction anyway, and on PostgreSQL an exclusive transaction takes one advisory
lock, so the check holds across every process and host. The rest (a message's
handling, a job's end) are compare-and-sets that need no lock, so on PostgreSQL
the bot's understanding of a message never holds up workers ending their jobs.
"""

from __future__ import annotations

import re
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

from bot.errors import Unavailable

SQLITE = "sqlite"
POSTGRESQL = "postgresql"
# pg_advisory_xact_lock key of the one write lock (any constant; "podb" in ASCII).
WRITE_LOCK = 0x706F6462
POOL_TIMEOUT = 30.0  # seconds to wait for a free pooled connection before an error
CONNECT_TIMEOUT = 10  # seconds to reach the server at start


class Row(Protocol):
    def __getitem__(self, key: int | str) -> Any: ...


@dataclass
class Result:
    """What a statement gave back, read whole: rows (if any) and how many rows it changed."""

    rows: list[Any] = field(default_factory=list)
    rowcount: int = -1

    def fetchone(self) -> Any:
        return self.rows[0] if self.rows else None

    def fetchall(self) -> list[Any]:
        return self.rows

    def __iter__(self) -> Iterator[Any]:
        return iter(self.rows)


class Database(Protocol):
    engine: str  # SQLITE or POSTGRESQL
    where: str  # for people: the file, or the server and database (never the password)

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Result: ...

    def transaction(self, exclusive: bool = False) -> AbstractContextManager[None]: ...

    def close(self) -> None: ...


def shown_url(url: str) -> str:
    """A database URL fit for logs and status: the password replaced."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


class SqliteDatabase:
    """One SQLite file shared by threads and processes (WAL, one connection per thread)."""

    engine = SQLITE

    def __init__(self, path: Path, migrate: bool = True):
        self.path = path
        self.where = str(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        if migrate:
            from bot.store import migrations

            migrations.upgrade(self)

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

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Result:
        cur = self.connect().execute(sql, tuple(params))
        return Result(cur.fetchall(), cur.rowcount)

    @contextmanager
    def transaction(self, exclusive: bool = False) -> Iterator[None]:
        """Everything written inside lands together or not at all (on this thread's connection).

        BEGIN IMMEDIATE takes the write lock at once (every transaction is exclusive here), so a transaction
        never fails half-way because another process wrote since it read. Inside one already, it simply joins it.
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

    def backup(self, target: Path) -> None:
        """A consistent copy of the live database (SQLite's online backup API; a plain copy can miss the WAL)."""
        dest = sqlite3.connect(target)
        try:
            self.connect().backup(dest)
        finally:
            dest.close()

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None


class _PgRow:
    """A row readable by column name or position, like sqlite3.Row."""

    __slots__ = ("_names", "_values")

    def __init__(self, names: dict[str, int], values: Sequence[Any]):
        self._names, self._values = names, values

    def __getitem__(self, key: int | str) -> Any:
        return self._values[self._names[key] if isinstance(key, str) else key]

    def keys(self) -> list[str]:
        return list(self._names)


def _pg_rows(cursor: Any) -> Any:
    names = {column.name: i for i, column in enumerate(cursor.description or ())}
    return lambda values: _PgRow(names, values)


_PLACEHOLDER = re.compile(r"\?")


def _pg_sql(sql: str) -> str:
    # The store's SQL has no literal `?` or `%`: placeholders are its only question marks.
    return _PLACEHOLDER.sub("%s", sql)


class PostgresDatabase:
    """PostgreSQL through a psycopg 3 connection pool; a thread inside a transaction keeps its connection."""

    engine = POSTGRESQL

    def __init__(self, url: str, pool_size: int = 10, migrate: bool = True):
        import psycopg
        import psycopg_pool

        self.url = url
        self.where = shown_url(url)
        self._local = threading.local()
        try:  # one plain connection first: a wrong address or password is an error now, with the server's reason
            psycopg.connect(url, connect_timeout=CONNECT_TIMEOUT).close()
        except psycopg.Error as exc:
            raise Unavailable(f"cannot reach the database {self.where}: {str(exc).strip()}") from None
        self.pool = psycopg_pool.ConnectionPool(
            url,
            min_size=1,
            max_size=pool_size,
            timeout=POOL_TIMEOUT,
            kwargs={"autocommit": True, "row_factory": _pg_rows},
            open=True,
            name="podbot",
            num_workers=1,
        )
        if migrate:
            from bot.store import migrations

            migrations.upgrade(self)

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Result:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            return self._run(conn, sql, params)
        with self.pool.connection() as conn:
            return self._run(conn, sql, params)

    @staticmethod
    def _run(conn: Any, sql: str, params: Sequence[Any]) -> Result:
        cur = conn.execute(_pg_sql(sql), tuple(params), prepare=False)
        return Result(cur.fetchall() if cur.description else [], cur.rowcount)

    @contextmanager
    def transaction(self, exclusive: bool = False) -> Iterator[None]:
        """Everything written inside lands together or not at all; `exclusive`: under the one write lock (module doc).

        Inside one already, it joins it (taking the lock now, if asked and not yet held: it is held to the end).
        """
        joined = getattr(self._local, "conn", None)
        if joined is not None:
            if exclusive:
                joined.execute("SELECT pg_advisory_xact_lock(%s)", (WRITE_LOCK,))
            yield
            return
        with self.pool.connection() as conn:
            self._local.conn = conn
            try:
                with conn.transaction():
                    if exclusive:
                        conn.execute("SELECT pg_advisory_xact_lock(%s)", (WRITE_LOCK,))
                    yield
            finally:
                self._local.conn = None

    def close(self) -> None:
        self.pool.close()


def open_database(url: str | None, data_dir: Path, migrate: bool = True) -> Database:
    """The database `url` names (postgresql://…), or the SQLite file in the data dir when it names none."""
    if url and url.startswith(("postgresql://", "postgres://")):
        return PostgresDatabase(url, migrate=migrate)
    if url and url.startswith("sqlite:///"):
        return SqliteDatabase(Path(url.removeprefix("sqlite://")), migrate=migrate)
    return SqliteDatabase(data_dir / "podbot.db", migrate=migrate)
