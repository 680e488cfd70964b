"""Platforms that fail in the ways real ones do: rejected tokens at `podbot run`, a slash command deferred too late,
forum topics, a name lookup that keeps failing. Real SDKs against the fakes, real containers behind them."""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from adapters.discord import DiscordAdapter
from adapters.slack import SlackAdapter, _Misses
from adapters.telegram import TelegramAdapter
from bot.app import Bot
from bot.store import audit
from tests.conftest import cli, platform_session, wait_for_text, write_config
from tests.fake_discord import CHANNEL, FakeDiscord
from tests.fake_http import WAIT
from tests.fake_slack import TEAM, FakeSlack
from tests.fake_telegram import FakeTelegram

TELEGRAM, DISCORD = "7000:AAF-hardening-telegram", "MTAx.hardening.discord-token"
SLACK_BOT, SLACK_APP = "xoxb-hardening-slack", "xapp-hardening-slack"
OPERATOR = 111
GROUP, TOPIC = -100777, 42


# --- `podbot run` and `podbot status` ---


@pytest.fixture
def fakes() -> Iterator[tuple[FakeTelegram, FakeDiscord]]:
    servers = FakeTelegram(TELEGRAM).start(), FakeDiscord(DISCORD).start()
    yield servers
    for server in servers:
        server.stop()


def podbot_env(
    tmp_path: Path, log_dir: Path, fakes: tuple[FakeTelegram, FakeDiscord], telegram_url: str = "", **tokens: str
) -> dict[str, str]:
    telegram, discord = fakes
    platforms = {
        "telegram": {"base_url": telegram_url or telegram.base_url, "poll_timeout": 1},
        "discord": {"api_base_url": discord.api_url, "gateway_url": discord.gateway_url},
    }
    path = write_config(tmp_path, log_dir, platforms=platforms, roles={"operator": [f"telegram:{OPERATOR}"]})
    return {**os.environ, "PODBOT_CONFIG": str(path), **tokens}


def start_run(tmp_path: Path, env: dict[str, str]) -> tuple[subprocess.Popen, Path]:
    stderr = tmp_path / "stderr.txt"
    with stderr.open("w") as out:
        process = subprocess.Popen([sys.executable, "-m", "bot.cli", "run"], env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=out)
    return process, stderr


def podbot_status(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return cli("status", *args, env=env)


def test_podbot_run_stops_with_the_reasons_when_no_platform_accepts_its_token(podman_ready, tmp_path: Path, log_dir: Path, fakes) -> None:
    env = podbot_env(tmp_path, log_dir, fakes, TELEGRAM_BOT_TOKEN="7000:not-the-telegram-token", DISCORD_BOT_TOKEN="MTAx.not.discord")
    process, stderr = start_run(tmp_path, env)
    try:
        code = process.wait(WAIT)  # no signal: it must end by itself
    finally:
        process.kill()
    text = stderr.read_text()
    assert code == 1, text
    assert "podbot: every platform gave up, so podbot stops: telegram: Telegram rejected the bot token (TELEGRAM_BOT_TOKEN)" in text
    assert "discord: Discord rejected the bot token (DISCORD_BOT_TOKEN)" in text
    assert "podbot is running on" not in text
    assert "not-the-telegram-token" not in text and "not.discord" not in text
    assert not (tmp_path / "data" / "status.json").exists()


def test_podbot_run_reports_a_rejected_platform_and_serves_on_the_others(podman_ready, tmp_path: Path, log_dir: Path, fakes) -> None:
    telegram, _ = fakes
    env = podbot_env(tmp_path, log_dir, fakes, TELEGRAM_BOT_TOKEN=TELEGRAM, DISCORD_BOT_TOKEN="MTAx.not.discord")
    process, stderr = start_run(tmp_path, env)
    try:
        wait_for_text(stderr, "podbot is running on telegram; discord is off: Discord rejected the bot token (DISCORD_BOT_TOKEN)")
        telegram.message(33, 33, "/whoami")
        telegram.wait_for("send", lambda d: d["chat_id"] == 33 and d["text"].startswith("You are telegram:33"))

        shown = podbot_status(env)
        assert shown.returncode == 2, shown.stderr  # running, but not every platform is connected
        lines = shown.stdout.splitlines()
        assert lines[0].startswith(f"podbot run, pid {process.pid}, since ")
        assert re.match(r"telegram +connected +since .* @podbot_test_bot \(polling\)$", lines[1]), lines
        assert re.match(r"discord +failed +since .* Discord rejected the bot token \(DISCORD_BOT_TOKEN\)", lines[2]), lines

        data = json.loads(podbot_status(env, "--json").stdout)
        assert data["running"] and data["pid"] == process.pid and not data["console"]
        assert {p: s["state"] for p, s in data["platforms"].items()} == {"telegram": "connected", "discord": "failed"}
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(WAIT) == 0
    gone = podbot_status(env)
    assert gone.returncode == 1 and "podbot run is not running on " in gone.stderr
    assert "every platform gave up" not in stderr.read_text()
    assert "podbot is running on telegram; discord is off" in (tmp_path / "data" / "podbot.log").read_text()


def test_podbot_run_keeps_running_while_a_platform_is_only_unreachable(podman_ready, tmp_path: Path, log_dir: Path, fakes) -> None:
    with socket.socket() as probe:  # a port nothing listens on: Telegram is down, not refusing us
        probe.bind(("127.0.0.1", 0))
        nowhere = f"http://127.0.0.1:{probe.getsockname()[1]}/bot"
    env = podbot_env(tmp_path, log_dir, fakes, telegram_url=nowhere, TELEGRAM_BOT_TOKEN=TELEGRAM, DISCORD_BOT_TOKEN="MTAx.not.discord")
    process, stderr = start_run(tmp_path, env)
    try:
        deadline = time.monotonic() + WAIT

        def settled(shown: subprocess.CompletedProcess) -> bool:
            # Discord gives up at once; Telegram's first failed attempt may be written a moment later.
            if shown.returncode != 2 or '"failed"' not in shown.stdout:
                return False
            return json.loads(shown.stdout)["platforms"]["telegram"]["detail"] != ""

        while not settled(shown := podbot_status(env, "--json")):
            assert time.monotonic() < deadline and process.poll() is None, stderr.read_text()
            time.sleep(0.2)
        platforms = json.loads(shown.stdout)["platforms"]
        assert platforms["discord"]["state"] == "failed"
        assert platforms["telegram"]["state"] == "connecting" and platforms["telegram"]["detail"].startswith("NetworkError")
        assert process.poll() is None, "one platform still retries: podbot must not give up"
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(WAIT) == 0, stderr.read_text()


def test_podbot_status_tells_a_dead_run_from_a_live_one(tmp_path: Path, log_dir: Path) -> None:
    env = {**os.environ, "PODBOT_CONFIG": str(write_config(tmp_path, log_dir))}
    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True)
    pid = int(ended.stdout)
    (tmp_path / "data").mkdir(exist_ok=True)
    state = {"state": "connected", "detail": "@bot (polling)", "since": time.time()}
    (tmp_path / "data" / "status.json").write_text(json.dumps({"pid": pid, "started": 0, "console": False, "platforms": {"t": state}}))
    shown = podbot_status(env)
    assert shown.returncode == 1 and f"(pid {pid} ended without cleaning up)" in shown.stderr
    assert json.loads(podbot_status(env, "--json").stdout)["running"] is False


# --- Discord: a slash command that could not be deferred in time ---


@pytest.fixture(scope="module")
def discord_fake() -> Iterator[FakeDiscord]:
    server = FakeDiscord(DISCORD).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def discord_bot(podman_ready, discord_fake: FakeDiscord, tmp_path_factory) -> Iterator[tuple[Bot, DiscordAdapter]]:
    platforms = {"discord": {"api_base_url": discord_fake.api_url, "gateway_url": discord_fake.gateway_url}}
    roles = {"operator": [f"discord:{OPERATOR}"]}
    with platform_session(tmp_path_factory.mktemp("discord"), roles, platforms, {"DISCORD_BOT_TOKEN": DISCORD}) as both:
        yield both


def test_a_slash_command_too_late_to_defer_still_runs_and_answers_in_the_channel(discord_bot, discord_fake: FakeDiscord, caplog) -> None:
    bot, _ = discord_bot
    fake = discord_fake
    with caplog.at_level(logging.WARNING):
        token = fake.slash(CHANNEL, OPERATOR, "say", expired=True, text="late but here")
        [ack] = fake.wait_for("message", lambda d: d["channel_id"] == CHANNEL and "queued: say text=late but here" in d["content"])
        job = re.search(r"job (\d+) queued", ack["content"]).group(1)
        fake.wait_for("message", lambda d: d["content"].startswith(f"job {job} say done") and d["content"].endswith("late but here\n```"))
    assert ack["reference"] is None  # no message to reply to: the answer stands alone in the channel
    assert not fake.recorded("followup", lambda d: d["token"] == token)
    assert f"discord: /say from {OPERATOR} in channel {CHANNEL} could not be acknowledged (NotFound: 404" in caplog.text
    assert "Unknown interaction" in caplog.text and "Traceback" not in caplog.text
    entries = [e for e in audit.latest(bot.db, 50) if e.actor == f"discord:{OPERATOR}" and e.job_id == int(job)]
    assert [e.event for e in entries][:1] == ["enqueued"]


# --- Telegram: forum topics ---


@pytest.fixture(scope="module")
def telegram_fake() -> Iterator[FakeTelegram]:
    server = FakeTelegram(TELEGRAM).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def telegram_bot(podman_ready, telegram_fake: FakeTelegram, tmp_path_factory) -> Iterator[tuple[Bot, TelegramAdapter]]:
    platforms = {"telegram": {"base_url": telegram_fake.base_url, "base_file_url": f"{telegram_fake.url}/file/bot", "poll_timeout": 1}}
    roles = {"operator": [f"telegram:{OPERATOR}"]}
    with platform_session(tmp_path_factory.mktemp("telegram"), roles, platforms, {"TELEGRAM_BOT_TOKEN": TELEGRAM}) as both:
        yield both


def test_every_part_of_an_answer_in_a_forum_topic_lands_in_that_topic(telegram_bot, telegram_fake: FakeTelegram) -> None:
    fake = telegram_fake
    asked = fake.message(GROUP, OPERATOR, "/probe script='sleep 1; seq 1 2000'", "supergroup", topic=TOPIC)
    [ack] = fake.wait_for("send", lambda d: d["chat_id"] == GROUP and d["reply_to"] == asked)
    job = re.match(r"job (\d+) queued", ack["text"]).group(1)
    fake.wait_for("send", lambda d: d["chat_id"] == GROUP and re.search(r"\b2000\n?</pre>", d["text"]) is not None)
    sent = fake.sent(GROUP)
    assert len([d for d in sent if d["text"].startswith(f"job {job} probe ")]) == 1
    assert len(sent) > 3, "2000 lines should not fit one message"
    assert [d["topic"] for d in sent] == [TOPIC] * len(sent)
    # The ack and the result's first part quote the question; the result's other parts follow it in the topic.
    assert [d["reply_to"] for d in sent] == [asked, asked] + [None] * (len(sent) - 2)
    assert fake.recorded("action", lambda d: d["chat_id"] == GROUP and d["topic"] == TOPIC), "no typing in the topic"

    general = fake.message(GROUP, OPERATOR, "/whoami", "supergroup")
    [answer] = fake.wait_for("send", lambda d: d["chat_id"] == GROUP and d["reply_to"] == general)
    assert answer["topic"] is None  # outside a topic, as before: only the quote


# --- Slack: a name lookup that fails ---


@pytest.fixture(scope="module")
def slack_fake() -> Iterator[FakeSlack]:
    server = FakeSlack(SLACK_BOT, SLACK_APP).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def slack_bot(podman_ready, slack_fake: FakeSlack, tmp_path_factory) -> Iterator[tuple[Bot, SlackAdapter]]:
    environ = {"SLACK_BOT_TOKEN": SLACK_BOT, "SLACK_APP_TOKEN": SLACK_APP}
    with platform_session(tmp_path_factory.mktemp("slack"), {}, {"slack": {"api_base_url": slack_fake.api_url}}, environ) as both:
        yield both


def test_a_failed_name_lookup_is_not_repeated_for_every_message(slack_bot, slack_fake: FakeSlack) -> None:
    fake, ghost = slack_fake, "U0GHOST"
    fake.nameless.add(ghost)
    for _ in range(3):
        ts = fake.send_event(fake.message("D0GHOST", ghost, "/whoami"))["ts"]
        [answer] = fake.wait_for("post", lambda d, ts=ts: d["channel"] == "D0GHOST" and d["thread_ts"] == ts)
        assert answer["text"].startswith(f"You are slack:{TEAM}:{ghost}")
    assert len(fake.recorded("users.info", lambda d: d["user"] == ghost)) == 1


def test_name_lookup_failures_are_forgotten_after_a_while_and_bounded() -> None:
    forgetful = _Misses(0.0, 10)
    forgetful.add("U1")
    assert not forgetful.recent("U1")  # its time is up: ask again
    bounded = _Misses(600.0, 2)
    for user in ("U1", "U2", "U3"):
        bounded.add(user)
    assert [bounded.recent(u) for u in ("U1", "U2", "U3")] == [False, True, True]
