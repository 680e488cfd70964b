"""Who has which roles, and who may run what. Decided in code, never by the model."""

from __future__ import annotations

from collections.abc import Iterable
from fnmatch import fnmatchcase

from bot.config import Config
from bot.skill import Skill
from bot.store import grants
from bot.store.database import Database


def roles_of(cfg: Config, identity: str, db: Database | None = None) -> frozenset[str]:
    """The default role, every role whose identity list matches (`*` is a wildcard), and roles granted in the database."""
    roles = {cfg.default_role} | (grants.of(db, identity) if db is not None else set())
    for role, patterns in cfg.roles.items():
        if any(fnmatchcase(identity, pattern) for pattern in patterns):
            roles.add(role)
    return frozenset(roles)


def held(cfg: Config, db: Database | None = None) -> set[str]:
    """The roles someone has: the default role, config roles naming at least one identity, granted roles."""
    return {cfg.default_role, *(role for role, patterns in cfg.roles.items() if patterns)} | (grants.roles(db) if db is not None else set())


def is_admin(cfg: Config, roles: frozenset[str]) -> bool:
    return bool(roles & cfg.admin_roles)


def may_run(cfg: Config, roles: frozenset[str], manifest: Skill) -> bool:
    return is_admin(cfg, roles) or bool(roles & manifest.roles)


def runnable(cfg: Config, roles: frozenset[str], skills: Iterable[Skill]) -> list[Skill]:
    return [m for m in skills if may_run(cfg, roles, m)]
