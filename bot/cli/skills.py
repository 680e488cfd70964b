"""`podbot skills` and `podbot schedules`: what the configured manifests define."""

from __future__ import annotations

import dataclasses
import time

import click

from bot.catalog import Catalog
from bot.chat import scheduled
from bot.cli import common
from bot.cli.common import JSON_HELP, Invocation, pass_invocation, show


@click.command()
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
@pass_invocation
def skills(inv: Invocation, as_json: bool) -> None:
    """The loaded skills: usage, who may run them, and (in --json) their parameters' JSON Schema."""
    cfg = inv.config()
    rows = [
        {
            "name": s.name,
            "description": s.description,
            "usage": s.usage(),
            "roles": sorted(s.roles),
            "parameters": s.parameters,
            "examples": list(s.examples),
            "schedules": [e.name for e in s.schedules],
            "file": s.file,
        }
        for s in sorted(Catalog(cfg), key=lambda s: s.name)
    ]
    columns = (
        ("usage", lambda r: r["usage"]),
        ("roles (and admins)", lambda r: ", ".join(r["roles"])),
        ("description", lambda r: r["description"]),
    )
    show(rows, as_json, columns, "No skills: the manifest dirs have none.")


@click.command()
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
@pass_invocation
def schedules(inv: Invocation, as_json: bool) -> None:
    """The manifests' cron schedules: next run, pause state, identity and where results go."""
    cfg = inv.config()
    rows = [dataclasses.asdict(r) for r in scheduled.listing(Catalog(cfg), common.database(cfg), time.time())]
    columns = (
        ("name", lambda r: r["name"]),
        ("skill", lambda r: r["skill"]),
        ("cron", lambda r: r["cron"] + (f" {r['timezone']}" if r["timezone"] else "")),
        (
            "next run",
            lambda r: (
                "paused"
                if r["paused"]
                else time.strftime("%Y-%m-%d %H:%M", time.localtime(r["next_run"]))
                if r["next_run"]
                else "none within a year"
            ),
        ),
        ("as", lambda r: r["identity"]),
        ("reply to", lambda r: r["reply_to"]),
    )
    show(rows, as_json, columns, "No schedules.")
