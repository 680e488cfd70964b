"""What the pipeline, the built-in commands, the scheduler and the worker share."""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from bot.config import Config
from bot.db import Database
from bot.manifest import Manifest
from bot.understand import Understanding


@dataclass
class Context:
    cfg: Config
    db: Database
    skills: dict[str, Manifest]
    enqueue: Callable[..., None]  # enqueue(job_id, delay=0.0)
    # Wakes the outbox sender early; it also polls, for replies from other processes.
    notify: Callable[[], None] = field(default=lambda: None)
    # Re-reads the manifests, keeping the last good set on errors; returns the problems.
    reload: Callable[[], list] = field(default=lambda: [])
    worker_id: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}")
    # Jobs this process is running now (job id -> attempt), for lease heartbeats.
    running: dict[int, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    # Free text -> skill and arguments (embeddings + the local model); None: only commands and patterns route.
    understanding: Understanding | None = None
