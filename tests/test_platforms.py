"""`podbot run` as an operator starts it: every platform with credentials at once, each against its fake, real containers behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import wait_for_text, write_config
from tests.fake_discord import CHANNEL, FakeDiscord
from tests.fake_http import WAIT
from tests.fake_slack import BOT_USER, FakeSlack
from tests.fake_telegram import FakeTelegram

TELEGRAM, SLACK_BOT, SLACK_APP, DISCORD = (
    "7000:AAF-run-token-telegram",
    "xoxb-run-token-slack",
    "xapp-run-token-slack",
    "MTAx.run.token-discord",
)


@pytest.fixture
def fakes() -> Iterator[tuple[FakeTelegram, FakeSlack, FakeDiscord]]:
    servers = FakeTelegram(TELEGRAM).start(), FakeSlack(SLACK_BOT, SLACK_APP).start(), FakeDiscord(DISCORD).start()
    yield servers
    for server in servers:
        server.stop()


def start_podbot(tmp_path: Path, log_dir: Path, fakes, **tokens: str) -> tuple[subprocess.Popen, Path]:
    telegram, slack, discord = fakes
    platforms = {
        "telegram": {"base_url": telegram.base_url, "poll_timeout": 1},
        "slack": {"api_base_url": slack.api_url},
        "discord": {"api_base_url": discord.api_url, "gateway_url": discord.gateway_url},
    }
    path = write_config(tmp_path, log_dir, platforms=platforms)
    env = {**os.environ, "PODBOT_CONFIG": str(path), **tokens}
    stderr = tmp_path / "stderr.txt"
    with stderr.open("w") as out:
        process = subprocess.Popen([sys.executable, "-m", "bot.cli", "run"], env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=out)
    return process, stderr


def stop(process: subprocess.Popen) -> int:
    process.send_signal(signal.SIGINT)
    return process.wait(WAIT)


def test_podbot_run_connects_every_platform_with_credentials(podman_ready, tmp_path: Path, log_dir: Path, fakes) -> None:
    telegram, slack, discord = fakes
    tokens = {"TELEGRAM_BOT_TOKEN": TELEGRAM, "SLACK_BOT_TOKEN": SLACK_BOT, "SLACK_APP_TOKEN": SLACK_APP, "DISCORD_BOT_TOKEN": DISCORD}
    process, stderr = start_podbot(tmp_path, log_dir, fakes, **tokens)
    try:
        wait_for_text(stderr, "podbot is running on telegram, slack, discord")
        telegram.message(31, 31, "say hi telegram")
        slack.send_event(slack.message("C0RUN", "U0RUN", f"<@{BOT_USER}> say hi slack"))
        discord.message(CHANNEL, 31, "say hi discord", mention=True)
        telegram.wait_for("send", lambda d: d["text"].endswith("<pre>hi telegram</pre>"))
        slack.wait_for("post", lambda d: d["text"].endswith("```\nhi slack\n```"))
        discord.wait_for("message", lambda d: d["content"].endswith("```\nhi discord\n```"))
    finally:
        assert stop(process) == 0
    log = stderr.read_text() + (tmp_path / "data" / "podbot.log").read_text()
    assert not any(token in log for token in tokens.values())


def test_one_platform_refusing_its_token_is_reported_and_the_others_run(podman_ready, tmp_path: Path, log_dir: Path, fakes) -> None:
    telegram, _, _ = fakes
    process, stderr = start_podbot(tmp_path, log_dir, fakes, TELEGRAM_BOT_TOKEN=TELEGRAM, DISCORD_BOT_TOKEN="MTAx.not.the-right-token")
    try:
        wait_for_text(stderr, "discord: Discord rejected the bot token (DISCORD_BOT_TOKEN)")
        telegram.message(32, 32, "say still here")
        telegram.wait_for("send", lambda d: d["text"].endswith("<pre>still here</pre>"))
    finally:
        assert stop(process) == 0
    assert "not.the-right-token" not in stderr.read_text()
