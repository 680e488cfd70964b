"""Every listing command prints a table for people and, with --json, one JSON array for scripts.

In-process (click's runner) on a scratch data dir: the subject is the command line, not a running bot.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from bot import config
from bot.cli import main
from bot.flow import JobState
from bot.store import audit, ledger
from bot.store.database import open_database
from tests.conftest import add_manifest, probe_like


@pytest.fixture
def podbot(config_path: Path, tmp_path: Path) -> Iterator:
    """podbot(*args) -> the command's stdout, after checking that it exited 0."""
    entry = {"cron": "@daily", "reply_to": "console:ops", "as": "console:olga", "name": "daily-probe"}
    add_manifest(tmp_path, probe_like("nightly", "true", schedule=[entry]))
    handlers = list(logging.getLogger().handlers)

    def run(*args: str) -> str:
        result = CliRunner().invoke(main, ["--config", str(config_path), *args], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result.stdout

    yield run
    for handler in set(logging.getLogger().handlers) - set(handlers):  # each invocation logs to its data dir
        logging.getLogger().removeHandler(handler)
        handler.close()


def test_jobs_filter_by_state_skill_and_since(podbot, config_path: Path) -> None:
    db = open_database(None, config.load(str(config_path), environ={}).data_dir)
    old = ledger.create(db, "say", {"text": "old"}, "console:uma", "console", state=JobState.FAILED)
    db.execute("UPDATE jobs SET created = ? WHERE id = ?", (time.time() - 7200, old.id))
    failed = ledger.create(db, "probe", {"script": "exit 3"}, "console:olga", "console", state=JobState.FAILED)
    ledger.create(db, "say", {"text": "hi"}, "console:uma", "console", state=JobState.SUCCEEDED)
    assert [j["id"] for j in json.loads(podbot("jobs", "--json"))] == [3, 2, 1]
    [only] = json.loads(podbot("jobs", "--json", "--state", "failed", "--since", "1h"))
    assert only["id"] == failed.id and only["state"] == "failed" and only["args"] == {"script": "exit 3"} and "env" not in only
    assert [j["id"] for j in json.loads(podbot("jobs", "--json", "--skill", "say", "--state", "failed", "--state", "succeeded"))] == [3, 1]
    assert [j["id"] for j in json.loads(podbot("jobs", "--json", "--since", "2000-01-01", "--user", "console:uma", "-n", "1"))] == [3]
    table = podbot("jobs", "--state", "failed")
    assert "probe" in table and "console:olga" in table and "console:uma" in table
    assert podbot("jobs", "--skill", "nope") == "No jobs match.\n"
    assert "neither a duration" in CliRunner().invoke(main, ["--config", str(config_path), "jobs", "--since", "soon"]).output


def test_skills_schedules_audit_outbox_and_models_as_json(podbot, config_path: Path) -> None:
    skills = {s["name"]: s for s in json.loads(podbot("skills", "--json"))}
    assert skills["say"]["usage"] == "/say text=…" and skills["say"]["roles"] == ["operator", "user"]
    assert skills["nightly"]["schedules"] == ["daily-probe"]
    assert skills["disk_usage"]["parameters"]["properties"]["path"]["default"] == "/"
    assert "/say text=…" in podbot("skills")
    [entry] = json.loads(podbot("schedules", "--json"))
    assert entry | {"next_run": None} == {
        "name": "daily-probe",
        "skill": "nightly",
        "cron": "@daily",
        "timezone": None,
        "identity": "console:olga",
        "reply_to": "console:ops",
        "paused": False,
        "next_run": None,
    }
    assert entry["next_run"] % 86400 == 0
    assert "daily-probe" in podbot("schedules")
    db = open_database(None, config.load(str(config_path), environ={}).data_dir)
    audit.record(db, "console:ada", "console", "grant", None, None, "console:uma +operator")
    [entry] = json.loads(podbot("audit", "--json"))
    assert (entry["actor"], entry["event"], entry["detail"]) == ("console:ada", "grant", "console:uma +operator")
    assert json.loads(podbot("outbox", "--json")) == []
    assert podbot("outbox") == "The outbox is empty: every reply was delivered.\n"
    assert isinstance(json.loads(podbot("models", "list", "--json")), list)
