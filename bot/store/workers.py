"""The workers registry: every process that runs jobs, on every host, as it last said it was.

Each one upserts its row on every supervisor heartbeat (the job ids it runs
then) and marks it stopped on a clean stop; a row whose heartbeat is older
than GONE_AFTER is a process that died or hangs. Rows of workers stopped or
gone for more than PRUNE_AFTER are deleted.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

from bot.store.database import Database

GONE_AFTER = 15.0  # seconds without a heartbeat before a worker counts as gone (as long as a job's lease)
PRUNE_AFTER = 86400.0  # seconds a stopped or gone worker's row is kept

UP, GONE, STOPPED = "up", "gone", "stopped"


@dataclass(frozen=True)
class Registered:
    id: str  # host:pid, as the ledger names the worker of a job
    host: str
    pid: int
    started: float
    heartbeat: float
    running: tuple[int, ...]  # the jobs it ran at its last heartbeat
    stopped: float | None

    def state(self, now: float) -> str:
        if self.stopped is not None:
            return STOPPED
        return GONE if now - self.heartbeat > GONE_AFTER else UP

    def shown(self, now: float) -> str:
        """`up`, `stopped`, or `gone (last heartbeat N s ago)`."""
        state = self.state(now)
        return f"gone (last heartbeat {now - self.heartbeat:.0f} s ago)" if state == GONE else state


def beat(db: Database, worker: str, host: str, pid: int, started: float, running: list[int], now: float | None = None) -> None:
    """`worker` is alive and runs `running` now (a new row, or its row renewed; a restarted pid starts afresh)."""
    now = time.time() if now is None else now
    db.execute(
        "INSERT INTO workers (id, host, pid, started, heartbeat, running, stopped) VALUES (?, ?, ?, ?, ?, ?, NULL)"
        " ON CONFLICT (id) DO UPDATE SET host = excluded.host, pid = excluded.pid, started = excluded.started,"
        " heartbeat = excluded.heartbeat, running = excluded.running, stopped = NULL",
        (worker, host, pid, started, now, _ids(running)),
    )


def stop(db: Database, worker: str, running: list[int], now: float | None = None) -> None:
    """`worker` stopped cleanly (`running`: the jobs it left unfinished, if it was told to stop at once)."""
    now = time.time() if now is None else now
    db.execute("UPDATE workers SET stopped = ?, heartbeat = ?, running = ? WHERE id = ?", (now, now, _ids(running), worker))


def listing(db: Database) -> list[Registered]:
    rows = db.execute("SELECT id, host, pid, started, heartbeat, running, stopped FROM workers ORDER BY host, started, id").fetchall()
    return [Registered(r["id"], r["host"], r["pid"], r["started"], r["heartbeat"], _parsed(r["running"]), r["stopped"]) for r in rows]


def prune(db: Database, now: float | None = None) -> int:
    """Forget workers stopped, or silent, for more than PRUNE_AFTER; returns how many."""
    now = time.time() if now is None else now
    # A stopped row's heartbeat is when it stopped.
    return db.execute("DELETE FROM workers WHERE heartbeat < ?", (now - PRUNE_AFTER,)).rowcount


def _ids(running: list[int]) -> str:
    return ",".join(str(i) for i in sorted(running))


def _parsed(ids: str) -> tuple[int, ...]:
    return tuple(int(i) for i in ids.split(",") if i)


def dead_here(worker: str, here: str) -> bool:
    """`worker` (host:pid) was a process on this host (`here`) that no longer exists: no need to wait for its leases."""
    host, _, pid = worker.rpartition(":")
    if host != here or not pid.isdigit() or int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False
