"""The database on both engines: migrations (old SQLite files, several processes at once), `podbot db migrate`
from SQLite to a real PostgreSQL, backups of a live database, retention, and a clear error for a wrong URL."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import threading
import time
from pathlib import Path

from bot.config import Retention
from bot.flow import JobState, Reply
from bot.store import approvals, audit, grants, ledger, migrations, outbox, pending, retention
from bot.store.database import PostgresDatabase, SqliteDatabase, open_database
from tests.conftest import BOTH_ENGINES, cli

# A database as podbot 0.1 left it: no numbered migrations, jobs and outbox without their later columns,
# and `pending.user` (a reserved word on PostgreSQL).
PODBOT_0_1 = """
CREATE TABLE jobs (id INTEGER PRIMARY KEY AUTOINCREMENT, skill TEXT NOT NULL, args TEXT NOT NULL, requester TEXT NOT NULL,
    conversation TEXT NOT NULL, thread TEXT, reply_to TEXT, state TEXT NOT NULL, created REAL NOT NULL, started REAL,
    finished REAL, exit_code INTEGER, output TEXT NOT NULL DEFAULT '');
CREATE TABLE outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT NOT NULL UNIQUE, conversation TEXT NOT NULL,
    platform TEXT NOT NULL, thread TEXT, text TEXT NOT NULL, code TEXT, job_id INTEGER, created REAL NOT NULL, sent REAL);
CREATE TABLE pending (conversation TEXT NOT NULL, user TEXT NOT NULL, kind TEXT NOT NULL, skill TEXT NOT NULL,
    args TEXT NOT NULL, missing TEXT, thread TEXT, expires REAL NOT NULL, PRIMARY KEY (conversation, user));
INSERT INTO jobs (skill, args, requester, conversation, state, created, finished, exit_code, output)
    VALUES ('uptime', '{}', 'console:ada', 'console', 'succeeded', 1700000000.5, 1700000001.25, 0, 'up 3 days');
INSERT INTO outbox (key, conversation, platform, text, created) VALUES ('job:1:0', 'console', 'console', 'job 1 done', 1700000001.3);
"""


def test_an_old_sqlite_database_is_upgraded_in_place(tmp_path: Path) -> None:
    path = tmp_path / "podbot.db"
    with sqlite3.connect(path) as old:
        old.executescript(PODBOT_0_1)
    db = SqliteDatabase(path)
    assert migrations.version(db) == migrations.LATEST
    job = ledger.get(db, 1)
    assert job is not None and job.output == "up 3 days" and job.attempts == 0 and job.finished == 1700000001.25
    assert [item.key for item in outbox.all_pending(db)] == ["job:1:0"]
    pending.put(db, pending.Pending("console", "console:ada", pending.ASK, "tail_log", {}, "file"), 60)
    assert pending.take(db, "console", "console:ada") is not None
    assert ledger.create(db, "uptime", {}, "console:ada", "console").id == 2
    assert migrations.upgrade(SqliteDatabase(path)) == []  # opening again applies nothing


def test_processes_starting_together_migrate_postgresql_once(pg_server) -> None:
    url = pg_server.database("podbot_together")
    opened: list[PostgresDatabase] = []
    threads = [threading.Thread(target=lambda: opened.append(PostgresDatabase(url))) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(opened) == 4
    rows = opened[0].execute("SELECT version FROM schema_migrations ORDER BY version").fetchall()
    assert [row["version"] for row in rows] == [step.version for step in migrations.STEPS]
    for db in opened:
        db.close()


def _history(db) -> None:
    """A little of everything a running bot writes."""
    for n in range(30):
        job = ledger.create(db, "uptime", {"n": n}, "console:olga", "console")
        audit.record(db, "console:olga", "console", "queued", "uptime", job.id)
        outbox.put(db, f"job:{job.id}:0", Reply("console", f"job {job.id} done in 0.1{n} s", job_id=job.id))
    waiting = ledger.create(db, "webhook", {"hook": "deploy"}, "console:olga", "console", state=JobState.AWAITING_APPROVAL)
    approvals.put(db, waiting.id, frozenset({"admin"}), False, time.time() + 600)
    grants.grant(db, "telegram:42", "operator", "console:ada")


def test_db_migrate_moves_sqlite_onto_postgresql(config_path: Path, tmp_path: Path, pg_server) -> None:
    from bot import config

    cfg = config.load(str(config_path), environ={})
    source = open_database(None, cfg.data_dir)
    _history(source)
    url = pg_server.database("podbot_migrated")
    done = cli("--config", str(config_path), "db", "migrate", "--to", url)
    assert done.returncode == 0, done.stderr
    assert "copied" in done.stdout and "podbot:***@" in done.stdout and "pw" not in done.stdout

    target = PostgresDatabase(url)
    for table in migrations.TABLES:
        count = f"SELECT COUNT(*) FROM {table}"
        assert target.execute(count).fetchone()[0] == source.execute(count).fetchone()[0], table
    assert ledger.recent(target, 100) == ledger.recent(source, 100)
    assert [a.job_id for a in approvals.undecided(target)] == [31]
    assert grants.of(target, "telegram:42") == {"operator"}
    assert ledger.create(target, "uptime", {}, "console:ada", "console").id == 32  # ids go on after the copied ones
    again = cli("--config", str(config_path), "db", "migrate", "--to", url)
    assert again.returncode == 1 and "only fills an empty database" in again.stderr
    target.close()


def test_backup_of_a_live_sqlite_database_has_what_a_plain_copy_misses(config_path: Path, tmp_path: Path) -> None:
    from bot import config

    cfg = config.load(str(config_path), environ={})
    live = open_database(None, cfg.data_dir)
    _history(live)  # still in the write-ahead log: this connection stays open, nothing checkpointed it
    naive = tmp_path / "copied.db"
    shutil.copy(cfg.data_dir / "podbot.db", naive)
    done = cli("--config", str(config_path), "db", "backup", str(tmp_path / "backup.db"))
    assert done.returncode == 0, done.stderr
    with sqlite3.connect(tmp_path / "backup.db") as backed_up:
        assert backed_up.execute("SELECT COUNT(*) FROM jobs").fetchone()[0] == 31
    with sqlite3.connect(naive) as copied:
        tables = {row[0] for row in copied.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert "jobs" not in tables or copied.execute("SELECT COUNT(*) FROM jobs").fetchone()[0] < 31


def test_backup_of_postgresql_is_a_pg_dump(tmp_path: Path, log_dir: Path, pg_server) -> None:
    from tests.conftest import write_config

    url = pg_server.database("podbot_backup")
    db = PostgresDatabase(url)
    _history(db)
    path = write_config(tmp_path, log_dir, database=url)
    done = cli("--config", str(path), "db", "backup", str(tmp_path / "podbot.dump"))
    assert done.returncode == 0, done.stderr
    listing = subprocess.run(["pg_restore", "--list", str(tmp_path / "podbot.dump")], capture_output=True, text=True, check=True)
    assert "TABLE DATA public jobs" in listing.stdout and "TABLE DATA public outbox" in listing.stdout
    db.close()


@BOTH_ENGINES
def test_retention_prunes_only_what_is_over(config_path: Path) -> None:
    from bot import config

    cfg = config.load(str(config_path), environ={})
    db = open_database(cfg.database, cfg.data_dir)
    _history(db)
    day = 86400.0
    old = time.time() - 100 * day
    for job in ledger.recent(db, 10, states=[JobState.QUEUED]):
        ledger.claim(db, job.id, "host-a:1", 15)
        ledger.finish(db, job.id, 1, JobState.SUCCEEDED, 0, "ok")
    db.execute("UPDATE jobs SET finished = ?, created = ? WHERE state = ?", (old, old, JobState.SUCCEEDED.value))
    db.execute("UPDATE jobs SET created = ? WHERE state != ?", (old, JobState.SUCCEEDED.value))  # old, but not over
    db.execute("UPDATE audit SET ts = ? WHERE id <= 5", (old,))
    first = outbox.all_pending(db)[:4]
    for item in first[:3]:
        outbox.mark_sent(db, item.id)
    db.execute("UPDATE outbox SET sent = ? WHERE sent IS NOT NULL", (old,))
    db.execute("UPDATE outbox SET created = ?", (old,))

    removed = retention.prune(db, Retention(jobs=90 * day, audit=90 * day, outbox=7 * day), time.time())
    assert removed == {"jobs": 10, "audit": 5, "outbox": 3}
    assert ledger.counts(db, (JobState.QUEUED, JobState.SUCCEEDED, JobState.AWAITING_APPROVAL)) == {
        "queued": 20,
        "succeeded": 0,
        "awaiting_approval": 1,
    }
    assert len(approvals.undecided(db)) == 1
    assert len(outbox.all_pending(db)) == 27  # owed replies stay, however old
    assert retention.prune(db, Retention(None, None, None), time.time()) == {"jobs": 0, "audit": 0, "outbox": 0}
    db.close()


def test_a_wrong_database_url_is_one_line_without_the_password(pg_server, config_path: Path) -> None:
    wrong = f"postgresql://podbot:not-the-pw-123@127.0.0.1:{pg_server.port}/podbot_nowhere"
    import os

    done = cli("--config", str(config_path), "db", "status", env={**os.environ, "PODBOT_DATABASE": wrong})
    assert done.returncode == 1
    [line] = done.stderr.strip().splitlines()
    assert line.startswith("podbot: cannot reach the database postgresql://podbot:***@127.0.0.1:")
    assert "not-the-pw-123" not in done.stderr
