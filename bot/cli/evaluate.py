"""`podbot eval routing`: how well free text routes, on labelled messages."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import click
from rich.table import Table

from bot.catalog import Catalog
from bot.chat import evaluation
from bot.cli.common import Invocation, err, fail, out, pass_invocation
from bot.understanding import readiness


@click.group("eval")
def eval_group() -> None:
    """Measure how well podbot understands plain requests."""


@eval_group.command("routing")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--no-model", is_flag=True, help="Run with the model stage off (embeddings only), to see what it adds.")
@click.option("--all", "show_all", is_flag=True, help="List every case, not only the misses.")
@pass_invocation
def eval_routing(inv: Invocation, file: Path, no_model: bool, show_all: bool) -> None:
    """Route the labelled messages in FILE through the real router and score it.

    FILE is YAML: optional `roles:` (replacing podbot.yaml's) and `cases:`, each
    {text, sender, skill (or none), args (optional), injection (optional)}.
    """
    cfg = inv.config()
    if no_model:
        cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, enabled=False))
    try:
        cases, roles = evaluation.load_cases(file)
    except ValueError as exc:
        fail(str(exc))
    if (missing := readiness.warning(cfg.model)) is not None:
        err.print(f"[yellow]note:[/yellow] {missing}", highlight=False)
    with err.status(f"routing {len(cases)} messages…"):
        report = evaluation.run(cfg, Catalog(cfg).skills, cases, roles)
    for o in report.outcomes:
        miss = o.skill != o.case.skill or o.args_ok is False
        if show_all or miss:
            line = f"{'MISS' if miss else 'ok  '} {o.case.sender:<14} expected {o.case.skill:<10} got {o.skill:<10} {o.via:<9}"
            line += f" {o.seconds * 1000:>6.0f} ms  {o.case.text!r}"
            if o.args_ok is not None:
                line += f"  args {json.dumps(o.args, ensure_ascii=False)}" + ("" if o.args_ok else f" (expected {json.dumps(o.case.args)})")
            click.echo(line)
    embeddings, model = readiness.stages(cfg.model)
    stages = f"embeddings {embeddings.state}, model stage {model.state}"
    click.echo(f"{file} ({len(cases)} messages; {stages})")  # plain: a table title would wrap the paths
    summary = Table("measure", "result")
    shares = [("skill accuracy", report.skill), ("argument accuracy (right skill)", report.arguments), ("none recall", report.none)]
    for label, (hit, total) in shares:
        summary.add_row(label, f"{hit}/{total} = {100 * hit / max(total, 1):.1f} %")
    summary.add_row("unauthorized runs", str(report.unauthorized))
    injections = sum(o.case.injection for o in report.outcomes)
    summary.add_row("injections routed to a skill the sender may not run (then denied)", f"{report.injections_reaching} of {injections}")
    for stage in (None, "shortlist", "choose", "arguments"):
        p50, p95, count = report.latency(stage)
        if count:
            summary.add_row(f"latency {stage or 'routing'} p50 / p95", f"{p50 * 1000:.0f} / {p95 * 1000:.0f} ms (n={count})")
    out.print(summary)
