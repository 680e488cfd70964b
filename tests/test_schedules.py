"""Cron schedules on an injected clock: fires, fallbacks, catch-up across a restart, pause/resume.

The first test runs a fire in a real container; the others use the FakeRunner.
"""

from __future__ import annotations

import datetime as dt
import math
import time
from pathlib import Path

import pytest

from bot import cron
from bot.flow import JobState
from bot.store import audit, ledger, schedules
from tests.conftest import BOTH_ENGINES, add_manifest, probe_like, say
from tests.fake_runner import Scripted

pytestmark = BOTH_ENGINES

HOUR = 3600


def minute_mark(t: float) -> float:
    return math.floor(t / 60) * 60


def schedule(cron: str, catch_up: str = "once", identity: str = "console:olga", name: str | None = None) -> list[dict]:
    entry = {"cron": cron, "reply_to": "console:ops", "as": identity, "catch_up": catch_up}
    return [{**entry, "name": name}] if name else [entry]


def test_a_fired_schedule_runs_in_a_real_container(bot_factory, tmp_path: Path) -> None:
    add_manifest(tmp_path, probe_like("heartbeat", "echo beat", schedule=schedule("* * * * *")))
    bot, recorder = bot_factory(2, schedules=False)
    t0 = minute_mark(time.time()) + 30
    assert bot.scheduler.tick(t0) == []
    [beat] = bot.scheduler.tick(t0 + 60)
    result = recorder.result(beat.job_id)
    assert result.conversation == "console:ops" and result.code == "beat\n"
    assert ledger.get(bot.db, beat.job_id).requester == "console:olga"


def test_every_minute_fires_once_per_minute_and_fails_over(fake_factory, tmp_path: Path) -> None:
    add_manifest(tmp_path, probe_like("heartbeat", "echo beat", schedule=schedule("* * * * *")))
    add_manifest(tmp_path, probe_like("broken", "echo boom; exit 3", fallback="send_alert", schedule=schedule("* * * * *")))
    bot, recorder = fake_factory(2, schedules=False)
    bot.runner.script("heartbeat", Scripted(output="beat\n"))
    bot.runner.script("broken", Scripted(exit_code=3, output="boom\n"))
    t0 = minute_mark(time.time()) + 30
    assert bot.scheduler.tick(t0) == []  # first sight: remembered, nothing missed
    fired = bot.scheduler.tick(t0 + 60)
    assert sorted(f.schedule for f in fired) == ["broken", "heartbeat"]
    assert bot.scheduler.tick(t0 + 61) == []  # same minute: nothing again
    beat = next(f for f in fired if f.schedule == "heartbeat")
    result = recorder.result(beat.job_id)
    assert result.conversation == "console:ops" and result.code == "beat\n"
    job = ledger.get(bot.db, beat.job_id)
    assert job.requester == "console:olga"
    alert = recorder.wait_for(lambda r: r.conversation == "console:alerts", "the fallback's alert")[0]
    assert "broken failed (exit 3): boom" in alert.code
    broken = next(f for f in fired if f.schedule == "broken")
    [fallback] = bot.runner.runs_of("send_alert")
    assert fallback.env["PODBOT_FAILED_SKILL"] == "broken" and fallback.env["PODBOT_FAILED_EXIT"] == "3"
    assert fallback.argv[-1].startswith(f"ALERT: job {broken.job_id} broken failed (exit 3): boom")
    assert [len(bot.runner.runs_of(name)) for name in ("heartbeat", "broken")] == [1, 1]


def test_schedule_identity_is_checked_like_a_person(fake_factory, tmp_path: Path) -> None:
    add_manifest(tmp_path, probe_like("sneaky", "echo hi", schedule=schedule("* * * * *", identity="console:uma")))
    bot, recorder = fake_factory(0, schedules=False)
    t0 = minute_mark(time.time()) + 30
    bot.scheduler.tick(t0)
    [fired] = bot.scheduler.tick(t0 + 60)
    assert fired.job_id is None
    denied = recorder.wait_for(lambda r: r.conversation == "console:ops", "the denial")[0]
    assert denied.text == "Schedule sneaky did not run sneaky: console:uma lacks the role operator."
    assert any(e.event == "denied" and e.skill == "sneaky" for e in audit.latest(bot.db, 20))


def test_catch_up_policies_across_a_restart(fake_factory, tmp_path: Path) -> None:
    for policy in ("skip", "once", "all"):
        add_manifest(tmp_path, probe_like(f"hourly_{policy}", "true", schedule=schedule("0 * * * *", policy)))
    first, _ = fake_factory(0, schedules=False)
    t0 = math.floor(time.time() / HOUR) * HOUR + 30  # half a minute past an hour mark
    first.scheduler.tick(t0)
    first.stop()
    restarted, _ = fake_factory(0, schedules=False)  # same data dir: schedules remember their last fire
    fired = restarted.scheduler.tick(t0 + 3 * HOUR + 30 * 60)
    counts = {name: sum(1 for f in fired if f.schedule == name) for name in ("hourly_skip", "hourly_once", "hourly_all")}
    assert counts == {"hourly_skip": 0, "hourly_once": 1, "hourly_all": 3}
    assert all(ledger.get(restarted.db, f.job_id).state == JobState.QUEUED for f in fired)


def test_schedules_command_pause_and_resume(fake_factory, tmp_path: Path) -> None:
    add_manifest(tmp_path, probe_like("nightly", "true", schedule=schedule("30 2 * * *", name="nightly-report")))
    bot, _ = fake_factory(0, schedules=False)
    [listing] = say(bot, "ada", "/schedules")
    assert listing.text == "1 schedules:" and listing.code.startswith("nightly-report — nightly — 30 2 * * * — next ")
    [paused] = say(bot, "ada", "/schedules pause nightly-report")
    assert paused.text == "Schedule nightly-report paused."
    assert "— paused" in say(bot, "ada", "/schedules")[0].code
    t0 = time.time()
    assert bot.scheduler.tick(t0 + 2 * 86400) == []
    assert say(bot, "ada", "/schedules resume nightly-report")[0].text == "Schedule nightly-report resumed."
    # Two 02:30 runs fell in the two paused days; resuming (on the same injected clock) starts from then,
    # so catch_up "once" has nothing to run.
    schedules.set_paused(bot.db, "nightly-report", False, t0 + 2 * 86400)
    assert bot.scheduler.tick(t0 + 2 * 86400 + 30) == []
    [refused] = say(bot, "olga", "/schedules")
    assert refused.text.startswith("/schedules is for admins")


def test_cron_reads_macros_and_month_and_weekday_names() -> None:
    def fires(expr: str, *when: int) -> bool:
        return cron.parse(expr)(dt.datetime(*when))

    assert fires("0 9 * * MON-FRI", 2026, 11, 27, 9, 0) and not fires("0 9 * * mon-fri", 2026, 11, 28, 9, 0)  # a Friday, a Saturday
    assert fires("0 0 1 Jan,JUL *", 2026, 7, 1, 0, 0) and not fires("0 0 1 jan *", 2026, 8, 1, 0, 0)
    assert fires("@daily", 2026, 11, 27, 0, 0) and fires("@midnight", 2026, 11, 27, 0, 0) and not fires("@daily", 2026, 11, 27, 1, 0)
    assert fires("@hourly", 2026, 11, 27, 5, 0) and fires("@weekly", 2026, 11, 29, 0, 0)  # a Sunday
    assert fires("@monthly", 2026, 12, 1, 0, 0) and fires("@YEARLY", 2027, 1, 1, 0, 0) and fires("@annually", 2027, 1, 1, 0, 0)
    for bad, why in (
        ("@reboot", "unknown cron macro"),
        ("0 0 * * FUNDAY", "'FUNDAY' is not one of SUN"),
        ("0 0 * foo *", "'foo' is not one"),
    ):
        with pytest.raises(ValueError, match=why):
            cron.parse(bad)
