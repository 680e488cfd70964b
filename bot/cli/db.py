"""`podbot db`: which database, its schema version, moving SQLite onto PostgreSQL, backups and pruning now."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

import click

from bot.cli import common
from bot.cli.common import JSON_HELP, Invocation, fail, out, pass_invocation
from bot.store import migrations, retention
from bot.store.database import PostgresDatabase, SqliteDatabase, open_database


@click.group()
def db() -> None:
    """The database: schema version, migrate SQLite to PostgreSQL, backup, prune.

    \b
      podbot db status                         engine, where, schema version
      podbot db migrate --to postgresql://…    copy this SQLite database into an empty PostgreSQL one
      podbot db backup FILE                    a consistent copy while podbot runs
      podbot db prune                          apply `retention` now (the bot also does hourly)
    """


@db.command("status")
@click.option("--json", "as_json", is_flag=True, help="One JSON object, for scripts.")
@pass_invocation
def status(inv: Invocation, as_json: bool) -> None:
    """Which database this config uses and its schema version (opening it applies pending migrations)."""
    database = common.database(inv.config())
    found = {"engine": database.engine, "where": database.where, "schema": migrations.version(database), "latest": migrations.LATEST}
    if as_json:
        click.echo(json.dumps(found))
    else:
        out.print(f"{found['engine']} {found['where']}: schema version {found['schema']} (this podbot: {found['latest']})", highlight=False)


@db.command("migrate")
@click.option("--to", "target_url", required=True, metavar="postgresql://…", help="The empty PostgreSQL database to fill.")
@click.option("--from", "source_path", type=click.Path(dir_okay=False, path_type=Path), help="SQLite file (default: the data dir's).")
@pass_invocation
def migrate(inv: Invocation, target_url: str, source_path: Path | None) -> None:
    """Copy every job, reply, audit entry, grant, schedule state, approval and token from SQLite into PostgreSQL.

    Stop podbot first (run and workers). Afterwards set `database:` (or PODBOT_DATABASE) to the same URL
    and start it again: jobs that were queued are queued again from the ledger within seconds.
    """
    cfg = inv.config()
    source_path = source_path or cfg.data_dir / "podbot.db"
    if not source_path.exists():
        fail(f"{source_path} does not exist: nothing to migrate")
    if not target_url.startswith(("postgresql://", "postgres://")):
        fail("--to must be a postgresql:// URL")
    source = SqliteDatabase(source_path)
    target = PostgresDatabase(target_url)
    started = time.monotonic()
    try:
        moved = migrations.copy(source, target, lambda table, n: click.echo(f"  {table}: {n} rows", err=True))
    except RuntimeError as exc:
        fail(str(exc))
    finally:
        target.close()
    total = sum(moved.values())
    out.print(f"copied {total} rows from {source.where} to {target.where} in {time.monotonic() - started:.1f} s", highlight=False)
    out.print(f"now set `database: {target.where}` in podbot.yaml (or PODBOT_DATABASE) and start podbot", highlight=False)


@db.command("backup")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@pass_invocation
def backup(inv: Invocation, file: Path) -> None:
    """Write a consistent copy of the live database to FILE.

    SQLite: the online backup API (a plain `cp` of a live database can miss what is still in its WAL).
    PostgreSQL: `pg_dump --format=custom` (restore with `pg_restore`).
    """
    cfg = inv.config()
    database = open_database(cfg.database, cfg.data_dir, migrate=False)
    if file.exists():
        fail(f"{file} exists; give a new file name")
    started = time.monotonic()
    if isinstance(database, SqliteDatabase):
        database.backup(file)
    elif isinstance(database, PostgresDatabase):
        database.close()
        if shutil.which("pg_dump") is None:
            fail("pg_dump is missing (Debian: apt-get install postgresql-client)")
        done = subprocess.run(["pg_dump", "--format=custom", "--file", str(file), database.url], capture_output=True, text=True)
        if done.returncode != 0:
            fail(f"pg_dump failed: {done.stderr.strip()}")
    size = file.stat().st_size
    out.print(f"backed up {database.where} to {file} ({size / 1024:.0f} KiB) in {time.monotonic() - started:.1f} s", highlight=False)


@db.command("prune")
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
@pass_invocation
def prune(inv: Invocation, as_json: bool) -> None:
    """Delete finished jobs, audit entries and sent replies older than `retention` says, now."""
    cfg = inv.config()
    removed = retention.prune(common.database(cfg), cfg.retention, time.time())
    if as_json:
        click.echo(json.dumps(removed))
    else:
        out.print("removed " + ", ".join(f"{n} {kind}" for kind, n in removed.items()), highlight=False)
