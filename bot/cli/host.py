"""`podbot setup` and `podbot images`: the container owner, its Podman API, the images."""

from __future__ import annotations

import logging
import time

import click
from rich.markup import escape

from bot.catalog import Catalog
from bot.cli.common import Invocation, err, fail, pass_invocation
from bot.errors import Unavailable
from bot.runtime import images as images_mod
from bot.runtime.podman import PodmanRunner


@click.command()
@pass_invocation
def setup(inv: Invocation) -> None:
    """Prepare the host: the unprivileged container owner (as root), its Podman API, the images the skills need."""
    cfg = inv.config(logging.INFO)
    runner = PodmanRunner(cfg)
    with err.status("starting the rootless Podman API…"):
        engine = runner.engine()
    err.print(f"Podman {engine.version} at {engine.url}: rootless={engine.rootless}, cgroup {engine.cgroup_version}")
    if not engine.enforces_resource_limits:
        err.print(
            "[yellow]note:[/yellow] rootless Podman on cgroup v1 cannot enforce memory/CPU/pids limits; "
            f"memory is capped per process instead (ulimit data {cfg.limits.memory}: heap and private mappings; "
            f"a skill that forks gets that much in each of up to {cfg.limits.nproc} processes), "
            "and ulimits, timeouts and output caps still apply"
        )
    catalog = Catalog(cfg)
    err.print(f"{len(catalog)} skills from {', '.join(map(str, cfg.manifest_dirs))}")
    with err.status("checking the images…") as status:
        built = images_mod.ensure_all(runner, list(catalog), lambda line: status.update(escape(line)))
    err.print(f"images: {', '.join(built) if built else 'all present and up to date'}")
    err.print("[green]ready[/green]: `podbot run` starts the bot")


@click.group()
def images() -> None:
    """Container images."""


@images.command("build")
@click.option("--force", is_flag=True, help="Rebuild every image, changed or not.")
@pass_invocation
def build(inv: Invocation, force: bool) -> None:
    """Build the images the loaded skills need: the base, the Debian base if used, each skill's Containerfile.

    Offline, as the container owner; an image whose recipe has not changed is kept (--force rebuilds it).
    """
    cfg = inv.config()
    runner = PodmanRunner(cfg)
    skills = list(Catalog(cfg))
    started = time.monotonic()
    with err.status("building…") as status:

        def progress(line: str) -> None:
            status.update(escape(line[:120]))
            err.print(f"  {line}", highlight=False, markup=False)

        try:
            built = images_mod.ensure_all(runner, skills, progress, force)
        except Unavailable as exc:
            fail(str(exc))
    summary = f"built {', '.join(built)}" if built else "every image is up to date"
    err.print(f"[green]done[/green] in {time.monotonic() - started:.1f} s: {escape(summary)}")
