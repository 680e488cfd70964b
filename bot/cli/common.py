"""What every `podbot` command shares: the config and logging of one invocation, and plain error output."""

from __future__ import annotations

import logging
import sys
from typing import NoReturn

import click
from rich.console import Console

from bot import config as config_mod
from bot.app import Bot
from bot.config import Config

err = Console(stderr=True)
out = Console()


def fail(message: str) -> NoReturn:
    # Plain text, never wrapped: FILE:LINE:COL lines must stay whole for editors and grep.
    click.echo(f"podbot: {message}", err=True)
    sys.exit(1)


def _setup_logging(cfg: Config, verbose: bool, to_stderr: int) -> None:
    cfg.data_dir.mkdir(parents=True, exist_ok=True)
    root = logging.getLogger()
    root.setLevel(logging.DEBUG if verbose else getattr(logging, cfg.log_level.upper()))
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    file_handler = logging.FileHandler(cfg.data_dir / "podbot.log")
    file_handler.setFormatter(fmt)
    root.addHandler(file_handler)
    stream = logging.StreamHandler(sys.stderr)
    stream.setFormatter(fmt)
    stream.setLevel(logging.DEBUG if verbose else to_stderr)
    root.addHandler(stream)


class Invocation:
    """The global options of one `podbot` command line."""

    def __init__(self, config_path: str | None, verbose: bool):
        self.config_path = config_path
        self.verbose = verbose

    def config(self, stderr_level: int = logging.WARNING) -> Config:
        cfg = config_mod.load(self.config_path)
        _setup_logging(cfg, self.verbose, stderr_level)
        return cfg

    def bot(self, stderr_level: int = logging.WARNING) -> Bot:
        """A built bot whose Podman and base image were checked."""
        bot = Bot(self.config(stderr_level))
        with err.status("checking Podman and the base image…"):
            bot.check_host()
        return bot


pass_invocation = click.make_pass_decorator(Invocation)
