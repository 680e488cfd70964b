"""Who has which roles, and who may run what. Decided in code, never by the model."""

from __future__ import annotations

from fnmatch import fnmatchcase

from bot import grants
from bot.config import Config
from bot.db import Database
from bot.manifest import Manifest


def roles_of(cfg: Config, identity: str, db: Database | None = None) -> frozenset[str]:
    """The default role, every role whose identity list matches (`*` is a wildcard), and roles granted in the database."""
    roles = {cfg.default_role} | (grants.of(db, identity) if db is not None else set())
    for role, patterns in cfg.roles.items():
        if any(fnmatchcase(identity, pattern) for pattern in patterns):
            roles.add(role)
    return frozenset(roles)


def is_admin(cfg: Config, roles: frozenset[str]) -> bool:
    return bool(roles & cfg.admin_roles)


def may_run(cfg: Config, roles: frozenset[str], manifest: Manifest) -> bool:
    return is_admin(cfg, roles) or bool(roles & manifest.roles)


def runnable(cfg: Config, roles: frozenset[str], skills: dict[str, Manifest]) -> list[Manifest]:
    return [m for m in skills.values() if may_run(cfg, roles, m)]
