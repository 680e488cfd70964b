"""Secrets: configured ones reach the container as env or a tmpfs file, secret arguments are sealed at rest,
and no value is ever written in plain text: not to the data dir (ledger, audit, outbox, Huey's queue, the
log) and not to any reply. Real containers throughout."""

from __future__ import annotations

import json
import logging
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot import config
from bot.flow import Message
from bot.vault import KEY_FILE, SEALED, Vault
from tests.conftest import Recorder, add_manifest, cli, make_bot, probe_like, run_skill, say, write_config

API_KEY = "ak-LEAK-5e1f0c9d"  # configured secret, given as env
CERT = "cert-LEAK-77aa41"  # configured secret, given as a file
PASSWORD = "pw-LEAK-3b8d2e"  # typed by a person into a `secret: true` parameter

LEAKY = {
    **probe_like("leaky", ""),
    "description": "Test skill that prints every secret it gets, fails with them, and falls back.",
    "parameters": {"type": "object", "properties": {"password": {"type": "string", "secret": True, "minLength": 8}}},
    "run": {
        "image": "localhost/podbot-base:latest",
        "command": [
            "sh",
            "-c",
            'echo "key=$API_KEY cert=$(cat /run/secrets/cert) pw=$1"; ls -ln /run/secrets/cert; echo "error: $API_KEY $1" >&2; exit 3',
            "leaky",
            "{password}",
        ],
        "timeout": "5s",
    },
    "secrets": [{"name": "api_key", "env": "API_KEY"}, {"name": "cert", "file": "/run/secrets/cert"}],
    "confirm": True,
    "fallback": "leak_fallback",
}
FALLBACK = {
    **probe_like("leak_fallback", ""),
    "parameters": {"type": "object", "properties": {"summary": {"type": "string"}}, "required": ["summary"]},
    "run": {
        "image": "localhost/podbot-base:latest",
        "command": ["sh", "-c", 'echo "fallback: $1 | $PODBOT_FAILED_ARGS | $PODBOT_FAILED_OUTPUT"', "fb", "{summary}"],
        "timeout": "5s",
    },
}


@pytest.fixture
def leak_config(tmp_path: Path, log_dir: Path, monkeypatch) -> Path:
    monkeypatch.setenv("LEAK_TEST_API_KEY", API_KEY)
    cert = tmp_path / "cert.pem"
    cert.write_text(CERT + "\n")
    cert.chmod(0o600)
    add_manifest(tmp_path, LEAKY)
    add_manifest(tmp_path, FALLBACK)
    secrets = {"api_key": {"env": "LEAK_TEST_API_KEY"}, "cert": {"file": str(cert)}}
    return write_config(tmp_path, log_dir, secrets=secrets)


@pytest.fixture
def logged(leak_config: Path) -> Iterator[Path]:
    """podbot.log in the data dir, as `podbot run` writes it (added before the bot is built, like the CLI does)."""
    data_dir = config.load(str(leak_config), environ={}).data_dir
    data_dir.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(data_dir / "podbot.log")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    old_level = root.level
    root.setLevel(logging.DEBUG)
    yield data_dir / "podbot.log"
    root.removeHandler(handler)
    root.setLevel(old_level)
    handler.close()


def test_no_secret_is_ever_written_in_plain_text(podman_ready, leak_config: Path, logged: Path) -> None:
    cfg = config.load(str(leak_config), environ={})
    bot = make_bot(cfg)
    recorder = Recorder()
    bot.add_adapter(recorder)
    bot.start(2, schedules=False)
    try:
        asked = say(bot, "olga", f"/leaky password={PASSWORD}")
        assert asked[0].text.startswith("Run leaky password=***?"), asked[0].text
        failed = run_skill(bot, recorder, "olga", "yes")
        assert "failed with exit code 3" in failed.text
        assert "key=*** cert=*** pw=***" in failed.code and "error: *** ***" in failed.code
        assert "-r--r--r--" in failed.code  # the file is readable by the container user
        fallback = recorder.wait_for(lambda r: r.job_id == failed.job_id + 1 and " queued" not in r.text, "from the fallback")[0]
        assert "fallback: job" in fallback.code and "password=***" in fallback.code and "'password': '***'" in fallback.code
        shown = say(bot, "ada", f"/job {failed.job_id}") + say(bot, "ada", "/audit 30") + say(bot, "olga", "/jobs")
        refused = say(bot, "olga", "/leaky password=short")  # too short: refused, the value never echoed
        assert "not valid: ***" in refused[0].text
        with sqlite3.connect(cfg.data_dir / "podbot.db") as db:
            [args] = db.execute("SELECT args FROM jobs WHERE id = ?", (failed.job_id,)).fetchone()
        assert json.loads(args)["password"].startswith(SEALED)
    finally:
        bot.stop()
    replies = [f"{r.text}\n{r.code or ''}" for r in [*recorder.replies, *asked, *shown, *refused]]
    files = [p for p in cfg.data_dir.rglob("*") if p.is_file()]
    assert {p.name for p in files} >= {"podbot.db", "queue.db", "podbot.log", KEY_FILE}
    assert "leaky" in logged.read_text()
    for secret in (API_KEY, CERT, PASSWORD):
        assert not [p for p in files if secret.encode() in p.read_bytes()], secret
        assert not [r for r in replies if secret in r], secret
    assert (cfg.data_dir / KEY_FILE).stat().st_mode & 0o777 == 0o600


def test_a_secret_that_is_not_there(podman_ready, tmp_path: Path, log_dir: Path) -> None:
    missing_name = {**LEAKY, "name": "needs_nope", "secrets": [{"name": "nope", "env": "NOPE"}], "fallback": None}
    del missing_name["fallback"]
    add_manifest(tmp_path, missing_name)
    path = write_config(tmp_path, log_dir)
    checked = cli("--config", str(path), "manifests", "validate", str(tmp_path / "extra-manifests"))
    assert checked.returncode == 1
    assert f"{tmp_path}/extra-manifests/needs_nope.yaml:" in checked.stdout
    assert re.search(
        r"/needs_nope\.yaml:\d+:\d+: secret 'nope' is not in podbot\.yaml secrets \(api_key, cert", checked.stdout
    ) or re.search(r"/needs_nope\.yaml:\d+:\d+: secret 'nope' is not in podbot\.yaml secrets", checked.stdout), checked.stdout

    unset = {**LEAKY, "name": "needs_unset", "secrets": [{"name": "api_key", "env": "API_KEY"}], "confirm": False}
    del unset["fallback"]
    (tmp_path / "extra-manifests" / "needs_nope.yaml").unlink()
    add_manifest(tmp_path, unset)
    path = write_config(tmp_path, log_dir, secrets={"api_key": {"env": "PODBOT_TEST_UNSET_VARIABLE"}})
    bot = make_bot(config.load(str(path), environ={}))
    recorder = Recorder()
    bot.add_adapter(recorder)
    bot.start(1, schedules=False)
    try:
        reply = run_skill(bot, recorder, "olga", f"/needs_unset {PASSWORD}")
    finally:
        bot.stop()
    assert reply.text.endswith("failed: secret api_key is not set: its environment variable PODBOT_TEST_UNSET_VARIABLE is empty")
    assert reply.code is None


def test_a_typed_value_is_never_taken_for_a_sealed_one(tmp_path: Path) -> None:
    vault = Vault({}, tmp_path)
    sealed = vault.seal_args(["pw"], {"pw": PASSWORD})["pw"]
    # Someone who saw a sealed value (in /audit, say) cannot hand it back to have it opened for them:
    # its first character is a control character, which every message loses where it arrives.
    assert SEALED not in Message("console", "console", "console:eve", f"/leaky password={sealed}").text
    # and only a skill's secret parameters are ever opened.
    assert vault.unseal_args({"pw": sealed, "text": sealed}, ["pw"]) == {"pw": PASSWORD, "text": sealed}
    assert (tmp_path / KEY_FILE).stat().st_mode & 0o777 == 0o600
