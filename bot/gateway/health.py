"""/readyz: can this process do its work? The database, the queue, the container engine and each platform, with reasons."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from adapters.base import NetworkAdapter
from bot.app import Bot


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


def _database(bot: Bot) -> str:
    queued = bot.db.execute("SELECT COUNT(*) FROM jobs WHERE state = 'queued'").fetchone()[0]
    return f"{queued} jobs queued"


def _queue(bot: Bot) -> str:
    return f"{bot.queue.pending()} messages waiting"


def _podman(bot: Bot) -> str:
    return f"{len(bot.runner.containers())} job containers"


PROBES: dict[str, Callable[[Bot], str]] = {"database": _database, "queue": _queue, "podman": _podman}


def readiness(bot: Bot, platforms: Sequence[NetworkAdapter]) -> list[Check]:
    """Every check, each caught on its own so that one failing part never hides how the others stand (blocking: run off the loop)."""
    checks = []
    for name, probe in PROBES.items():
        try:
            checks.append(Check(name, True, probe(bot)))
        except Exception as exc:
            checks.append(Check(name, False, f"{type(exc).__name__}: {exc}"[:300]))
    for adapter in platforms:
        status = adapter.status()
        checks.append(Check(adapter.platform, status.state == "connected", ": ".join(filter(None, (status.state, status.detail)))))
    return checks
