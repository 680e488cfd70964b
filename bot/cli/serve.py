"""`podbot run`, `podbot chat`, `podbot worker`: the long-running processes."""

from __future__ import annotations

import logging
import os
import signal
import stat
import sys
import time
from collections.abc import Callable

import click

import adapters
from adapters.console import ConsoleAdapter
from bot.cli import status
from bot.cli.common import Invocation, err, fail, pass_invocation
from bot.flow import JobState
from bot.gateway.server import Gateway
from bot.store import ledger
from bot.store.database import Database
from bot.understanding import readiness

log = logging.getLogger(__name__)

USER_HELP = "Your console identity is console:USER (default: your login name)."
WORKERS_HELP = "In-process job workers (0: leave jobs to `podbot worker`)."
WATCH_EVERY = 0.5  # seconds between looks at how the platforms stand


class Stopped(KeyboardInterrupt):
    """SIGINT or SIGTERM: stop where it is. An interrupt, so no error boundary takes it for a failure."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


def _raise_stopped(signum: int, frame: object) -> None:
    raise Stopped(signum)


def _on_stop_signals(handler: Callable[[int, object], None] | signal.Handlers) -> None:
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, handler)


def _serve(inv: Invocation, role: str, user: str | None, workers: int | None, console: bool, serve_gateway: bool) -> None:
    """Serve until the console chat ends, or until SIGINT or SIGTERM.

    A piped chat exits 1 when a job it started did not succeed (failed, timed out, cancelled, denied).
    A chat stopped by a signal exits 130 or 143 (128 + the signal, as shells report it); a bot serving
    only platforms exits 0, as stopping is its normal end. The handlers raise, as only that interrupts
    a blocked read of the next line, and are set even when the signals came ignored (a script's
    background job): Ctrl-C and `kill` always stop podbot.
    """
    _on_stop_signals(_raise_stopped)
    bot = inv.bot()
    if (missing := readiness.warning(bot.cfg.model)) is not None:
        log.info("%s", missing)
        err.print(f"note: {missing}", markup=False, highlight=False, soft_wrap=True)
    platforms = adapters.configured(bot.cfg)
    # Only `podbot run` serves the gateway: a `podbot chat` beside it, on the same config, must not take its port.
    serves_gateway = serve_gateway and bool(bot.cfg.gateway.listen)
    if not platforms and not serves_gateway and not console and _no_input():
        fail(
            "no platform and no gateway is configured and there is no console to chat on (stdin is /dev/null or closed), "
            "so podbot run has nothing to serve: set a platform's credentials or gateway.listen (README), or run it in a terminal"
        )
    for adapter in platforms:
        bot.add_adapter(adapter)
    gateway = Gateway(bot, platforms) if serves_gateway else None
    chat = ConsoleAdapter(user, history=bot.cfg.data_dir / "console_history") if console or not (platforms or gateway) else None
    if chat is not None:
        bot.add_adapter(chat, chat.conversations)  # its person's replies and the shared console's, no one else's
        if sys.stdin.isatty():
            inv.quiet_stderr()
    watch = status.PlatformWatch(platforms, status.path(bot.cfg), console=chat is not None)
    registration = status.register(bot.cfg, role, bot.cfg.workers if workers is None else workers, console=chat is not None)
    bot.start(workers)
    for adapter in platforms:
        adapter.start(bot)
    code = 0
    began = time.time()
    try:
        if gateway is not None:
            gateway.start()
            err.print(f"podbot: gateway listening on {bot.cfg.gateway.address[0]} port {gateway.port}", markup=False, highlight=False)
        if chat is None:
            _watch_until_signal(watch)
        else:
            if platforms:
                bot.loops.every("platform-status", WATCH_EVERY, watch.check)
            unsuccessful = unsuccessful_jobs(bot.db, chat.run(bot), f"console:{chat.user}", began)
            if unsuccessful:
                err.print(f"podbot: not every job succeeded: {', '.join(unsuccessful)}", markup=False, highlight=False, soft_wrap=True)
                code = 1
    except Stopped as stopped:
        code = 128 + stopped.signum if chat is not None else 0
    finally:
        _on_stop_signals(signal.SIG_DFL)  # while shutting down, a second signal ends the process at once
        for adapter in platforms:
            adapter.stop()
        if gateway is not None:
            gateway.stop()
        bot.stop()
        watch.close()
        registration.unlink(missing_ok=True)
    if code:
        sys.exit(code)


def unsuccessful_jobs(db: Database, job_ids: list[int], requester: str, since: float) -> list[str]:
    """The jobs this chat started that did not succeed (`job 4 failed`): a script's exit status.

    A reply may name an older job (`/job 3`): only this person's jobs created since the chat began count.
    """
    jobs = [job for job in (ledger.get(db, i) for i in sorted(set(job_ids))) if job is not None]
    ours = [job for job in jobs if job.requester == requester and job.created >= since]
    return [f"job {job.id} {job.state.value}" for job in ours if job.state != JobState.SUCCEEDED]


def _no_input() -> bool:
    """stdin is /dev/null or closed, as under systemd: a console there would read nothing and end at once."""
    try:
        stdin = os.fstat(0)
    except OSError:
        return True
    return stat.S_ISCHR(stdin.st_mode) and stdin.st_rdev == os.stat(os.devnull).st_rdev


def _watch_until_signal(watch: status.PlatformWatch) -> None:
    """Show how the platforms stand until a signal (Stopped) ends it; exit 1 with the reasons once every platform has given up."""
    while True:
        time.sleep(WATCH_EVERY)
        line = watch.check()
        if (reasons := watch.gave_up()) is not None:
            fail(f"every platform gave up, so podbot stops: {reasons}")
        if line is not None:
            err.print(line, markup=False, highlight=False, soft_wrap=True)


@click.command()
@click.option("--user", help=USER_HELP)
@click.option("--workers", type=int, help=WORKERS_HELP)
@click.option("--console", is_flag=True, help="Also chat on this terminal when platforms or the gateway are configured.")
@pass_invocation
def run(inv: Invocation, user: str | None, workers: int | None, console: bool) -> None:
    """Start the bot: job workers in-process, every platform that has credentials, the gateway (gateway.listen), and
    the console.

    With no platform and no gateway configured, the console chat is the bot.
    """
    _serve(inv, "run", user, workers, console, serve_gateway=True)


@click.command()
@click.option("--user", help=USER_HELP)
@click.option("--workers", type=int, help=WORKERS_HELP)
@pass_invocation
def chat(inv: Invocation, user: str | None, workers: int | None) -> None:
    """Chat with the bot in this terminal; piped input is read one message per line.

    Piped, it exits once every job it started has replied: 0 when all of them succeeded, else 1
    (each job that did not is named on stderr).
    """
    _serve(inv, "chat", user, workers, console=True, serve_gateway=False)


@click.command()
@click.option("--workers", type=int, help="Worker threads (default: config `workers`).")
@pass_invocation
def worker(inv: Invocation, workers: int | None) -> None:
    """Run only the job consumer, against the same data dir as the bot."""
    bot = inv.bot(logging.INFO)
    with status.registered(bot.cfg, "worker", bot.cfg.workers if workers is None else workers):
        bot.serve_jobs(workers)
