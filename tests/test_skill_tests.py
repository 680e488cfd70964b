"""`podbot manifests test`: manifests' `tests:` cases, run through a real bot and real containers."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

from tests.conftest import REPO, cli

GREETER = """\
name: greeter
description: Greet someone.
patterns: ["^greet (?P<who>\\\\w+)$"]
parameters:
  type: object
  properties:
    who: {type: string}
  required: [who]
run:
  image: localhost/podbot-base:latest
  command: ["echo", "hello {who}"]
roles: [operator]
tests:
  - {say: "greet ada", skill: greeter, args: {who: ada}, output: "^goodbye"}
  - {say: "greet ada", as: "telegram:stranger", skill: none}
  - {say: "/greeter", skill: none}
"""


def podbot_test(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    # A wide terminal keeps each table row on one line.
    env = {**os.environ, "PODBOT_DATA_DIR": str(tmp_path / "data"), "COLUMNS": "250"}
    return cli("manifests", "test", *args, env=env)


def test_shipped_manifests_pass_their_tests(tmp_path: Path) -> None:
    result = podbot_test(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"^[1-9][0-9]* passed, 0 failed$", result.stdout, re.M), result.stdout
    for manifest in (REPO / "manifests").glob("*.yaml"):
        assert re.search(rf"^\W*pass\W+{re.escape(manifest.name)}\W", result.stdout, re.M), f"no passing case for {manifest.name}"
    assert "FAIL" not in result.stdout


def test_a_failing_case_prints_why_and_exits_1(tmp_path: Path) -> None:
    (tmp_path / "greeter.yaml").write_text(GREETER)
    result = podbot_test(tmp_path, str(tmp_path / "greeter.yaml"))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "output does not match '^goodbye'; job succeeded: hello ada" in result.stdout
    assert "2 passed, 1 failed" in result.stdout

    scripted = json.loads(podbot_test(tmp_path, "--json", str(tmp_path / "greeter.yaml")).stdout)
    assert [(r["say"], r["expected"], r["passed"]) for r in scripted] == [
        ("greet ada", "greeter", False),
        ("greet ada", "none", True),  # denied: that sender has only the default role
        ("/greeter", "none", True),  # asked which `who`: nothing runs
    ]
    assert scripted[0]["why"] == "output does not match '^goodbye'; job succeeded: hello ada"
