"""Approval buttons on each platform, with the real SDK against its fake server (tests/fake_*.py).

A press says `/approve ID` or `/deny ID` as the person who pressed it; a payload podbot never made is
ignored with a log line. Skills run on the FakeRunner (tests.fake_runner): the subject is the button.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from bot.flow import JobState
from bot.store import ledger
from tests.conftest import add_manifest, platform_session
from tests.fake_discord import CHANNEL, FakeDiscord
from tests.fake_runner import FakeRunner
from tests.fake_slack import TEAM, FakeSlack
from tests.fake_telegram import FakeTelegram
from tests.test_approvals import RISKY


def awaiting_job(text: str) -> int:
    found = re.match(r"job (\d+) awaits approval by admin", text)
    assert found, text
    return int(found.group(1))


def test_telegram_inline_keyboard(tmp_path: Path, caplog) -> None:
    token, admin, operator, group = "7000:AAF-test-token-for-the-fake-api", 900, 111, -100500
    add_manifest(tmp_path, RISKY)
    fake = FakeTelegram(token).start()
    platforms = {"telegram": {"base_url": fake.base_url, "base_file_url": f"{fake.url}/file/bot", "poll_timeout": 1}}
    roles = {"admin": [f"telegram:{admin}"], "operator": [f"telegram:{operator}"]}
    try:
        with platform_session(tmp_path, roles, platforms, {"TELEGRAM_BOT_TOKEN": token}, FakeRunner()) as (bot, _):
            fake.message(group, operator, "/risky", "supergroup")
            [notice] = fake.wait_for("send", lambda d: d["chat_id"] == group and "awaits approval" in d["text"])
            job_id = awaiting_job(notice["text"])
            assert notice["buttons"] == [["Approve", f"/approve {job_id}"], ["Deny", f"/deny {job_id}"]]
            with caplog.at_level(logging.WARNING, logger="adapters.telegram"):
                forged = fake.button(group, admin, "/reload")
                fake.wait_for("answer", lambda d: d["id"] == forged)
            assert "ignored a button press with an unknown payload '/reload'" in caplog.text
            pressed = fake.button(group, operator, f"/approve {job_id}")  # the requester has no approving role
            fake.wait_for("answer", lambda d: d["id"] == pressed)
            fake.wait_for("send", lambda d: d["chat_id"] == group and d["text"].startswith(f"Deciding job {job_id} needs the role admin"))
            fake.button(group, admin, f"/approve {job_id}")
            fake.wait_for("send", lambda d: d["chat_id"] == group and d["text"] == f"job {job_id} approved; queued: risky")
            fake.wait_for("send", lambda d: d["chat_id"] == group and d["text"].startswith(f"job {job_id} risky done in "))
            assert ledger.get(bot.db, job_id).state == JobState.SUCCEEDED
    finally:
        fake.stop()


def test_slack_block_kit_buttons(tmp_path: Path, caplog) -> None:
    bot_token, app_token, admin, operator, channel = "xoxb-1-test-bot-token", "xapp-1-test-app-token", "U0ADMIN", "U0OPER", "C0OPS"
    add_manifest(tmp_path, RISKY)
    fake = FakeSlack(bot_token, app_token).start()
    roles = {"admin": [f"slack:{TEAM}:{admin}"], "operator": [f"slack:{TEAM}:{operator}"]}
    environ = {"SLACK_BOT_TOKEN": bot_token, "SLACK_APP_TOKEN": app_token}
    try:
        with platform_session(tmp_path, roles, {"slack": {"api_base_url": fake.api_url}}, environ, FakeRunner()) as (bot, _):
            asked = fake.send_event(fake.message(channel, operator, "<@U0PODBOT> /risky"))
            [notice] = fake.wait_for("post", lambda d: d["channel"] == channel and "awaits approval" in d["text"])
            job_id = awaiting_job(notice["text"])
            assert notice["buttons"] == [["Approve", f"/approve {job_id}"], ["Deny", f"/deny {job_id}"]]
            with caplog.at_level(logging.WARNING, logger="adapters.slack"):
                fake.press(channel, admin, "/grant slack:T0ACME:U0OPER admin")
                fake.press(channel, admin, {"not": "a string"})
            assert caplog.text.count("slack: ignored a button press with an unknown payload") == 2
            fake.press(channel, admin, f"/deny {job_id}", message_ts=asked["ts"])
            [denied] = fake.wait_for("post", lambda d: d["text"] == f"job {job_id} denied: risky")
            assert denied["thread_ts"] == asked["ts"]
            job = ledger.get(bot.db, job_id)
            assert (job.state, job.output) == (JobState.DENIED, f"denied by slack:{TEAM}:{admin}")
            assert bot.runner.runs == []
    finally:
        fake.stop()


def test_discord_component_buttons(tmp_path: Path, caplog) -> None:
    token, admin, operator = "discord-test-token", 900, 111
    add_manifest(tmp_path, RISKY)
    fake = FakeDiscord(token).start()
    platforms = {"discord": {"api_base_url": fake.api_url, "gateway_url": fake.gateway_url}}
    roles = {"admin": [f"discord:{admin}"], "operator": [f"discord:{operator}"]}
    try:
        with platform_session(tmp_path, roles, platforms, {"DISCORD_BOT_TOKEN": token}, FakeRunner()) as (bot, _):
            fake.message(CHANNEL, operator, "/risky", mention=True)
            [notice] = fake.wait_for("message", lambda d: "awaits approval" in d["content"])
            job_id = awaiting_job(notice["content"])
            assert notice["buttons"] == [["Approve", f"/approve {job_id}"], ["Deny", f"/deny {job_id}"]]
            with caplog.at_level(logging.WARNING, logger="adapters.discord"):
                forged = fake.press(CHANNEL, admin, "/approve 1; rm -rf /")
                fake.wait_for("callback", lambda d: d["id"] == forged)
            assert "discord: ignored a button press with an unknown payload '/approve 1; rm -rf /'" in caplog.text
            pressed = fake.press(CHANNEL, admin, f"/approve {job_id}")
            assert fake.wait_for("callback", lambda d: d["id"] == pressed)[0]["type"] == 6  # deferred update: no new message
            fake.wait_for("message", lambda d: d["content"] == f"job {job_id} approved; queued: risky")
            fake.wait_for("message", lambda d: d["content"].startswith(f"job {job_id} risky done in "))
            assert ledger.get(bot.db, job_id).state == JobState.SUCCEEDED
            token = fake.slash(CHANNEL, operator, "risky")  # a slash command's notice is a follow-up, buttons and all
            [followup] = fake.wait_for("followup", lambda d: d["token"] == token and "awaits approval" in d["content"])
            second = awaiting_job(followup["content"])
            assert followup["buttons"] == [["Approve", f"/approve {second}"], ["Deny", f"/deny {second}"]]
            fake.press(CHANNEL, admin, f"/deny {second}")
            fake.wait_for("message", lambda d: d["content"] == f"job {second} denied: risky")
    finally:
        fake.stop()
