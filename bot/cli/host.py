"""`podbot setup` and `podbot images`: the container owner, its Podman API, the images."""

from __future__ import annotations

import logging
import time

import click

from bot.catalog import Catalog
from bot.cli.common import Invocation, err, pass_invocation
from bot.runtime import images as images_mod
from bot.runtime.podman import PodmanRunner


@click.command()
@pass_invocation
def setup(inv: Invocation) -> None:
    """Prepare the host: the unprivileged container owner (as root), its Podman API, the base image."""
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
    with err.status("checking the base image…") as status:
        built = images_mod.ensure_base(runner, lambda line: status.update(line))
    err.print(f"{images_mod.BASE_IMAGE}: {'built' if built else 'present'}")
    catalog = Catalog(cfg)
    err.print(f"{len(catalog)} skills from {', '.join(map(str, cfg.manifest_dirs))}")
    err.print("[green]ready[/green]: `podbot run` starts the bot")


@click.group()
def images() -> None:
    """Container images."""


@images.command("build")
@pass_invocation
def build(inv: Invocation) -> None:
    """Build localhost/podbot-base (busybox + skill scripts), offline."""
    runner = PodmanRunner(inv.config())
    started = time.monotonic()
    with err.status("building…") as status:
        for line in images_mod.build_base(runner):
            status.update(line)
            err.print(f"  {line}", highlight=False, markup=False)
    err.print(f"[green]done[/green] in {time.monotonic() - started:.1f} s")
