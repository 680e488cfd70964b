"""Deterministic routing and argument checking (no containers needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.chat.routing import route
from bot.errors import ArgumentError
from bot.skill import complete, load_all

REPO = Path(__file__).resolve().parent.parent
SKILLS, _ = load_all([REPO / "manifests"])


def test_explicit_command_key_value_and_positional() -> None:
    assert route("/disk_usage path=/var", SKILLS).args == {"path": "/var"}
    assert route("/disk_usage /var", SKILLS).args == {"path": "/var"}
    assert route("/tail_log syslog 50", SKILLS).args == {"file": "syslog", "lines": 50}
    assert route("/tail_log lines=5 file=syslog", SKILLS).args == {"file": "syslog", "lines": 5}


def test_last_string_parameter_takes_the_rest() -> None:
    found = route('/say hello   "big world"', SKILLS)
    assert (found.skill.name, found.args, found.via) == ("say", {"text": "hello big world"}, "command")


def test_patterns_with_named_groups() -> None:
    assert route("df /", SKILLS).args == {"path": "/"}
    assert route("df", SKILLS).args == {}
    found = route("say hello world", SKILLS)
    assert (found.skill.name, found.args, found.via) == ("say", {"text": "hello world"}, "pattern")
    assert route("resolve acme.io @127.0.0.1:53", SKILLS).args == {"host": "acme.io", "server": "127.0.0.1:53"}
    assert route("what's the weather", SKILLS) is None
    assert route("/nope", SKILLS) is None


def test_defaults_and_schema_errors_are_one_line_answers() -> None:
    assert complete(SKILLS["disk_usage"], {}) == {"path": "/"}
    with pytest.raises(ArgumentError, match=r"^argument 'path' of disk_usage is not valid: '\.\./etc': an absolute path"):
        complete(SKILLS["disk_usage"], {"path": "../etc"})
    with pytest.raises(ArgumentError, match=r"^http_check needs 'url'; usage: /http_check url=…$"):
        complete(SKILLS["http_check"], {})
    with pytest.raises(ArgumentError, match=r"^uptime has no argument 'x' \(it takes: no arguments\)$"):
        complete(SKILLS["uptime"], {"x": 1})
    with pytest.raises(ArgumentError, match="^too many arguments for uptime; usage: /uptime$"):
        route("/uptime now", SKILLS)
    with pytest.raises(ArgumentError, match="could not read the arguments"):
        route('/say "unbalanced', SKILLS)


@pytest.mark.parametrize("file", ["../etc/passwd", "/etc/passwd", "a/../../x", ".hidden", "a//b"])
def test_tail_log_file_names_cannot_escape(file: str) -> None:
    with pytest.raises(ArgumentError):
        complete(SKILLS["tail_log"], {"file": file})


def test_shipped_patterns_run_on_re2_with_their_flags_and_groups() -> None:
    assert all(type(p).__module__.startswith("re2") for s in SKILLS.values() for p in s.patterns)
    assert route("Load?", SKILLS).skill.name == "uptime"  # (?i:…)
    assert route("tail syslog", SKILLS).args == {"file": "syslog"}  # an unmatched group is left out
    assert route("nslookup db.internal", SKILLS).args == {"host": "db.internal"}
    assert dict(SKILLS["say"].shots)["say hello"] == {"text": "hello"}  # examples found by a pattern
