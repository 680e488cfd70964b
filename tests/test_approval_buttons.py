"""Approval buttons on each platform, with the real SDK against its fake server (tests/fake_*.py).

A press says `/approve ID` or `/deny ID` as the person who pressed it; a payload podbot never made is
ignored with a log line. Skills run on the FakeRunner (tests.fake_runner): the subject is the button.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest

from bot.flow import JobState
from bot.store import ledger
from tests.conftest import add_manifest, platform_session
from tests.fake_runner import FakeRunner
from tests.fake_telegram import FakeTelegram
from tests.test_approvals import RISKY

pytestmark = pytest.mark.usefixtures("quiet_proxies")


@pytest.fixture
def quiet_proxies(monkeypatch) -> None:
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)


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
