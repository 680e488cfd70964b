"""`podbot run`, `podbot chat`, `podbot worker`: the long-running processes."""

from __future__ import annotations

import logging
import signal
import threading

import click

import adapters
from adapters.console import ConsoleAdapter
from bot.cli.common import Invocation, err, pass_invocation

USER_HELP = "Your console identity is console:USER (default: your login name)."
WORKERS_HELP = "In-process job workers (0: leave jobs to `podbot worker`)."


def _serve(inv: Invocation, user: str | None, workers: int | None, console: bool) -> None:
    bot = inv.bot()
    platforms = adapters.configured(bot.cfg)
    for adapter in platforms:
        bot.add_adapter(adapter)
    chat = ConsoleAdapter(user) if console or not platforms else None
    if chat is not None:
        bot.add_adapter(chat)
    bot.start(workers)
    for adapter in platforms:
        adapter.start(bot)
    try:
        if chat is not None:
            chat.run(bot)
        else:
            err.print(f"podbot is running on {', '.join(a.platform for a in platforms)}; Ctrl-C stops it")
            _wait_for_signal()
    finally:
        for adapter in platforms:
            adapter.stop()
        bot.stop()


def _wait_for_signal() -> None:
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()


@click.command()
@click.option("--user", help=USER_HELP)
@click.option("--workers", type=int, help=WORKERS_HELP)
@click.option("--console", is_flag=True, help="Also chat on this terminal when platforms are configured.")
@pass_invocation
def run(inv: Invocation, user: str | None, workers: int | None, console: bool) -> None:
    """Start the bot: job workers in-process, every platform that has credentials, and the console.

    With no platform configured, the console chat is the bot.
    """
    _serve(inv, user, workers, console)


@click.command()
@click.option("--user", help=USER_HELP)
@click.option("--workers", type=int, help=WORKERS_HELP)
@pass_invocation
def chat(inv: Invocation, user: str | None, workers: int | None) -> None:
    """Chat with the bot in this terminal; piped input is read one message per line."""
    _serve(inv, user, workers, console=True)


@click.command()
@click.option("--workers", type=int, help="Worker threads (default: config `workers`).")
@pass_invocation
def worker(inv: Invocation, workers: int | None) -> None:
    """Run only the job consumer, against the same data dir as the bot."""
    inv.bot(logging.INFO).serve_jobs(workers)
