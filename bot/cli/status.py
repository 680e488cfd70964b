"""`podbot status`, and what `podbot run` keeps for it: how each platform stands, in `<data_dir>/status.json`.

`podbot run` watches its platform adapters: it rewrites the file when one
changes state, sums them up in one status line, and stops with the reasons
when every platform has given up (a rejected token), so a process with nothing
to serve never looks alive to its supervisor. The file goes when it ends.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

import click

from adapters.base import NetworkAdapter
from bot.cli.common import Invocation, fail, pass_invocation
from bot.config import Config

log = logging.getLogger(__name__)

FILE = "status.json"
SETTLE = 30.0  # seconds after which the status line shows even while a platform still retries its first connection
OFF = ("failed", "stopped")
NOT_RUNNING, NOT_ALL_CONNECTED = 1, 2  # `podbot status` exit codes (0: every platform connected)


def path(cfg: Config) -> Path:
    return cfg.data_dir / FILE


class PlatformWatch:
    """What `podbot run` knows about its platforms: the status file, the status line, and whether any is left."""

    def __init__(self, adapters: list[NetworkAdapter], file: Path, console: bool) -> None:
        self.adapters = adapters
        self.file = file
        self.console = console
        self.started = time.time()
        self._states: dict[str, dict[str, Any]] = {}  # platform -> {state, detail, since}
        self._seen: set[str] = set()  # platforms that connected at least once: a reconnect is not news
        self._line: str | None = None

    def check(self) -> str | None:
        """Look at every adapter and rewrite the status file if one changed; return the status line when it changed."""
        now = time.time()
        states = {}
        for adapter in self.adapters:
            status = adapter.status()
            if status.state == "connected":
                self._seen.add(adapter.platform)
            before = self._states.get(adapter.platform)
            since = before["since"] if before is not None and before["state"] == status.state else now
            states[adapter.platform] = {"state": status.state, "detail": status.detail, "since": since}
        if states != self._states:
            self._states = states
            self._write()
        line = self._summary(now)
        if line is None or line == self._line:
            return None
        self._line = line
        log.info("%s", line)
        return line

    def gave_up(self) -> str | None:
        """Why no platform can work any more, once every one has given up; None while one works or retries."""
        if self._states and all(s["state"] in OFF for s in self._states.values()):
            return "; ".join(f"{platform}: {s['detail'] or s['state']}" for platform, s in self._states.items())
        return None

    def _summary(self, now: float) -> str | None:
        # Shown once every platform has connected or given up, then whenever that picture changes.
        pending = [p for p, s in self._states.items() if s["state"] not in OFF and p not in self._seen]
        if pending and now - self.started < SETTLE:
            return None
        on = [p for p, s in self._states.items() if s["state"] not in OFF and p in self._seen]
        parts = [f"podbot is running on {', '.join(on)}" if on else "podbot has no platform connected yet"]
        parts += [f"{p} is off: {s['detail'] or s['state']}" for p, s in self._states.items() if s["state"] in OFF]
        if pending:
            parts.append(f"still connecting to {', '.join(pending)} (retrying, see the log)")
        return "; ".join(parts) + "; Ctrl-C stops it"

    def _write(self) -> None:
        data = {"pid": os.getpid(), "started": self.started, "console": self.console, "platforms": self._states}
        partial = self.file.with_suffix(".tmp")
        partial.write_text(json.dumps(data, indent=2))
        partial.replace(self.file)  # a reader never sees half a file

    def close(self) -> None:
        if self._states:  # only the file this process wrote: a console-only `podbot chat` leaves a running bot's alone
            self.file.unlink(missing_ok=True)


@click.command()
@click.option("--json", "as_json", is_flag=True, help="The status as one JSON object, for scripts.")
@pass_invocation
def status(inv: Invocation, as_json: bool) -> None:
    """How the platforms of the `podbot run` on this data dir stand.

    Exit status: 0 when every platform is connected, 2 when one is not, 1 when podbot run is not running.
    """
    cfg = inv.config()
    data = _read(path(cfg))
    running = data is not None and _alive(int(data["pid"]))
    if as_json:
        click.echo(json.dumps({"running": running, **(data or {})}, indent=2))
    elif data is None or not running:
        fail(f"podbot run is not running on {cfg.data_dir}" + (f" (pid {data['pid']} ended without cleaning up)" if data else ""))
    else:
        _show(data)
    if data is None or not running:
        sys.exit(NOT_RUNNING)
    if any(s["state"] != "connected" for s in data["platforms"].values()):
        sys.exit(NOT_ALL_CONNECTED)


def _show(data: dict[str, Any]) -> None:
    # Plain lines, never wrapped: an error's detail stays whole for grep.
    click.echo(f"podbot run, pid {data['pid']}, since {_when(data['started'])}" + (", with the console" if data["console"] else ""))
    for platform, state in data["platforms"].items():
        click.echo(f"{platform:<9} {state['state']:<10} since {_when(state['since'])}  {state['detail']}")


def _read(file: Path) -> dict[str, Any] | None:
    try:
        return json.loads(file.read_text())
    except FileNotFoundError:
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, run by another user
        pass
    return True


def _when(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))
