"""`podbot outbox` and `podbot audit`: what is owed to the platforms, and what was decided."""

from __future__ import annotations

import dataclasses
import json
import time

import click
from rich.table import Table

from bot.cli.common import Invocation, out, pass_invocation
from bot.store import audit as audit_log
from bot.store import outbox as outbox_store
from bot.store.database import Database


@click.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON array, for scripts.")
@pass_invocation
def outbox(inv: Invocation, as_json: bool) -> None:
    """Replies not yet accepted by their platform, and why."""
    cfg = inv.config()
    items = outbox_store.all_pending(Database(cfg.db_path))
    if as_json:
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
        click.echo(json.dumps(rows, indent=2))
        return
    if not items:
        out.print("The outbox is empty: every reply was delivered.")
        return
    table = Table("id", "key", "to", "age", "tries", "next try", "last error", "text")
    now = time.time()
    for item in items:
        wait = f"in {item.next_try - now:.0f} s" if item.next_try > now else "now"
        age = f"{now - item.created:.0f} s"
        table.add_row(str(item.id), item.key, item.reply.conversation, age, str(item.attempts), wait, item.last_error, item.reply.text[:60])
    out.print(table)
    out.print(f"{len(items)} {'reply' if len(items) == 1 else 'replies'} pending")


@click.command()
@click.option("-n", "limit", default=20, show_default=True, help="How many entries.")
@click.option("--json", "as_json", is_flag=True, help="One JSON array, for scripts.")
@pass_invocation
def audit(inv: Invocation, limit: int, as_json: bool) -> None:
    """Show the latest audit entries: who asked for what, and what podbot decided."""
    cfg = inv.config()
    entries = audit_log.latest(Database(cfg.db_path), limit)
    if as_json:
        click.echo(json.dumps([dataclasses.asdict(e) for e in entries], indent=2))
        return
    table = Table("time", "actor", "event", "skill", "job", "detail")
    for entry in entries:
        when = time.strftime("%m-%d %H:%M:%S", time.localtime(entry.ts))
        table.add_row(when, entry.actor, entry.event, entry.skill or "", str(entry.job_id or ""), entry.detail)
    out.print(table)
