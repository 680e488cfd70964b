"""`podbot init [DIR]`: a podbot.yaml with every setting, its default and why, and a manifests/ with one example skill.

The file is written from `bot.config.DEFAULTS` and the descriptions in
bot/schemas/config.schema.json, so a setting added there shows up here
without anyone editing this module (tests/test_init.py fails on a setting
that has no description yet).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import yaml

from bot.cli.common import fail
from bot.config import DEFAULTS
from bot.schema import bundled_schema

NO_WHY = "(no description yet: add one to bot/schemas/config.schema.json)"
HEADER = """\
# podbot.yaml, written by `podbot init` with every setting at its default.
# What is valid: bot/schemas/config.schema.json (`podbot manifests schema` is the skills' one).
# Each value can also be set from the environment: PODBOT_<KEY>, nested PODBOT_LIMITS__MEMORY=512m.
"""
# The team's own skills sit next to the file, after the ones that ship with podbot.
OVERRIDES: dict[str, Any] = {"manifest_dirs": [*DEFAULTS["manifest_dirs"], "manifests"]}

EXAMPLE_SKILL = """\
# An example skill: copy it to add your own; `podbot manifests validate` checks them,
# `podbot manifests test` runs their tests: in real containers.
name: hello
description: Greet someone by name from inside a container.
examples: ["greet ada", "say hi to bob"]
patterns: ["^(?:greet|hi) (?P<name>[A-Za-z][A-Za-z0-9_-]*)$"]
parameters:                      # JSON Schema: what the arguments may be
  type: object
  properties:
    name: {type: string, pattern: "^[A-Za-z][A-Za-z0-9_-]{0,31}$", description: who to greet}
  required: [name]
run:
  image: localhost/podbot-base:latest
  command: ["printf", "hello, %s\\\\n", "{name}"]   # argv: each item one argument, never a shell string
  timeout: 10s
roles: [user, operator, admin]  # who may run it
tests:
  - {say: "greet ada", skill: hello, args: {name: ada}, output: "^hello, ada$"}
"""


def _why(schema: dict[str, Any], key: str) -> str | None:
    return schema.get("properties", {}).get(key, {}).get("description")


def _settings(values: dict[str, Any], schema: dict[str, Any], path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any, dict]]:
    """(key path, value, schema) of every setting; a mapping whose keys the schema names is walked into."""
    found = []
    for key, value in values.items():
        sub = schema.get("properties", {}).get(key, {})
        found.append((path + (key,), value, sub))
        if isinstance(value, dict) and value and "properties" in sub:
            found += _settings(value, sub, path + (key,))
    return found


def undocumented() -> list[str]:
    """Settings in DEFAULTS without a description in the config schema (their why-line)."""
    return [".".join(path) for path, _, sub in _settings(DEFAULTS, bundled_schema("config")) if not sub.get("description")]


def annotated() -> str:
    """podbot.yaml text: each setting after a comment line saying why it is there."""
    schema = bundled_schema("config")
    lines = [HEADER.rstrip("\n")]
    for path, value, sub in _settings({**DEFAULTS, **OVERRIDES}, schema):
        pad = "  " * (len(path) - 1)
        if len(path) == 1:
            lines.append("")
        lines.append(f"{pad}# {sub.get('description') or NO_WHY}")
        if isinstance(value, dict) and value and "properties" in sub:
            lines.append(f"{pad}{path[-1]}:")
            continue
        dumped = yaml.safe_dump({path[-1]: value}, default_flow_style=False, sort_keys=False, allow_unicode=True, width=1000)
        lines += [pad + line for line in dumped.splitlines()]
    return "\n".join(lines) + "\n"


@click.command()
@click.argument("directory", default=".", type=click.Path(file_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Overwrite an existing podbot.yaml and example skill.")
def init(directory: Path, force: bool) -> None:
    """Write DIR/podbot.yaml (every setting, its default and why) and DIR/manifests/ with one example skill."""
    config, example = directory / "podbot.yaml", directory / "manifests" / "hello.yaml"
    existing = [str(p) for p in (config, example) if p.exists()]
    if existing and not force:
        fail(f"{', '.join(existing)} already there; --force overwrites")
    example.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(annotated())
    example.write_text(EXAMPLE_SKILL)
    click.echo(f"wrote {config} and {example}; start with: podbot --config {config} run")
