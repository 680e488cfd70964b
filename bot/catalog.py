"""The skills this process has loaded: read at start, read again on /reload or when a manifest file changes.

A set with any error never replaces the last good one: the problems are
returned (FILE:LINE:COL) and the bot goes on with what it had.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path

from bot.config import Config
from bot.errors import Problems
from bot.schema import Problem
from bot.skill import Skill, load_all, manifest_files

log = logging.getLogger(__name__)

Stamp = tuple[tuple[str, int, int], ...]


class Catalog:
    def __init__(self, cfg: Config, skills: dict[str, Skill] | None = None):
        """Load the configured manifests (raises Problems), or take `skills` as they are."""
        self.cfg = cfg
        self._stamp = self._read_stamp()
        if skills is None:
            skills, problems = self._load()
            if problems:
                raise Problems(problems, "manifests")
        self.skills: dict[str, Skill] = skills
        self._listeners: list[Callable[[], None]] = []

    def _load(self) -> tuple[dict[str, Skill], list[Problem]]:
        return load_all(list(self.cfg.manifest_dirs), set(self.cfg.mounts), self.cfg.limits.max_timeout, secret_names=set(self.cfg.secrets))

    def _read_stamp(self) -> Stamp:
        stamp = []
        for file in manifest_files([Path(d) for d in self.cfg.manifest_dirs]):
            try:
                info = file.stat()  # never open: a FIFO named x.yaml would block the watcher
            except OSError:
                continue  # gone since listed, or a dangling link: loading it reports that
            stamp.append((str(file), info.st_mtime_ns, info.st_size))
        return tuple(stamp)

    def on_change(self, listener: Callable[[], None]) -> None:
        """Call `listener` after every reload that changed the set (e.g. to re-register slash commands)."""
        self._listeners.append(listener)

    def reload(self) -> list[Problem]:
        """Re-read the manifests; on any error keep the last good set and return the problems."""
        self._stamp = self._read_stamp()
        skills, problems = self._load()
        if problems:
            log.error("manifests not reloaded, keeping the last good set:\n%s", "\n".join(map(str, problems)))
            return problems
        self.skills = skills
        log.info("reloaded %d skills", len(skills))
        for listener in self._listeners:
            try:
                listener()
            except Exception:
                log.exception("a reload listener failed")
        return []

    def reload_if_changed(self) -> None:
        if self._read_stamp() != self._stamp:
            self.reload()

    def get(self, name: str) -> Skill | None:
        return self.skills.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self.skills

    def __iter__(self) -> Iterator[Skill]:
        return iter(list(self.skills.values()))

    def __len__(self) -> int:
        return len(self.skills)
