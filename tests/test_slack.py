"""The Slack adapter with the real slack-bolt / slack_sdk against a fake Slack.

The FakeRunner (tests.fake_runner) runs the skills behind it, except in the first test, where a real container does.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

import adapters
from adapters.slack import SlackAdapter, SlackSettings
from bot.app import Bot
from bot.runtime.runner import Runner
from tests.conftest import platform_bot, platform_session
from tests.fake_http import WAIT, assert_sent_once_in_order
from tests.fake_runner import RUN_TIME, FakeRunner, Scripted
from tests.fake_slack import BOT_ID, BOT_USER, TEAM, FakeSlack, form, post_signed

BOT_TOKEN, APP_TOKEN, SECRET = "xoxb-1-test-bot-token", "xapp-1-test-app-token", "8f742231b10e8888abcd99yyyzzz85a5"
ADMIN, OPERATOR, USER = "U0ADMIN", "U0OPER", "U0USER"
MENTION = f"<@{BOT_USER}>"


def ident(user: str) -> str:
    return f"slack:{TEAM}:{user}"


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeSlack]:
    server = FakeSlack(BOT_TOKEN, APP_TOKEN).start()
    yield server
    server.stop()


def make_bot(tmp: Path, fake: FakeSlack, runner: Runner | None, **slack) -> tuple[Bot, Path]:
    """A bot for `fake` whose skills run on `runner` (Podman when None), and its log dir."""
    roles = {"admin": [ident(ADMIN)], "operator": [ident(OPERATOR)]}
    return platform_bot(tmp, roles, {"slack": {"api_base_url": fake.api_url, **slack}}, runner)


@contextmanager
def slack_bot(fake: FakeSlack, tmp: Path, runner: Runner | None = None) -> Iterator[tuple[Bot, SlackAdapter]]:
    roles = {"admin": [ident(ADMIN)], "operator": [ident(OPERATOR)]}
    environ = {"SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_APP_TOKEN": APP_TOKEN}
    with platform_session(tmp, roles, {"slack": {"api_base_url": fake.api_url}}, environ, runner) as both:
        yield both


@pytest.fixture(scope="module")
def slack(fake: FakeSlack, tmp_path_factory) -> Iterator[tuple[Bot, SlackAdapter]]:
    with slack_bot(fake, tmp_path_factory.mktemp("slack"), FakeRunner(delay=RUN_TIME)) as both:
        yield both


def job_of(text: str) -> str:
    return re.match(r"job (\d+) queued", text).group(1)


def said(fake: FakeSlack, event: dict) -> list[dict]:
    """Wait for the bot's first answer in the thread of `event`; return everything posted there so far."""
    fake.send_event(event)
    return fake.wait_for("post", lambda d: d["channel"] == event["channel"] and d["thread_ts"] == event["ts"])


def result(fake: FakeSlack, what: str, match, ack_text: str) -> dict:
    job = job_of(ack_text)
    return fake.wait_for(what, lambda d: match(d) and d["text"].startswith(f"job {job} ") and "queued" not in d["text"])[0]


def test_a_real_container_answers_through_slack(podman_ready, tmp_path: Path) -> None:
    server = FakeSlack(BOT_TOKEN, APP_TOKEN).start()  # its own server: the module's bot is connected to the shared one
    try:
        with slack_bot(server, tmp_path):
            ack = said(server, server.message("D0USER", USER, "df /"))[0]
            assert "Filesystem" in result(server, "post", lambda d: d["channel"] == "D0USER", ack["text"])["text"]
    finally:
        server.stop()


def test_a_mention_runs_a_skill_and_answers_in_its_thread(slack, fake: FakeSlack) -> None:
    bot, _ = slack
    bot.runner.script(["echo", "hello"], Scripted(output="hello\n", delay=0.5))  # running long enough to wear the reaction
    event = fake.message("C0OPS", USER, f"{MENTION} say hello")
    ack = said(fake, event)[0]
    assert "queued: say text=hello" in ack["text"]
    done = result(fake, "post", lambda d: d["thread_ts"] == event["ts"], ack["text"])
    assert done["channel"] == "C0OPS" and done["text"].endswith("```\nhello\n```")
    reactions = fake.wait_for("reaction", lambda d: d["ts"] == event["ts"], count=2)
    assert [r["op"] for r in reactions] == ["add", "remove"] and reactions[0]["name"] == "hourglass_flowing_sand"

    dm = fake.message("D0USER", USER, "df /")
    ack = said(fake, dm)[0]
    assert result(fake, "post", lambda d: d["channel"] == "D0USER", ack["text"])["text"].endswith(" df /\n```")


def test_the_slash_command_runs_commands_and_skills(slack, fake: FakeSlack) -> None:
    trigger = fake.slash_command("C0OPS", ADMIN, "jobs all")
    [answer] = fake.wait_for("respond", lambda d: d["trigger"] == trigger)
    assert answer["text"].startswith("Latest ") and answer["response_type"] == "in_channel"

    trigger = fake.slash_command("C0ELSEWHERE", OPERATOR, "say via the command")
    ack = fake.wait_for("respond", lambda d: d["trigger"] == trigger)[0]
    assert result(fake, "respond", lambda d: d["trigger"] == trigger, ack["text"])["text"].endswith("```\nvia the command\n```")

    trigger = fake.slash_command("C0OPS", OPERATOR, "")
    assert fake.wait_for("respond", lambda d: d["trigger"] == trigger)[0]["text"].startswith("Ask me to run a skill:")
    trigger = fake.slash_command("C0OPS", OPERATOR, "whoami")
    [answer] = fake.wait_for("respond", lambda d: d["trigger"] == trigger)
    assert answer["text"].startswith(f"You are {ident(OPERATOR)} (disp-{OPERATOR}); roles: operator")


def test_a_user_without_the_role_is_denied(slack, fake: FakeSlack) -> None:
    trigger = fake.slash_command("C0OPS", USER, "probe script=id")
    [answer] = fake.wait_for("respond", lambda d: d["trigger"] == trigger)
    assert answer["text"].startswith("Denied: probe needs the role admin, operator; you have user.")


def test_channels_answer_mentions_and_dms_answer_everything(slack, fake: FakeSlack) -> None:
    ignored = [
        fake.send_event(fake.message("C0QUIET", USER, "say not for the bot")),
        fake.send_event(fake.message("D0QUIET", USER, "say from myself") | {"bot_id": BOT_ID, "user": BOT_USER}),
        fake.send_event(fake.message("D0QUIET", USER, "say edited") | {"subtype": "message_changed"}),
    ]
    ack = said(fake, fake.message("C0QUIET", USER, f"{MENTION} say now"))[0]
    assert "queued: say text=now" in ack["text"]
    ack = said(fake, fake.message("D0QUIET", USER, "say in a dm"))[0]
    assert "queued: say text=in a dm" in ack["text"]
    assert not fake.recorded("post", lambda d: d["thread_ts"] in [e["ts"] for e in ignored])


def test_long_output_is_split_on_lines_in_escaped_blocks(slack, fake: FakeSlack) -> None:
    script = 'for i in $(seq 1 900); do echo "line $i <!everyone> @here \\`\\`\\` done"; done'
    bot, _ = slack
    bot.runner.script(
        ["sh", "-c", script], Scripted(output="".join(f"line {i} <!everyone> @here ``` done\n" for i in range(1, 901)), delay=RUN_TIME)
    )
    event = fake.message("D0LONG", OPERATOR, f"/probe script='{script}'")
    ack = said(fake, event)[0]
    result(fake, "post", lambda d: d["channel"] == "D0LONG", ack["text"])
    fake.wait_for("post", lambda d: d["channel"] == "D0LONG" and "line 900 " in d["text"])
    posts = fake.recorded("post", lambda d: d["channel"] == "D0LONG")[1:]
    assert len(posts) > 2 and all(len(p["text"]) <= 4000 and p["thread_ts"] == event["ts"] for p in posts)
    assert not any("<!everyone>" in p["text"] for p in posts)
    blocks = [b for p in posts for b in re.findall(r"```\n(.*?)\n```", p["text"], re.S)]
    lines = "\n".join(blocks).replace("\u200b", "").replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&").split("\n")
    assert lines == [f"line {i} <!everyone> @here ``` done" for i in range(1, 901)]


def test_replies_wait_out_refusals_and_arrive_in_order(slack, fake: FakeSlack) -> None:
    channel = "D0BUSY"
    fake.refuse(1.5, 429)
    for word in ("one", "two", "three"):
        fake.send_event(fake.message(channel, OPERATOR, f"say {word}"))
    fake.wait_for("post", lambda d: d["channel"] == channel and "done in" in d["text"], count=3)
    fake.refuse(1.0, 500)
    fake.send_event(fake.message(channel, OPERATOR, "say four"))
    fake.wait_for("post", lambda d: d["channel"] == channel and "\nfour\n" in d["text"])
    texts = [d["text"] for d in fake.recorded("post", lambda d: d["channel"] == channel)]
    assert_sent_once_in_order(texts, ["one", "two", "three", "four"])


def test_bad_tokens_are_clear_errors_that_never_show_the_token(fake: FakeSlack, tmp_path, caplog) -> None:
    bot, _ = make_bot(tmp_path, fake, FakeRunner())
    for bot_token, app_token, error in [
        ("xoxb-wrong-bot-token-123", APP_TOKEN, "Slack rejected the bot token (SLACK_BOT_TOKEN): invalid_auth"),
        (
            BOT_TOKEN,
            "xapp-wrong-app-token-123",
            "Slack rejected the app-level token (SLACK_APP_TOKEN, scope connections:write): invalid_auth",
        ),
    ]:
        adapter = SlackAdapter(SlackSettings(api_base_url=fake.api_url), bot_token, app_token, None)
        with caplog.at_level(logging.DEBUG):
            adapter.start(bot)
            assert adapter.finished.wait(WAIT)
        assert adapter.error == error
    assert "wrong-bot-token" not in caplog.text and "wrong-app-token" not in caplog.text


def test_http_mode_takes_only_signed_requests(fake: FakeSlack, tmp_path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    bot, logs = make_bot(tmp_path, fake, FakeRunner(), mode="http", http_listen="127.0.0.1", http_port=port)
    [adapter] = adapters.configured(bot.cfg, environ={"SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_SIGNING_SECRET": SECRET})
    bot.add_adapter(adapter)
    bot.start(0)
    adapter.start(bot)
    try:
        assert adapter.connected.wait(WAIT), adapter.error
        url = f"http://127.0.0.1:{port}/slack/events"
        forged = fake.message("C0HTTP", ADMIN, f"{MENTION} whoami")
        assert post_signed(url, "not-the-secret", json.dumps(fake.event_body(forged)).encode(), "application/json") == 401
        event = fake.message("C0HTTP", ADMIN, f"{MENTION} /whoami")
        assert post_signed(url, SECRET, json.dumps(fake.event_body(event)).encode(), "application/json") == 200
        [answer] = fake.wait_for("post", lambda d: d["thread_ts"] == event["ts"])
        assert answer["text"].startswith(f"You are {ident(ADMIN)}")
        command = fake.command_body("C0HTTP", ADMIN, "skills")
        assert post_signed(url, SECRET, form(command), "application/x-www-form-urlencoded") == 200
        assert fake.wait_for("respond", lambda d: d["trigger"] == command["trigger_id"])[0]["text"].startswith("Skills you may run")
        assert not fake.recorded("post", lambda d: d["thread_ts"] == forged["ts"])
    finally:
        adapter.stop()
        bot.stop()
        shutil.rmtree(logs, ignore_errors=True)
