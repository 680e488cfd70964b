"""What every `podbot` command shares: the config and logging of one invocation, and plain error output."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from bot import config as config_mod
from bot import logs
from bot.app import Bot
from bot.config import Config
from bot.store.database import Database, open_database

err = Console(stderr=True)
out = Console()


def fail(message: str) -> NoReturn:
    # Plain text, never wrapped: FILE:LINE:COL lines must stay whole for editors and grep.
    click.echo(f"podbot: {message}", err=True)
    sys.exit(1)


def database(cfg: Config) -> Database:
    """The database this config names (PostgreSQL, or the SQLite file in the data dir), closed when the command ends."""
    db = open_database(cfg.database, cfg.data_dir)
    context = click.get_current_context(silent=True)
    if context is not None:  # a PostgreSQL pool left to the interpreter's exit complains as it is collected
        context.call_on_close(db.close)
    return db


JSON_HELP = "One JSON array, for scripts."
Row = dict[str, Any]
Column = tuple[str, Callable[[Row], object]]  # a table heading, and the cell of a row under it


def show(rows: Sequence[Row], as_json: bool, columns: Sequence[Column], empty: str) -> None:
    """The one way a listing prints: every field of every row as one JSON array (scripts), or a table of
    `columns` (people), or `empty` when there is nothing to show."""
    if as_json:
        click.echo(json.dumps(list(rows), indent=2, default=str))
    elif not rows:
        out.print(empty, highlight=False)
    else:
        table = Table(*(heading for heading, _ in columns))
        for row in rows:
            table.add_row(*(Text("" if cell(row) is None else str(cell(row))) for _, cell in columns))
        out.print(table)


class Invocation:
    """The global options of one `podbot` command line."""

    def __init__(self, config_path: str | None, verbose: bool):
        self.config_path = config_path
        self.verbose = verbose
        self._stderr: logging.Handler | None = None

    def config(self, stderr_level: int = logging.WARNING) -> Config:
        cfg = config_mod.load(self.config_path)
        self._stderr = logs.setup(cfg, self.verbose, stderr_level)
        return cfg

    def quiet_stderr(self) -> None:
        """From now on log only to the file: an interactive chat's terminal shows replies, not warnings or tracebacks."""
        if self._stderr is not None and not self.verbose:
            self._stderr.setLevel(logs.QUIET)

    def bot(self, stderr_level: int = logging.WARNING) -> Bot:
        """A built bot whose Podman and base image were checked."""
        bot = Bot(self.config(stderr_level))
        with err.status("checking Podman and the base image…"):
            bot.check_host()
        return bot


pass_invocation = click.make_pass_decorator(Invocation)
