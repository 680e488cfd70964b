"""Deterministic routing: an explicit `/skill args` command, then manifest patterns.

The model-based router plugs in after these, for text neither of them claims.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from typing import Any

import jsonschema

from bot.manifest import Manifest

_KEY_VALUE = re.compile(r"^([a-z][a-z0-9_]*)=(.*)$", re.S)


class ArgumentError(Exception):
    """Arguments that cannot be used; the text is the one-line answer for the person."""


@dataclass(frozen=True)
class Route:
    skill: Manifest
    args: dict[str, Any]
    via: str  # "command" or "pattern"


def split_command(text: str) -> tuple[str, str] | None:
    """'/name rest' -> ('name', 'rest'); None when text is not a slash command."""
    if not text.startswith("/") or len(text) < 2:
        return None
    name, _, rest = text[1:].partition(" ")
    return name.split("@", 1)[0].lower(), rest.strip()


def coerce(value: str, prop: dict) -> Any:
    kind = prop.get("type")
    try:
        if kind == "integer" and re.fullmatch(r"-?[0-9]+", value):
            return int(value)
        if kind == "number":
            return float(value)
    except ValueError:
        return value
    if kind == "boolean" and value.lower() in ("true", "yes", "on", "1", "false", "no", "off", "0"):
        return value.lower() in ("true", "yes", "on", "1")
    return value


def parse_args(skill: Manifest, rest: str) -> dict[str, Any]:
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


def match_pattern(text: str, skills: dict[str, Manifest]) -> Route | None:
    for skill in skills.values():
        for pattern in skill.patterns:
            found = pattern.search(text)
            if found:
                groups = {k: v for k, v in found.groupdict().items() if v is not None}
                args = {k: coerce(v, skill.properties.get(k, {})) for k, v in groups.items()}
                return Route(skill, args, "pattern")
    return None


def route(text: str, skills: dict[str, Manifest]) -> Route | None:
    """Route text to a skill, or None when no deterministic route claims it."""
    command = split_command(text)
    if command:
        name, rest = command
        if name in skills:
            return Route(skills[name], parse_args(skills[name], rest), "command")
        return None
    return match_pattern(text, skills)


def complete(skill: Manifest, args: dict[str, Any]) -> dict[str, Any]:
    """Apply defaults and check the arguments against the manifest's JSON Schema."""
    full = {name: prop["default"] for name, prop in skill.properties.items() if "default" in prop}
    full.update(args)
    errors = sorted(jsonschema.Draft202012Validator(skill.parameters).iter_errors(full), key=lambda e: e.path)
    if errors:
        raise ArgumentError(_explain(skill, errors[0]))
    return full


def _explain(skill: Manifest, error: jsonschema.ValidationError) -> str:
    name = error.path[0] if error.path else None
    if error.validator == "required":
        missing = error.message.split("'")[1]
        return f"{skill.name} needs '{missing}'; usage: {skill.usage()}"
    if error.validator == "additionalProperties":
        extra = sorted(set(error.instance) - set(skill.properties))
        takes = ", ".join(skill.properties) or "no arguments"
        return f"{skill.name} has no argument '{extra[0]}' (it takes: {takes})"
    prop = skill.properties.get(name, {}) if name else {}
    rule = prop.get("description") or error.message
    if error.validator == "pattern":
        rule = prop.get("description") or f"it must match {error.validator_value}"
    return f"argument '{name}' of {skill.name} is not valid: {error.instance!r}: {rule}"
