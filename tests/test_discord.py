"""The Discord adapter with the real discord.py against a fake Discord (REST + gateway).

The FakeRunner (tests.fake_runner) runs the skills behind it, except in the first test, where a real container does.
"""

from __future__ import annotations

import logging
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from adapters.discord import DiscordAdapter, DiscordSettings
from bot import config
from bot.app import Bot
from bot.runtime.runner import Runner
from tests.conftest import make_bot, platform_session
from tests.fake_discord import CHANNEL, FakeDiscord
from tests.fake_http import WAIT, assert_sent_once_in_order
from tests.fake_runner import RUN_TIME, FakeRunner, Scripted

TOKEN = "MTAxMDEwMTAxMA.fake.discord-test-token"
ADMIN, OPERATOR, USER = 901, 111, 222
DM = 7001  # any channel but CHANNEL is a DM in the fake
NO_PINGS = {"parse": []}
MESSAGE_CONTENT = 1 << 15


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeDiscord]:
    server = FakeDiscord(TOKEN).start()
    yield server
    server.stop()


@contextmanager
def connected_bot(fake: FakeDiscord, tmp: Path, runner: Runner | None = None) -> Iterator[tuple[Bot, DiscordAdapter]]:
    """A bot connected to `fake` (its skills run on `runner`, Podman when None)."""
    platforms = {"discord": {"api_base_url": fake.api_url, "gateway_url": fake.gateway_url, "message_content_intent": True}}
    roles = {"admin": [f"discord:{ADMIN}"], "operator": [f"discord:{OPERATOR}"]}
    with platform_session(tmp, roles, platforms, {"DISCORD_BOT_TOKEN": TOKEN}, runner) as both:
        yield both


@pytest.fixture(scope="module")
def discord_bot(fake: FakeDiscord, tmp_path_factory) -> Iterator[tuple[Bot, DiscordAdapter]]:
    with connected_bot(fake, tmp_path_factory.mktemp("discord"), FakeRunner(delay=RUN_TIME)) as both:
        yield both


def job_of(text: str) -> str:
    return re.search(r"job (\d+) queued", text).group(1)


def answered(fake: FakeDiscord, message_id: int) -> dict:
    """The bot's first answer to message `message_id` (it replies to it)."""
    return fake.wait_for("message", lambda d: d["reference"] == message_id)[0]


def result(fake: FakeDiscord, what: str, match, ack: str) -> dict:
    job = job_of(ack)
    return fake.wait_for(what, lambda d: match(d) and d["content"].startswith(f"job {job} ") and "queued" not in d["content"])[0]


def test_a_real_container_answers_through_discord(podman_ready, tmp_path: Path) -> None:
    server = FakeDiscord(TOKEN).start()  # its own server: the module's bot is connected to the shared one
    try:
        with connected_bot(server, tmp_path):
            ack = answered(server, server.message(DM, USER, "df /"))
            assert "Filesystem" in result(server, "message", lambda d: d["channel_id"] == DM, ack["content"])["content"]
    finally:
        server.stop()


def test_a_mention_runs_a_skill_and_the_result_comes_back_in_the_channel(discord_bot, fake: FakeDiscord) -> None:
    assert fake.wait_for("identify")[0]["intents"] & MESSAGE_CONTENT
    bot, _ = discord_bot
    bot.runner.script(["echo", "hello"], Scripted(output="hello\n", delay=0.5))  # running long enough to show "typing"
    asked = fake.message(CHANNEL, USER, "say hello", mention=True)
    ack = answered(fake, asked)
    assert "queued: say text=hello" in ack["content"] and ack["channel_id"] == CHANNEL and ack["mentions"] == NO_PINGS
    done = result(fake, "message", lambda d: d["channel_id"] == CHANNEL, ack["content"])
    assert done["content"].endswith("```\nhello\n```") and done["mentions"] == NO_PINGS
    assert fake.recorded("typing", lambda d: d["channel_id"] == CHANNEL), "no typing indicator while the job ran"

    ack = answered(fake, fake.message(DM, USER, "df /"))
    assert result(fake, "message", lambda d: d["channel_id"] == DM, ack["content"])["content"].endswith(" df /\n```")


def test_slash_commands_are_synced_typed_and_followed_up(discord_bot, fake: FakeDiscord) -> None:
    commands = {c["name"]: c for c in fake.wait_for("commands")[0]["commands"]}
    assert {"help", "skills", "jobs", "job", "say", "disk_usage", "tail_log", "probe"} <= set(commands)
    [text] = commands["say"]["options"]
    assert (text["name"], text["type"], text["required"], text["max_length"]) == ("text", 3, True, 500)
    lines = next(o for o in commands["tail_log"]["options"] if o["name"] == "lines")
    assert (lines["type"], lines["required"], lines["min_value"], lines["max_value"]) == (4, False, 1, 1000)
    assert commands["job"]["options"][0]["required"] and not commands["jobs"]["options"][0]["required"]

    token = fake.slash(CHANNEL, OPERATOR, "say", text="from a slash command")
    ack = fake.wait_for("followup", lambda d: d["token"] == token)[0]
    assert fake.recorded("callback", lambda d: token.endswith(d["id"]))[0]["type"] == 5  # deferred: "thinking…"
    assert result(fake, "followup", lambda d: d["token"] == token, ack["content"])["content"].endswith("```\nfrom a slash command\n```")

    token = fake.slash(DM, ADMIN, "jobs", args="all")
    [answer] = fake.wait_for("followup", lambda d: d["token"] == token)
    assert answer["content"].startswith("Latest ") and f"discord:{OPERATOR}" in answer["content"]
    token = fake.slash(DM, OPERATOR, "disk_usage")
    ack = fake.wait_for("followup", lambda d: d["token"] == token)[0]
    assert "disk\\_usage path=/" in ack["content"]


def test_a_user_without_the_role_is_denied(discord_bot, fake: FakeDiscord) -> None:
    token = fake.slash(CHANNEL, USER, "probe", script="id")
    [answer] = fake.wait_for("followup", lambda d: d["token"] == token)
    assert answer["content"].startswith("Denied: probe needs the role admin, operator; you have user.")


def test_guild_channels_answer_mentions_and_replies_dms_answer_everything(discord_bot, fake: FakeDiscord) -> None:
    ignored = fake.message(CHANNEL, USER, "say not for the bot")
    replied = fake.message(CHANNEL, USER, "say to the bot", reply_to_bot=True)
    assert "queued: say text=to the bot" in answered(fake, replied)["content"]
    assert "queued: say text=in a dm" in answered(fake, fake.message(DM + 1, USER, "say in a dm"))["content"]
    # Gateway events are handled in order: the first message was seen and passed over.
    assert not fake.recorded("message", lambda d: d["reference"] == ignored)


def test_long_output_is_split_on_lines_in_escaped_blocks(discord_bot, fake: FakeDiscord) -> None:
    channel = DM + 2
    script = 'for i in $(seq 1 700); do echo "line $i @everyone **bold** \\`\\`\\` done"; done'
    bot, _ = discord_bot
    lines = "".join(f"line {i} @everyone **bold** ``` done\n" for i in range(1, 701))
    bot.runner.script(["sh", "-c", script], Scripted(output=lines, delay=RUN_TIME))
    ack = answered(fake, fake.message(channel, OPERATOR, f"/probe script='{script}'"))
    fake.wait_for("message", lambda d: d["channel_id"] == channel and "line 700 " in d["content"])
    posts = fake.recorded("message", lambda d: d["channel_id"] == channel)
    posts = posts[posts.index(result(fake, "message", lambda d: d["channel_id"] == channel, ack["content"])) :]
    assert len(posts) > 2 and all(len(p["content"]) <= 2000 and p["mentions"] == NO_PINGS for p in posts)
    blocks = [b for p in posts for b in re.findall(r"```\n(.*?)\n```", p["content"], re.S)]
    assert "\n".join(blocks).replace("\u200b", "").split("\n") == [f"line {i} @everyone **bold** ``` done" for i in range(1, 701)]


def test_replies_wait_out_refusals_and_arrive_in_order(discord_bot, fake: FakeDiscord) -> None:
    channel = DM + 3
    fake.refuse(1.5, 429)
    for word in ("one", "two", "three"):
        fake.message(channel, OPERATOR, f"say {word}")
    fake.wait_for("message", lambda d: d["channel_id"] == channel and "done in" in d["content"], count=3)
    fake.refuse(1.0, 500)
    fake.message(channel, OPERATOR, "say four")
    fake.wait_for("message", lambda d: d["channel_id"] == channel and "\nfour\n" in d["content"])
    texts = [d["content"] for d in fake.recorded("message", lambda d: d["channel_id"] == channel)]
    assert_sent_once_in_order(texts, ["one", "two", "three", "four"])


def test_a_bad_token_is_a_clear_error_that_never_shows_the_token(fake: FakeDiscord, caplog) -> None:
    settings = DiscordSettings(api_base_url=fake.api_url, gateway_url=fake.gateway_url)
    adapter = DiscordAdapter(settings, "MTAx.wrong.discord-token")
    bot = make_bot(config.load(environ={"PODBOT_DATA_DIR": tempfile.mkdtemp(prefix="podbot-badtoken-")}), FakeRunner())
    with caplog.at_level(logging.DEBUG):
        adapter.start(bot)
        assert adapter.finished.wait(WAIT)
    assert adapter.error == "Discord rejected the bot token (DISCORD_BOT_TOKEN); copy it again from the developer portal's Bot page"
    assert "wrong.discord-token" not in caplog.text
