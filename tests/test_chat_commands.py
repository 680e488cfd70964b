"""Chat commands for people and scripts: /help SKILL, /cancel of your own job, /roles and /grants, /schedules run.

All on the FakeRunner (tests.fake_runner): the subject is the command, not the container.
"""

from __future__ import annotations

from pathlib import Path

from bot.flow import JobState
from bot.store import audit, ledger
from tests.conftest import add_manifest, probe_like, say
from tests.fake_runner import Scripted


def test_help_skill_explains_arguments_examples_and_who(fake_running) -> None:
    bot, _ = fake_running
    [reply] = say(bot, "uma", "/help say")
    assert reply.text == "say — Repeat a text back; handy to check the bot and its containers work."
    lines = reply.code.splitlines()
    assert lines[:8] == [
        "Usage: /say text=…",
        "Arguments:",
        "  text (string, required) — what to say",
        "Examples:",
        "  say hello",
        "  echo good morning",
        "  repeat this: coffee is ready",
        "  please say the words all systems go",
    ]  # then the examples in other languages
    assert "  sag hallo zusammen" in lines and lines[-1] == "Who may run it: operator, user, and admins (admin)"
    [disk] = say(bot, "uma", "/help disk_usage")
    assert '  path (string, default "/", pattern ^/$|^(/[A-Za-z0-9_][A-Za-z0-9_.-]*)+/?$) — an absolute path such as / or /var' in disk.code
    # Someone who may not run a skill learns who may, not its arguments.
    [denied] = say(bot, "uma", "/help probe")
    assert denied.text == "probe needs the role admin, operator; you have user." and denied.code is None
    assert say(bot, "uma", "/help jobs")[0].text == "/jobs [all|failed] — your latest jobs (admins: all, or all failed)"
    assert say(bot, "uma", "/help nope")[0].text.startswith("There is no skill or command nope;")
    assert say(bot, "uma", "/help say\nmore")[0].text == "usage: /help [SKILL or COMMAND]"


def test_cancel_your_own_job_not_someone_elses(fake_running) -> None:
    bot, _ = fake_running
    bot.runner.script("say", Scripted(delay=60))
    [queued] = say(bot, "uma", "/say slow")
    job_id = queued.job_id
    assert say(bot, "olga", f"/cancel {job_id}")[0].text == f"There is no job {job_id} of yours."
    assert ledger.get(bot.db, job_id).state in (JobState.QUEUED, JobState.RUNNING)
    assert say(bot, "uma", f"/cancel {job_id}")[0].text.startswith(f"job {job_id} cancelled")
    assert ledger.get(bot.db, job_id).state == JobState.CANCELLED
    assert say(bot, "uma", f"/cancel {job_id}")[0].text == f"job {job_id} is cancelled; only jobs that have not ended can be cancelled."
    [other] = say(bot, "olga", "/say also slow")
    assert say(bot, "ada", f"/cancel {other.job_id}")[0].text.startswith(f"job {other.job_id} cancelled")
    assert sorted(e.actor for e in audit.latest(bot.db, 50) if e.event == "cancelled") == ["console:ada", "console:uma"]


def test_roles_and_grants_for_admins(fake_running) -> None:
    bot, _ = fake_running
    assert say(bot, "ada", "/grants")[0].text == "No granted roles; /grant IDENTITY ROLE adds one."
    say(bot, "ada", "/grant console:uma operator")
    [roles] = say(bot, "ada", "/roles")
    assert roles.text == "3 roles:"
    assert roles.code.splitlines() == [
        "admin [admin]: console:ada (podbot.yaml)",
        "operator: console:olga (podbot.yaml), console:uma (granted)",
        "user: everyone (default role)",
    ]
    [granted] = say(bot, "ada", "/grants")
    assert granted.text == "1 granted roles:" and granted.code.startswith("console:uma operator — by console:ada, ")


def test_schedules_run_now_as_the_entrys_identity(fake_factory, tmp_path: Path) -> None:
    entry = {"cron": "0 3 * * MON-FRI", "reply_to": "console:ops", "as": "console:olga", "name": "nightly"}
    add_manifest(tmp_path, probe_like("nightly_job", "echo night", schedule=[entry]))
    add_manifest(tmp_path, probe_like("sneaky", "echo hi", schedule=[{**entry, "as": "console:uma", "name": "sneaky"}]))
    bot, recorder = fake_factory(2, schedules=False)
    bot.runner.script("nightly_job", Scripted(output="night\n"))
    [ran] = say(bot, "ada", "/schedules run nightly")
    assert ran.text == f"job {ran.job_id} queued: nightly_job (schedule nightly, as console:olga); the result goes to console:ops"
    result = recorder.result(ran.job_id)
    assert result.conversation == "console:ops" and result.code == "night\n"
    assert ledger.get(bot.db, ran.job_id).requester == "console:olga"
    [denied] = say(bot, "ada", "/schedules run sneaky")
    assert denied.text == "Schedule sneaky did not run sneaky: console:uma lacks the role operator."
    assert say(bot, "ada", "/schedules run nope")[0].text == "There is no schedule nope; /schedules lists them."
    events = [(e.event, e.detail) for e in audit.latest(bot.db, 20)]
    assert ("schedule_run", "nightly as console:olga") in events and (
        "denied",
        "schedule sneaky: console:uma lacks the role operator",
    ) in events
    assert bot.runner.runs_of("sneaky") == []
