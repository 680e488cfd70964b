"""`podbot init`: the annotated podbot.yaml is generated from DEFAULTS, names every setting and why, and loads."""

from __future__ import annotations

import os
from pathlib import Path

from bot import config
from bot.cli import scaffold
from bot.schema import bundled_schema
from tests.conftest import REPO, cli


def _keys(values: dict, schema: dict, prefix: str = "") -> list[str]:
    """Every setting's dotted key; a mapping is walked into where the schema names its keys (not roles, mounts …)."""
    found = []
    for key, value in values.items():
        found.append(prefix + key)
        sub = schema.get("properties", {}).get(key, {})
        if isinstance(value, dict) and "properties" in sub:
            found += _keys(value, sub, f"{prefix}{key}.")
    return found


def test_every_setting_has_a_why_line() -> None:
    # A setting added to DEFAULTS needs a description in bot/schemas/config.schema.json: it is its comment in podbot.yaml.
    missing = scaffold.undocumented()
    assert not missing, f"give these settings a description in bot/schemas/config.schema.json (their podbot.yaml comment): {missing}"


def test_init_writes_every_default_with_its_why_and_an_example_skill(tmp_path: Path) -> None:
    done = cli("init", str(tmp_path / "team"))
    assert done.returncode == 0, done.stderr
    text = (tmp_path / "team" / "podbot.yaml").read_text()
    lines = text.splitlines()
    for key in _keys(config.DEFAULTS, bundled_schema("config")):
        at = -1
        for depth, name in enumerate(key.split(".")):  # each part of the key, searched for below its parent's line
            at = next((i for i in range(at + 1, len(lines)) if lines[i].startswith("  " * depth + name + ":")), None)
            assert at is not None, f"{key} is not in podbot.yaml"
        assert lines[at - 1].strip().startswith("# ") and scaffold.NO_WHY not in lines[at - 1], f"{key} has no why-line"

    loaded = config.load(str(tmp_path / "team" / "podbot.yaml"), environ={})
    defaults = config.load(None, environ={})
    assert loaded.limits == defaults.limits and loaded.model.file == defaults.model.file and loaded.log_format == "text"
    assert loaded.manifest_dirs == (REPO / "manifests", tmp_path / "team" / "manifests")

    env = {**os.environ, "PODBOT_CONFIG": str(tmp_path / "team" / "podbot.yaml")}
    validate = cli("manifests", "validate", env=env)
    shipped = len(list((REPO / "manifests").glob("*.yaml")))
    assert validate.returncode == 0 and f"{shipped + 1} skills valid, 0 errors" in validate.stderr, validate.stderr

    again = cli("init", str(tmp_path / "team"))
    assert again.returncode == 1 and "--force" in again.stderr
