"""Skill validation: every error names FILE:LINE:COL of the offending key."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from bot import config
from bot.skill import load_all, render_argv
from tests.conftest import REPO, cli

GOOD = """\
name: hello
description: Say hello.
patterns: ["^hi (?P<who>\\\\w+)$"]
parameters:
  type: object
  properties:
    who: {type: string, default: world}
run:
  image: localhost/podbot-base:latest
  command: ["echo", "hello {who}"]
roles: [user]
"""


def problems_of(tmp_path: Path, text: str, name: str = "m.yaml") -> list[str]:
    (tmp_path / name).write_text(text)
    _, problems = load_all([tmp_path / name], mount_names={"logs"})
    return [str(p) for p in problems]


def test_shipped_manifests_are_valid() -> None:
    cfg = config.load(environ={})
    skills, problems = load_all([REPO / "manifests"], set(cfg.mounts), secret_names=set(cfg.secrets))
    assert problems == []
    shipped = {"disk_usage", "uptime", "http_check", "dns_lookup", "tail_log", "say", "send_alert", "host_stats", "pg_query", "webhook"}
    assert set(skills) == shipped


def test_good_manifest_loads_and_renders_one_argument_per_item(tmp_path: Path) -> None:
    assert problems_of(tmp_path, GOOD) == []
    skills, _ = load_all([tmp_path / "m.yaml"])
    assert render_argv(skills["hello"], {"who": "a b; rm -rf /"}) == ["echo", "hello a b; rm -rf /"]


def test_unknown_key_points_at_the_key(tmp_path: Path) -> None:
    text = GOOD.replace("  command:", "  comand: [x]\n  command:")
    assert problems_of(tmp_path, text) == [
        f"{tmp_path}/m.yaml:10:3: unknown key 'comand' (known: build, command, env, image, mounts, network, pid, pull, timeout)"
    ]


def test_bad_regex(tmp_path: Path) -> None:
    text = GOOD.replace('patterns: ["^hi (?P<who>\\\\w+)$"]', 'patterns:\n  - "^hi ("')
    [problem] = problems_of(tmp_path, text)
    assert problem.startswith(f"{tmp_path}/m.yaml:4:5: bad regular expression")


def test_default_failing_its_own_schema(tmp_path: Path) -> None:
    text = GOOD.replace("who: {type: string, default: world}", "who:\n      type: integer\n      default: world")
    [problem] = problems_of(tmp_path, text)
    assert problem.startswith(f"{tmp_path}/m.yaml:9:7: default of 'who' fails its own schema")


def test_template_naming_an_undeclared_parameter(tmp_path: Path) -> None:
    text = GOOD.replace('command: ["echo", "hello {who}"]', 'command:\n    - echo\n    - "{whom}"')
    assert problems_of(tmp_path, text) == [f"{tmp_path}/m.yaml:12:7: command uses {{whom}}, which is not a declared parameter"]


def test_duplicate_skill_names_across_files(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(GOOD)
    (tmp_path / "b.yaml").write_text(GOOD)
    _, problems = load_all([tmp_path])
    assert [str(p) for p in problems] == [f"{tmp_path}/b.yaml:1:1: duplicate skill name 'hello' (also in {tmp_path}/a.yaml)"]


def test_yaml_syntax_error_and_duplicate_key(tmp_path: Path) -> None:
    [problem] = problems_of(tmp_path, GOOD + "roles: [x\n")
    assert problem.startswith(f"{tmp_path}/m.yaml:13:1: YAML syntax")
    [problem] = problems_of(tmp_path, GOOD + "name: again\n")
    assert problem == f"{tmp_path}/m.yaml:12:1: duplicate key 'name'"


def test_missing_required_key_and_wrong_type(tmp_path: Path) -> None:
    text = GOOD.replace("roles: [user]\n", "").replace("image: localhost/podbot-base:latest", "image: 42")
    assert problems_of(tmp_path, text) == [
        f"{tmp_path}/m.yaml:1:1: document: 'roles' is a required property",
        f"{tmp_path}/m.yaml:9:3: run.image: 42 is not of type 'string'",
    ]


def test_pattern_group_and_mount_must_be_declared(tmp_path: Path) -> None:
    text = GOOD.replace("(?P<who>", "(?P<name>").replace(
        'command: ["echo", "hello {who}"]', 'command: ["echo"]\n  mounts:\n    - {source: secrets, target: /s}'
    )
    assert problems_of(tmp_path, text) == [
        f"{tmp_path}/m.yaml:3:12: pattern group 'name' is not a declared parameter",
        f"{tmp_path}/m.yaml:12:8: mount 'secrets' is not in podbot.yaml mounts (logs)",
    ]


def podbot(*args: str) -> subprocess.CompletedProcess:
    return cli(*args)


def test_cli_validate_prints_positions_and_exits_1(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text(GOOD.replace("roles: [user]", "roles: []"))
    result = podbot("manifests", "validate", str(tmp_path / "bad.yaml"))
    assert result.returncode == 1
    assert result.stdout.strip() == f"{tmp_path}/bad.yaml:11:1: roles: [] should be non-empty"
    assert podbot("manifests", "validate").returncode == 0


def test_cli_schema_is_the_shipped_json_schema() -> None:
    result = podbot("manifests", "schema")
    assert json.loads(result.stdout)["title"] == "Podbot skill manifest, format v1"


def test_validate_warns_of_schedules_that_would_be_denied_or_undeliverable(tmp_path: Path) -> None:
    config = tmp_path / "podbot.yaml"
    config.write_text(f"data_dir: {tmp_path / 'data'}\nroles: {{admin: ['console:ada'], operator: ['console:olga']}}\n")
    schedule = """\
schedule:
  - {name: fine, cron: "@daily", as: "console:olga", reply_to: "console:ops"}
  - name: nightly
    cron: "0 3 * * MON-FRI"
    as: "console:uma"
    reply_to: "slack:#ops"
"""
    (tmp_path / "m.yaml").write_text(GOOD.replace("roles: [user]", "roles: [operator]") + schedule)
    result = cli("manifests", "validate", str(tmp_path / "m.yaml"), env={"PATH": "/usr/bin:/bin", "PODBOT_CONFIG": str(config)})
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"{tmp_path}/m.yaml:16:5: warning: schedule nightly runs as console:uma, who lacks the role operator: it will be denied",
        f"{tmp_path}/m.yaml:17:5: warning: schedule nightly replies to slack:#ops, but slack is not a configured platform (console): "
        "its results would wait undelivered",
    ]
    assert result.stderr.strip().endswith("1 skills valid, 0 errors, 2 warnings")
