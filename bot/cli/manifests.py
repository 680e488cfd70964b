"""`podbot manifests`: check skill manifests, run their tests, print their schema."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import click
from rich.markup import escape
from rich.table import Table

import adapters
from bot import skill_tests
from bot.chat import rbac
from bot.cli import common
from bot.cli.common import Invocation, err, out, pass_invocation
from bot.errors import Unavailable
from bot.runtime import images
from bot.runtime.podman import PodmanRunner
from bot.schema import bundled_schema
from bot.skill import Skill, load_all


@click.group()
def manifests() -> None:
    """Skill manifests."""


@manifests.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@pass_invocation
def validate(inv: Invocation, paths: tuple[Path, ...]) -> None:
    """Check manifests (default: the configured manifest dirs); problems print as FILE:LINE:COL: message.

    Errors exit 1; warnings (`FILE:LINE:COL: warning: …`) are printed but pass. Warnings include
    schedules whose `as` identity lacks the role, or whose `reply_to` platform is not configured. A skill
    whose image is not here is an error that says how to build it (checked through Podman, when it answers).
    """
    cfg = inv.config()
    # Checked against what this bot has: its roles and grants (validating never creates the database),
    # its secrets, and the platforms with credentials.
    db = common.database(cfg) if cfg.database or (cfg.data_dir / "podbot.db").exists() else None
    platforms = {"console", *(adapter.platform for adapter in adapters.configured(cfg))}

    def may_run(identity: str, skill: Skill) -> bool:
        return rbac.may_run(cfg, rbac.roles_of(cfg, identity, db), skill)

    skills, problems = load_all(
        list(paths) or list(cfg.manifest_dirs),
        set(cfg.mounts),
        cfg.limits.max_timeout,
        secret_names=set(cfg.secrets),
        role_holders=rbac.held(cfg, db),
        may_run=may_run,
        platforms=platforms,
    )
    try:
        problems += images.missing(PodmanRunner(cfg), skills.values())
    except Unavailable as exc:
        click.echo(f"podbot: images not checked: {exc}", err=True)
    warnings = [w for skill in skills.values() for w in skill.warnings]
    for problem in problems + warnings:
        click.echo(str(problem))
    click.echo(f"{len(skills)} skills valid, {len(problems)} errors, {len(warnings)} warnings", err=True)
    sys.exit(1 if problems else 0)


@manifests.command("test")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON, for scripts.")
@pass_invocation
def test_command(inv: Invocation, paths: tuple[Path, ...], as_json: bool) -> None:
    """Run the manifests' `tests:` cases (default: the configured manifest dirs); exit 1 if any fails.

    Each case's message goes through a real bot and real containers on a
    scratch data dir. Manifests in PATHS are loaded with the configured ones.
    """
    cfg = inv.config()
    with err.status("starting a scratch bot…") as status:
        results = skill_tests.run(cfg, list(paths), lambda what: status.update(escape(what)))
    failed = [r for r in results if not r.passed]
    if as_json:
        click.echo(json.dumps([dataclasses.asdict(r) for r in results], indent=2))
    else:
        _print_results(results)
        out.print(f"{len(results) - len(failed)} passed, {len(failed)} failed")
    sys.exit(1 if failed else 0)


def _print_results(results: list[skill_tests.Result]) -> None:
    table = Table("result", "manifest", "message", "expected", "why")
    for r in results:
        verdict = "[green]pass[/]" if r.passed else "[red]FAIL[/]"
        table.add_row(verdict, escape(Path(r.file).name), escape(r.say), r.expected, escape(r.why))
    out.print(table)


@manifests.command()
def schema() -> None:
    """Print the manifest JSON Schema (point editors at it)."""
    click.echo(json.dumps(bundled_schema("manifest"), indent=2))
