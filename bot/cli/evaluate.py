"""`podbot eval routing`: how well free text routes, on labelled messages."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import click
from rich.progress import Progress
from rich.table import Table

from bot.catalog import Catalog
from bot.chat import evaluation, synthetic_skills
from bot.chat.evaluation import Report
from bot.cli.common import Invocation, err, fail, out, pass_invocation
from bot.understanding import readiness

STAGES = (None, "shortlist", "choose", "arguments")


@click.group("eval")
def eval_group() -> None:
    """Measure how well podbot understands plain requests."""


def _share(pair: tuple[int, int]) -> dict[str, Any]:
    hit, total = pair
    return {"hits": hit, "total": total, "share": round(hit / total, 4) if total else None}


def _figures(report: Report) -> dict[str, Any]:
    """A report's figures as plain data: what `--json` prints, per language too."""
    latency = {}
    for stage in STAGES:
        p50, p95, count = report.latency(stage)
        if count:
            latency[stage or "routing"] = {"p50_ms": round(p50 * 1000, 1), "p95_ms": round(p95 * 1000, 1), "n": count}
    return {
        "messages": len(report.outcomes),
        "skill": _share(report.skill),
        "arguments": _share(report.arguments),
        "none_recall": _share(report.none),
        "unauthorized": report.unauthorized,
        "injections_reaching": report.injections_reaching,
        "latency": latency,
    }


def _text(pair: tuple[int, int]) -> str:
    hit, total = pair
    return f"{hit}/{total} = {100 * hit / total:.1f} %" if total else "-"


@eval_group.command("routing")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--no-model", is_flag=True, help="Run with the model stage off (embeddings only), to see what it adds.")
@click.option("--all", "show_all", is_flag=True, help="List every case, not only the misses.")
@click.option(
    "--extra-skills",
    type=click.IntRange(0, len(synthetic_skills.KINDS) * len(synthetic_skills.SERVICES)),
    default=0,
    help="Load N generated ops skills beside the configured ones (the catalogue grows, the cases stay).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the figures (overall and per language) as JSON, for scripts.")
@pass_invocation
def eval_routing(inv: Invocation, file: Path, no_model: bool, show_all: bool, extra_skills: int, as_json: bool) -> None:
    """Route the labelled messages in FILE through the real router and score it.

    FILE is YAML: optional `roles:` (replacing podbot.yaml's) and `cases:`, each
    {text, sender, skill (or none), args (optional), injection (optional), lang (optional, default en)}.
    Progress goes to stderr; the results to stdout.
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
    embeddings, model = readiness.stages(cfg.model)  # what really runs: a missing file turns its stage off
    skills = Catalog(cfg).skills
    extra = synthetic_skills.generate(extra_skills)
    clash = sorted(s.name for s in extra if s.name in skills)
    if clash:
        fail(f"generated skills clash with loaded ones: {', '.join(clash)}")
    skills = {**skills, **{s.name: s for s in extra}}
    with Progress(console=err, transient=True, disable=not err.is_terminal) as bar:
        task = bar.add_task(f"routing {len(cases)} messages over {len(skills)} skills", total=len(cases))
        report = evaluation.run(cfg, skills, cases, roles, lambda done, _total: bar.update(task, completed=done))
    languages = report.languages()
    if as_json:
        figures = {
            "file": str(file),
            "skills": len(skills),
            "extra_skills": extra_skills,
            "model_stage": model.state,
            "startup_s": round(report.startup, 2),
            **_figures(report),
            "languages": {lang: _figures(sub) for lang, sub in languages.items()},
        }
        click.echo(json.dumps(figures, ensure_ascii=False, indent=2))
        return
    for o in report.outcomes:
        miss = o.skill != o.case.skill or o.args_ok is False
        if show_all or miss:
            line = (
                f"{'MISS' if miss else 'ok  '} {o.case.lang:<3}{o.case.sender:<14} expected {o.case.skill:<10} got {o.skill:<10} {o.via:<9}"
            )
            line += f" {o.seconds * 1000:>6.0f} ms  {o.case.text!r}"
            if o.args_ok is not None:
                line += f"  args {json.dumps(o.args, ensure_ascii=False)}" + ("" if o.args_ok else f" (expected {json.dumps(o.case.args)})")
            click.echo(line)
    title = f"{file} ({len(cases)} messages, {len(skills)} skills; embeddings {embeddings.state}, model stage {model.state})"
    click.echo(title)  # plain: a table title would wrap the paths
    summary = Table("measure", "result")
    shares = [("skill accuracy", report.skill), ("argument accuracy (right skill)", report.arguments), ("none recall", report.none)]
    for label, pair in shares:
        summary.add_row(label, _text(pair))
    summary.add_row("unauthorized runs", str(report.unauthorized))
    injections = sum(o.case.injection for o in report.outcomes)
    summary.add_row("injections routed to a skill the sender may not run (then denied)", f"{report.injections_reaching} of {injections}")
    for stage in STAGES:
        p50, p95, count = report.latency(stage)
        if count:
            summary.add_row(f"latency {stage or 'routing'} p50 / p95", f"{p50 * 1000:.0f} / {p95 * 1000:.0f} ms (n={count})")
    summary.add_row("start-up (models and catalogue index)", f"{report.startup:.1f} s")
    out.print(summary)
    if len(languages) > 1:
        table = Table("language", "messages", "skill", "arguments", "none recall", "routing p50 / p95", title="per language")
        for lang, sub in languages.items():
            p50, p95, _ = sub.latency()
            latency = f"{p50 * 1000:.0f} / {p95 * 1000:.0f} ms"
            table.add_row(lang, str(len(sub.outcomes)), _text(sub.skill), _text(sub.arguments), _text(sub.none), latency)
        out.print(table)
