"""`podbot jobs`, `podbot outbox` and `podbot audit`: what ran, what is owed to the platforms, and what was decided."""

from __future__ import annotations

import dataclasses
import datetime as dt
import time

import click

from bot.cli import common
from bot.cli.common import JSON_HELP, Invocation, Row, out, pass_invocation, show
from bot.flow import Job, JobState, request
from bot.schema import parse_duration
from bot.store import audit as audit_log
from bot.store import ledger
from bot.store import outbox as outbox_store


def _clock(ts: float | None) -> str:
    return time.strftime("%m-%d %H:%M:%S", time.localtime(ts)) if ts else ""


def _since(text: str) -> float:
    """A moment given as a duration back from now (`90s`, `30m`, `2h`) or as an ISO date or time (local time)."""
    try:
        return time.time() - parse_duration(text)
    except ValueError:
        pass
    try:
        return dt.datetime.fromisoformat(text).timestamp()
    except ValueError:
        raise click.BadParameter(f"{text!r} is neither a duration such as 30m or 2h nor a date such as 2026-11-25T09:00") from None


def _job_row(job: Job) -> Row:
    # A fallback's env repeats its failed job's output: `podbot jobs` shows the output once.
    row = {k: v for k, v in dataclasses.asdict(job).items() if k != "env"}
    return {**row, "state": job.state.value}


JOB_COLUMNS = (
    ("id", lambda r: r["id"]),
    ("state", lambda r: r["state"]),
    ("exit", lambda r: r["exit_code"]),
    ("request", lambda r: request(r["skill"], r["args"])[:60]),
    ("by", lambda r: r["requester"]),
    ("created", lambda r: _clock(r["created"])),
    ("ran", lambda r: f"{r['finished'] - r['started']:.2f} s" if r["started"] and r["finished"] else ""),
)


@click.command()
@click.option(
    "--state", "states", multiple=True, type=click.Choice([s.value for s in JobState]), help="Only jobs in this state (repeatable)."
)
@click.option("--skill", help="Only runs of this skill.")
@click.option("--since", help="Only jobs created since: a duration back (30m, 2h) or an ISO date/time.")
@click.option("--user", help="Only jobs of this identity (e.g. console:alice).")
@click.option("-n", "limit", default=20, show_default=True, type=click.IntRange(1), help="At most this many, newest first.")
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
@pass_invocation
def jobs(
    inv: Invocation, states: tuple[str, ...], skill: str | None, since: str | None, user: str | None, limit: int, as_json: bool
) -> None:
    """The latest jobs from the ledger: state, exit code, who asked."""
    cfg = inv.config()
    after = _since(since) if since else None
    found = ledger.recent(common.database(cfg), limit, user, [JobState(s) for s in states] or None, skill=skill, since=after)
    show([_job_row(j) for j in found], as_json, JOB_COLUMNS, "No jobs match.")


@click.command()
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
@pass_invocation
def outbox(inv: Invocation, as_json: bool) -> None:
    """Replies not yet accepted by their platform, and why."""
    cfg = inv.config()
    items = outbox_store.all_pending(common.database(cfg))
    rows = [
        {
            "id": i.id,
            "key": i.key,
            "to": i.reply.conversation,
            "created": i.created,
            "attempts": i.attempts,
            "next_try": i.next_try,
            "last_error": i.last_error,
            "text": i.reply.text,
        }
        for i in items
    ]
    now = time.time()
    columns = (
        ("id", lambda r: r["id"]),
        ("key", lambda r: r["key"]),
        ("to", lambda r: r["to"]),
        ("age", lambda r: f"{now - r['created']:.0f} s"),
        ("tries", lambda r: r["attempts"]),
        ("next try", lambda r: f"in {r['next_try'] - now:.0f} s" if r["next_try"] > now else "now"),
        ("last error", lambda r: r["last_error"]),
        ("text", lambda r: r["text"][:60]),
    )
    show(rows, as_json, columns, "The outbox is empty: every reply was delivered.")
    if rows and not as_json:
        out.print(f"{len(rows)} {'reply' if len(rows) == 1 else 'replies'} pending")


@click.command()
@click.option("-n", "limit", default=20, show_default=True, help="How many entries.")
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
@pass_invocation
def audit(inv: Invocation, limit: int, as_json: bool) -> None:
    """Show the latest audit entries: who asked for what, and what podbot decided."""
    cfg = inv.config()
    entries = audit_log.latest(common.database(cfg), limit)
    columns = (
        ("time", lambda r: _clock(r["ts"])),
        ("actor", lambda r: r["actor"]),
        ("event", lambda r: r["event"]),
        ("skill", lambda r: r["skill"]),
        ("job", lambda r: r["job_id"]),
        ("detail", lambda r: r["detail"]),
    )
    show([dataclasses.asdict(e) for e in entries], as_json, columns, "No audit entries yet.")
