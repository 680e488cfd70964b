"""What the pipeline, the built-in commands and the worker share."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from bot.config import Config
from bot.db import Database
from bot.manifest import Manifest


@dataclass
class Context:
    cfg: Config
    db: Database
    skills: dict[str, Manifest]
    enqueue: Callable[[int], None]
    # Wakes the outbox sender early; it also polls, for replies from other processes.
    notify: Callable[[], None] = field(default=lambda: None)
