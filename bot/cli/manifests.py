"""`podbot manifests`: check skill manifests, print their schema."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from bot.cli.common import Invocation, pass_invocation
from bot.schema import bundled_schema
from bot.skill import load_all


@click.group()
def manifests() -> None:
    """Skill manifests."""


@manifests.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@pass_invocation
def validate(inv: Invocation, paths: tuple[Path, ...]) -> None:
    """Check manifests (default: the configured manifest dirs); errors print as FILE:LINE:COL: message."""
    cfg = inv.config()
    skills, problems = load_all(list(paths) or list(cfg.manifest_dirs), set(cfg.mounts))
    for problem in problems:
        click.echo(str(problem))
    click.echo(f"{len(skills)} skills valid, {len(problems)} errors", err=True)
    sys.exit(1 if problems else 0)


@manifests.command()
def schema() -> None:
    """Print the manifest JSON Schema (point editors at it)."""
    click.echo(json.dumps(bundled_schema("manifest"), indent=2))
