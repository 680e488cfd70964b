"""What handling a message may use, built once by `bot.app.Bot` and passed to the pipeline and the commands."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from bot.catalog import Catalog
from bot.config import Config
from bot.store.database import Database
from bot.understanding.stages import Understanding
from bot.vault import Vault


@dataclass(frozen=True)
class Services:
    cfg: Config
    db: Database
    catalog: Catalog
    # Stop a cancelled job's containers now; how many there were. The chat stage never talks to the runtime itself.
    stop_job: Callable[[int], int]
    # Seals the values of secret parameters before anything stores or shows them.
    vault: Vault
    # Free text -> skill and arguments; None: only commands and patterns route.
    understanding: Understanding | None = None
