"""Deterministic routing: an explicit `/skill args` command, then manifest patterns.

The model-based router plugs in after these, for text neither of them claims.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from typing import Any

from bot.errors import ArgumentError
from bot.skill import Skill, coerce

_KEY_VALUE = re.compile(r"^([a-z][a-z0-9_]*)=(.*)$", re.S)


@dataclass(frozen=True)
class Route:
    skill: Skill
    args: dict[str, Any]
    via: str  # "command" or "pattern"


_COMMAND = re.compile(r"/(\S*)\s*(.*)", re.S)


def split_command(text: str) -> tuple[str, str] | None:
    """'/name rest' -> ('name', 'rest'); None when text is not a slash command. Any whitespace ends the name."""
    if not text.startswith("/") or len(text) < 2:
        return None
    found = _COMMAND.fullmatch(text)
    assert found is not None  # the pattern matches anything that starts with "/"
    name, rest = found.groups()
    return name.split("@", 1)[0].lower(), rest.strip()


def explicit(text: str, skills: dict[str, Skill]) -> tuple[Skill, str] | None:
    """'/skill rest' for a loaded skill: the skill and its argument text, unread (the caller authorizes first)."""
    command = split_command(text)
    if command is None or command[0] not in skills:
        return None
    return skills[command[0]], command[1]


def parse_args(skill: Skill, rest: str) -> dict[str, Any]:
    """`key=value` pairs and positional values in schema order; the last string parameter takes the rest."""
    try:
        tokens = shlex.split(rest)
    except ValueError as exc:
        raise ArgumentError(f"could not read the arguments: {exc}") from None
    props = skill.properties
    args: dict[str, Any] = {}
    positional = []
    for token in tokens:
        match = _KEY_VALUE.match(token)
        if match and match.group(1) in props:
            args[match.group(1)] = match.group(2)
        else:
            positional.append(token)
    free = [name for name in props if name not in args]
    for i, value in enumerate(positional):
        if i >= len(free):
            raise ArgumentError(f"too many arguments for {skill.name}; usage: {skill.usage()}")
        if i == len(free) - 1 and props[free[i]].get("type") == "string":
            args[free[i]] = " ".join(positional[i:])
            break
        args[free[i]] = value
    return {name: coerce(value, props.get(name, {})) for name, value in args.items()}


def match_pattern(text: str, skills: dict[str, Skill]) -> Route | None:
    for skill in skills.values():
        for pattern in skill.patterns:
            found = pattern.search(text)
            if found:
                groups = {k: v for k, v in found.groupdict().items() if v is not None}
                args = {k: coerce(v, skill.properties.get(k, {})) for k, v in groups.items()}
                return Route(skill, args, "pattern")
    return None


def route(text: str, skills: dict[str, Skill]) -> Route | None:
    """Route text to a skill, or None when no deterministic route claims it."""
    called = explicit(text, skills)
    if called is not None:
        return Route(called[0], parse_args(*called), "command")
    if split_command(text):
        return None  # a built-in or unknown command: never matched against patterns
    return match_pattern(text, skills)
