"""The Telegram adapter with the real python-telegram-bot against a fake Bot API.

The FakeRunner (tests.fake_runner) runs the skills behind it, except in the first test, where real containers do.
"""

from __future__ import annotations

import html
import json
import logging
import re
import socket
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from adapters.telegram import TelegramAdapter, TelegramSettings
from bot import config
from bot.app import Bot
from bot.flow import Reply
from bot.runtime.runner import Runner
from tests.conftest import make_bot, platform_session
from tests.fake_http import WAIT, assert_sent_once_in_order
from tests.fake_runner import RUN_TIME, FakeRunner, Scripted
from tests.fake_telegram import BOT, FakeTelegram

TOKEN = "7000:AAF-test-token-for-the-fake-api"
ADMIN, OPERATOR, USER = 900, 111, 222
GROUP = -100500


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeTelegram]:
    server = FakeTelegram(TOKEN).start()
    yield server
    server.stop()


@contextmanager
def telegram_bot(fake: FakeTelegram, tmp: Path, runner: Runner | None = None) -> Iterator[tuple[Bot, TelegramAdapter]]:
    """A bot connected to `fake` (its skills run on `runner`, Podman when None)."""
    platforms = {"telegram": {"base_url": fake.base_url, "base_file_url": f"{fake.url}/file/bot", "poll_timeout": 1}}
    roles = {"admin": [f"telegram:{ADMIN}"], "operator": [f"telegram:{OPERATOR}"]}
    with platform_session(tmp, roles, platforms, {"TELEGRAM_BOT_TOKEN": TOKEN}, runner) as both:
        yield both


@pytest.fixture(scope="module")
def telegram(fake: FakeTelegram, tmp_path_factory) -> Iterator[tuple[Bot, TelegramAdapter]]:
    with telegram_bot(fake, tmp_path_factory.mktemp("telegram"), FakeRunner(delay=RUN_TIME)) as both:
        yield both


def result_of(fake: FakeTelegram, chat: int, ack: dict) -> dict:
    """The message that reports the end of the job `ack` announced."""
    job = re.match(r"job (\d+) queued", ack["text"]).group(1)
    return fake.wait_for("send", lambda d: d["chat_id"] == chat and d["text"].startswith(f"job {job} ") and "queued" not in d["text"])[0]


def ask(fake: FakeTelegram, chat: int, user: int, text: str, chat_type: str = "private", **kw) -> tuple[int, dict]:
    """`user` writes `text`; returns the message id and the bot's first answer to it."""
    message_id = fake.message(chat, user, text, chat_type, **kw)
    return message_id, fake.wait_for("send", lambda d: d["chat_id"] == chat and d["reply_to"] == message_id)[0]


def test_a_real_container_answers_through_telegram(podman_ready, tmp_path: Path) -> None:
    server = FakeTelegram(TOKEN).start()  # its own server: the module's bot polls the shared one
    try:
        with telegram_bot(server, tmp_path):
            group_message, ack = ask(server, GROUP, USER, "@podbot_test_bot df /", "supergroup")
            result = result_of(server, GROUP, ack)
            assert "Filesystem" in result["text"] and result["reply_to"] == group_message
    finally:
        server.stop()


def test_a_message_runs_a_skill_and_the_result_comes_back_quoting_it(telegram, fake: FakeTelegram) -> None:
    bot, _ = telegram
    bot.runner.script(["echo", "hello"], Scripted(output="hello\n", delay=0.5))  # running long enough to show "typing"
    message_id, ack = ask(fake, USER, USER, "say hello")
    assert ack["text"].startswith("job ") and "queued: say text=hello" in ack["text"]
    result = result_of(fake, USER, ack)
    assert result["text"].endswith("<pre>hello</pre>") and " say done in " in result["text"]
    assert result["reply_to"] == message_id and result["parse_mode"] == "HTML"
    assert fake.recorded("action", lambda d: d["chat_id"] == USER), "no typing indicator while the job ran"

    group_message, ack = ask(fake, GROUP, USER, "@podbot_test_bot df /", "supergroup")
    result = result_of(fake, GROUP, ack)
    assert result["text"].endswith(" df /</pre>") and result["reply_to"] == group_message


def test_commands_are_registered_and_answered(telegram, fake: FakeTelegram) -> None:
    names = [c["command"] for c in fake.wait_for("commands")[0]["commands"]]
    assert names[:5] == ["help", "skills", "whoami", "jobs", "job"] and {"say", "disk_usage", "probe"} <= set(names)

    _, ack = ask(fake, OPERATOR, OPERATOR, "/say from a command")
    assert result_of(fake, OPERATOR, ack)["text"].endswith("<pre>from a command</pre>")
    _, answer = ask(fake, ADMIN, ADMIN, "/jobs all")
    assert answer["text"].startswith("Latest ") and f"telegram:{OPERATOR}" in answer["text"]
    _, answer = ask(fake, GROUP, ADMIN, f"/whoami@{BOT['username']}", "group")
    assert answer["text"].startswith(f"You are telegram:{ADMIN} (User{ADMIN}); roles: admin")


def test_a_user_without_the_role_is_denied(telegram, fake: FakeTelegram) -> None:
    _, answer = ask(fake, USER, USER, "/probe script=id")
    assert answer["text"].startswith("Denied: probe needs the role admin, operator; you have user.")


def test_groups_answer_only_mentions_commands_and_replies_to_the_bot(telegram, fake: FakeTelegram) -> None:
    chat = GROUP - 1
    ignored = [fake.message(chat, USER, "say not for the bot", "group"), fake.message(chat, USER, "/help@other_bot", "group")]
    _, answer = ask(fake, chat, USER, "say to the bot", "group", reply_to_bot=True)
    assert "queued: say text=to the bot" in answer["text"]
    # Updates are handled in order, so the earlier messages have been seen and passed over.
    assert not fake.recorded("send", lambda d: d["reply_to"] in ignored)

    _, answer = ask(fake, USER + 1, USER, "whoami please")  # private chat: anything goes to the pipeline
    assert answer["text"].startswith("I don't know how to do that.")


def test_long_output_is_split_on_lines_in_escaped_blocks(telegram, fake: FakeTelegram) -> None:
    script = 'for i in $(seq 1 900); do echo "line $i <b>&amp;</b> @everyone"; done'
    bot, _ = telegram
    bot.runner.script(
        ["sh", "-c", script], Scripted(output="".join(f"line {i} <b>&amp;</b> @everyone\n" for i in range(1, 901)), delay=RUN_TIME)
    )
    _, ack = ask(fake, OPERATOR, OPERATOR, f"/probe script='{script}'")
    job = re.match(r"job (\d+)", ack["text"]).group(1)
    first = result_of(fake, OPERATOR, ack)
    fake.wait_for("send", lambda d: d["chat_id"] == OPERATOR and "line 900 " in d["text"])
    parts = fake.recorded("send", lambda d: d["chat_id"] == OPERATOR)
    parts = parts[parts.index(first) :]
    blocks = []
    for part in parts:
        assert len(part["text"]) <= 4096
        found = re.findall(r"<pre>(.*?)</pre>", part["text"], re.S)
        if not found:
            break
        blocks += found
    assert len(blocks) > 2, "900 lines should not fit one message"
    lines = html.unescape("\n".join(blocks)).split("\n")
    assert lines == [f"line {i} <b>&amp;</b> @everyone" for i in range(1, 901)], f"job {job}: lines lost, cut or reordered"


def test_replies_wait_out_refusals_and_arrive_in_order(telegram, fake: FakeTelegram) -> None:
    chat = OPERATOR + 1
    fake.refuse(1.5, 429)
    for word in ("one", "two", "three"):
        fake.message(chat, OPERATOR, f"say {word}")
    fake.wait_for("send", lambda d: d["chat_id"] == chat and "done in" in d["text"], count=3)
    fake.refuse(1.0, 500)
    fake.message(chat, OPERATOR, "say four")
    fake.wait_for("send", lambda d: d["chat_id"] == chat and "<pre>four</pre>" in d["text"])
    texts = [d["text"] for d in fake.sent(chat)]
    assert_sent_once_in_order(texts, ["one", "two", "three", "four"])


def test_a_bad_token_is_a_clear_error_that_never_shows_the_token(fake: FakeTelegram, caplog) -> None:
    adapter = TelegramAdapter(TelegramSettings(base_url=fake.base_url), "7000:wrong-token-0123456789")
    bot = make_bot(config.load(environ={"PODBOT_DATA_DIR": tempfile.mkdtemp(prefix="podbot-badtoken-")}), FakeRunner())
    with caplog.at_level(logging.INFO):
        adapter.start(bot)
        assert adapter.finished.wait(WAIT)
    assert adapter.error == "Telegram rejected the bot token (TELEGRAM_BOT_TOKEN); ask @BotFather for a valid one"
    assert "wrong-token-0123456789" not in caplog.text
    assert f"telegram: {adapter.error}; this adapter is off until podbot restarts" in caplog.text
    with pytest.raises(ConnectionError, match="telegram is not connected: Telegram rejected"):
        adapter.send(Reply("telegram:1", "hello"))


def test_webhook_mode_takes_updates_that_carry_the_secret(fake: FakeTelegram, tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/hook"
    settings = TelegramSettings(
        base_url=fake.base_url, mode="webhook", webhook_url=url, webhook_listen="127.0.0.1", webhook_port=port, webhook_path="hook"
    )
    adapter = TelegramAdapter(settings, TOKEN, "webhook-secret-123")
    bot = make_bot(config.load(environ={"PODBOT_DATA_DIR": str(tmp_path / "data")}), FakeRunner())
    bot.add_adapter(adapter)
    bot.start(0)
    adapter.start(bot)
    try:
        assert adapter.connected.wait(WAIT), adapter.error
        assert fake.wait_for("webhook")[0]["url"] == url
        chat = 4242
        update = {"update_id": 1, "message": {"message_id": 5, "date": 0, "chat": {"id": chat, "type": "private"}, "text": "/whoami"}}
        update["message"]["from"] = {"id": chat, "is_bot": False, "first_name": "Hook"}
        update["message"]["entities"] = [{"type": "bot_command", "offset": 0, "length": 7}]
        assert post_json(url, update, {"X-Telegram-Bot-Api-Secret-Token": "wrong"}) == 403
        assert post_json(url, update, {"X-Telegram-Bot-Api-Secret-Token": "webhook-secret-123"}) == 200
        [answer] = fake.wait_for("send", lambda d: d["chat_id"] == chat)
        assert answer["text"].startswith(f"You are telegram:{chat} (Hook)")
    finally:
        adapter.stop()
        bot.stop()


def post_json(url: str, body: dict, headers: dict) -> int:
    request = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json", **headers}, method="POST")
    try:
        with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(request, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
