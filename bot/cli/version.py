"""`podbot --version`: what this podbot is and what it stands on (Python, Podman, the model files)."""

from __future__ import annotations

import platform
import shutil
import subprocess
import sys

import click

from bot import __version__, config
from bot.cli.common import Invocation
from bot.errors import PodbotError
from bot.understanding import readiness


def _podman() -> str:
    # The CLI, not the API socket: --version must answer at once, even on a host that is not set up yet.
    found = shutil.which("podman")
    if found is None:
        return "not found (podbot needs rootless Podman: see README)"
    try:
        done = subprocess.run([found, "--version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{found} does not answer: {exc}"
    return done.stdout.strip().removeprefix("podman version ") or done.stderr.strip()


def lines(inv: Invocation) -> list[str]:
    found = [f"podbot {__version__}", f"Python {platform.python_version()} ({sys.executable})", f"Podman {_podman()}"]
    try:
        cfg = config.load(inv.config_path)  # no logging set up: asking for the version creates no data dir
    except PodbotError as exc:
        return [*found, f"config: {exc}"]
    found.append(f"config {cfg.source}, data dir {cfg.data_dir}")
    found += [f"{stage.name} {stage.path.name}: {stage.state}" for stage in readiness.stages(cfg.model)]
    return found


def show(inv: Invocation) -> None:
    click.echo("\n".join(lines(inv)))
