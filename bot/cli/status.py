"""`podbot status`, and what the long-running processes leave for it in the data dir.

Each `podbot run`, `chat` and `worker` keeps `<data_dir>/processes/<host>-<pid>.json`
while it lives. `podbot run` also watches its platform adapters: it rewrites
`<data_dir>/status.json` when one changes state, sums them up in one status
line, and stops with the reasons when every platform has given up (a rejected
token), so a process with nothing to serve never looks alive to its
supervisor. Both files go when their process ends. `podbot status` adds what
the database and the files say (queue, outbox, schedules, models, the job
workers of every host and which process sends each platform's replies) and
exits non-zero when something is down, for monitors.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import socket
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from adapters.base import NetworkAdapter
from bot import cron
from bot.catalog import Catalog
from bot.cli import common
from bot.cli.common import Invocation, fail, pass_invocation
from bot.config import Config
from bot.errors import Problems
from bot.flow import JobState
from bot.store import leases, ledger, schedules, workers
from bot.store import outbox as outbox_store
from bot.store.database import Database
from bot.understanding import readiness

log = logging.getLogger(__name__)

FILE = "status.json"
SETTLE = 30.0  # seconds after which the status line shows even while a platform still retries its first connection
OFF = ("failed", "stopped")
NOT_RUNNING, DEGRADED = 1, 2  # `podbot status` exit codes (0: running, nothing down)
OUTBOX_LATE = 300.0  # seconds a reply may wait for its platform before status calls it a problem


def path(cfg: Config) -> Path:
    return cfg.data_dir / FILE


def _processes_dir(cfg: Config) -> Path:
    return cfg.data_dir / "processes"


def register(cfg: Config, role: str, workers: int, console: bool = False) -> Path:
    """Write this process's file in `<data_dir>/processes/` (role: run, chat or worker); the caller removes it when it ends."""
    directory = _processes_dir(cfg)
    directory.mkdir(parents=True, exist_ok=True)
    # Containers sharing a data dir have pid namespaces of their own, so a pid alone names no one process.
    file = directory / f"{socket.gethostname()}-{os.getpid()}.json"
    entry = {"role": role, "pid": os.getpid(), "host": socket.gethostname(), "started": time.time(), "workers": workers, "console": console}
    _write_atomic(file, entry)
    return file


@contextmanager
def registered(cfg: Config, role: str, workers: int) -> Iterator[None]:
    """This process registered while the block runs."""
    file = register(cfg, role, workers)
    try:
        yield
    finally:
        file.unlink(missing_ok=True)


def _write_atomic(file: Path, data: dict[str, Any]) -> None:
    partial = file.with_suffix(".tmp")
    partial.write_text(json.dumps(data, indent=2))
    partial.replace(file)  # a reader never sees half a file


def _live_processes(cfg: Config) -> list[dict[str, Any]]:
    """The registered processes still alive; those of another host are taken at their word (no pid to check here)."""
    found = []
    for file in sorted(_processes_dir(cfg).glob("*.json")):
        entry = _read(file)
        if entry is not None and (entry["host"] != socket.gethostname() or _alive(int(entry["pid"]))):
            found.append(entry)
    return found


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
        _write_atomic(self.file, {"pid": os.getpid(), "started": self.started, "console": self.console, "platforms": self._states})

    def close(self) -> None:
        if self._states:  # only the file this process wrote: a console-only `podbot chat` leaves a running bot's alone
            self.file.unlink(missing_ok=True)


def report(cfg: Config, now: float) -> dict[str, Any]:
    """Everything `podbot status` shows, as one JSON-ready mapping; `problems` lists what is down."""
    data = _read(path(cfg)) or {}
    processes = _live_processes(cfg)
    runs = [p for p in processes if p["role"] == "run"]
    bot = {**runs[0], "platforms": {}} if runs else {}
    if data and _alive(int(data["pid"])):
        bot = {**bot, **data}
    problems = [
        f"{p} is {s['state']}: {s['detail'] or 'no detail'}" for p, s in bot.get("platforms", {}).items() if s["state"] != "connected"
    ]

    db = common.database(cfg)
    queue = ledger.counts(db)
    registry = [_worker(db, w, now) for w in workers.listing(db)]
    problems += [
        f"worker {w['id']} is {w['shown']} while running jobs {', '.join(map(str, w['stranded']))}: others take them once their leases end"
        for w in registry
        if w["stranded"]
    ]
    if queue["queued"] and not any(p["workers"] for p in processes) and not any(w["state"] == workers.UP for w in registry):
        problems.append(f"{queue['queued']} jobs queued and no process runs jobs (`podbot worker`, or `podbot run` without --workers 0)")
    pending = outbox_store.all_pending(db)
    oldest = now - min(item.created for item in pending) if pending else None
    if oldest is not None and oldest > OUTBOX_LATE:
        problems.append(f"{len(pending)} replies not delivered, the oldest for {oldest / 60:.0f} min (`podbot outbox`)")

    models = {}
    for stage in readiness.stages(cfg.model):
        models[stage.name] = {"path": str(stage.path), "present": stage.present, "on": stage.on, "state": stage.state}
        if stage.enabled and not stage.present:
            problems.append(f"{stage.name} {stage.state}")
    try:
        entries = _schedules(Catalog(cfg), db, now)
    except Problems as exc:
        entries = []
        problems.append(f"the manifests have {len(exc.problems)} errors (`podbot manifests validate`)")
    return {
        "running": bool(bot),
        **({"pid": bot["pid"], "started": bot["started"], "console": bot["console"], "platforms": bot["platforms"]} if bot else {}),
        **({"pid": data["pid"], "ended": True} if data and not bot else {}),
        "processes": [{k: p[k] for k in ("role", "pid", "host", "started", "workers")} for p in processes],
        "workers": registry,
        "senders": {lease.name.removeprefix("outbox:"): lease.holder for lease in leases.held(db, "outbox:", now)},
        "queue": queue,
        "outbox": {"pending": len(pending), "oldest_seconds": oldest},
        "schedules": entries,
        "models": models,
        "problems": problems,
    }


def _worker(db: Database, found: workers.Registered, now: float) -> dict[str, Any]:
    """One worker as status shows it; `stranded`: the jobs it held when it went silent or stopped that are still its own."""
    stranded = []
    if found.state(now) != workers.UP:
        for job_id in found.running:
            job = ledger.get(db, job_id)
            if job is not None and job.state == JobState.RUNNING and job.worker == found.id:
                stranded.append(job_id)
    return {
        "id": found.id,
        "host": found.host,
        "pid": found.pid,
        "state": found.state(now),
        "shown": found.shown(now),
        "running": list(found.running),
        "stranded": stranded,
        "heartbeat": found.heartbeat,
        "heartbeat_age": now - found.heartbeat,
        "started": found.started,
        "stopped": found.stopped,
    }


def _schedules(catalog: Catalog, db: Database, now: float) -> list[dict[str, Any]]:
    entries = []
    for skill in sorted(catalog, key=lambda s: s.name):
        for entry in skill.schedules:
            zone = cron.zone(entry.timezone)
            paused = schedules.paused(db, entry.name)
            upcoming = None if paused else cron.next_fire(cron.parse(entry.cron), zone, now)
            when = dt.datetime.fromtimestamp(upcoming, zone).isoformat(timespec="minutes") if upcoming is not None else None
            entries.append(
                {
                    "name": entry.name,
                    "skill": skill.name,
                    "cron": entry.cron,
                    "timezone": entry.timezone or "UTC",
                    "paused": paused,
                    "next": when,
                }
            )
    return entries


@click.command()
@click.option("--json", "as_json", is_flag=True, help="The status as one JSON object, for scripts.")
@pass_invocation
def status(inv: Invocation, as_json: bool) -> None:
    """The bot and worker processes on this data dir, their platforms, queue, outbox, schedules and models.

    Exit status, for monitors: 0 when podbot run is up and nothing is down; 2 when something is
    (a platform, a missing model, jobs with no worker, replies stuck); 1 when podbot run is not running.
    """
    cfg = inv.config()
    shown = report(cfg, time.time())
    if as_json:
        click.echo(json.dumps(shown, indent=2))
    else:
        _show(shown)
    if not shown["running"]:
        if not as_json:
            ended = f" (pid {shown['pid']} ended without cleaning up)" if shown.get("ended") else ""
            fail(f"podbot run is not running on {cfg.data_dir}{ended}")
        sys.exit(NOT_RUNNING)
    if shown["problems"]:
        sys.exit(DEGRADED)


def _show(shown: dict[str, Any]) -> None:
    # Plain lines, never wrapped: an error's detail stays whole for grep.
    if shown["running"]:
        click.echo(f"podbot run, pid {shown['pid']}, since {_when(shown['started'])}" + (", with the console" if shown["console"] else ""))
        for platform, state in shown["platforms"].items():
            click.echo(f"{platform:<9} {state['state']:<10} since {_when(state['since'])}  {state['detail']}")
    for p in shown["processes"]:
        click.echo(f"process   {p['role']:<10} pid {p['pid']} on {p['host']}, {p['workers']} job workers, since {_when(p['started'])}")
    for w in shown["workers"]:
        jobs = f"running jobs {', '.join(map(str, w['running']))}" if w["running"] else "no jobs"
        click.echo(f"worker    {w['id']} on {w['host']}: {w['state']}, {jobs}, last heartbeat {w['heartbeat_age']:.0f} s ago")
    for platform, holder in shown["senders"].items():
        click.echo(f"sending   {platform} replies from {holder}")
    queue, outbox = shown["queue"], shown["outbox"]
    click.echo(f"queue     {queue['queued']} queued, {queue['running']} running")
    oldest = f", the oldest waiting {outbox['oldest_seconds']:.0f} s" if outbox["pending"] else ""
    click.echo(f"outbox    {outbox['pending']} replies pending{oldest}")
    for e in shown["schedules"]:
        click.echo(
            f"schedule  {e['name']} ({e['skill']}) {e['cron']} {e['timezone']}: " + ("paused" if e["paused"] else f"next {e['next']}")
        )
    for name, stage in shown["models"].items():
        click.echo(f"model     {name}: {stage['state']}")
    for problem in shown["problems"]:
        click.echo(f"problem   {problem}")


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
