"""Approvals: a skill with `approval:` waits in the ledger until someone with an approving role decides.

The decisions run on the FakeRunner (tests.fake_runner); `test_approval_survives_restarts_and_runs_in_podman`
drives real `podbot chat` processes (the bot really stops while the job waits) and a real container, and
`podbot manifests test` approves its cases' runs in real containers too.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

from bot import config, skill_tests
from bot.flow import JobState
from bot.store import audit, ledger, outbox
from bot.store.database import open_database
from tests.conftest import add_manifest, cli, probe_like, say, write_config
from tests.test_durability import wait

RISKY = probe_like("risky", "echo risky ran", approval={"roles": ["admin"], "timeout": "30m"})


def ended(recorder, job_id: int) -> str:
    """The text of the reply that reports the job's run (not its approval notices)."""
    return recorder.wait_for(lambda r: r.job_id == job_id and " done in " in r.text, f"job {job_id} to run")[0].text


def entries(bot, job_id: int) -> list[tuple[str, str]]:
    return [(e.actor, e.event) for e in audit.latest(bot.db, 200) if e.job_id == job_id and e.event != "command"]


def test_approved_job_waits_then_runs(fake_factory, tmp_path: Path) -> None:
    add_manifest(tmp_path, RISKY)
    bot, recorder = fake_factory(2, schedules=False)
    [ack, notice] = say(bot, "olga", "/risky")
    job_id = ack.job_id
    assert re.fullmatch(
        rf"job {job_id} awaits approval by admin until \d\d:\d\d:\d\d: risky — /approve {job_id} or /deny {job_id} \[reason\]", ack.text
    )
    assert [a.command for a in ack.actions] == [f"/approve {job_id}", f"/deny {job_id}"]
    assert notice.conversation == "console:alerts" and notice.text.startswith(f"console:olga asks to run job {job_id} risky; admin:")
    assert ledger.get(bot.db, job_id).state == JobState.AWAITING_APPROVAL
    assert bot.queue.pending() == 0  # not in the queue until approved
    [jobs] = say(bot, "olga", "/jobs")
    assert f"job {job_id} awaiting_approval — risky" in jobs.code
    [detail] = say(bot, "olga", f"/job {job_id}")
    assert "awaits approval by admin until" in detail.text

    [refused] = say(bot, "uma", f"/approve {job_id}")
    assert refused.text == f"Deciding job {job_id} needs the role admin; you have user."
    [refused] = say(bot, "olga", f"/approve {job_id}")
    assert refused.text == f"Deciding job {job_id} needs the role admin; you have operator, user."
    assert ledger.get(bot.db, job_id).state == JobState.AWAITING_APPROVAL

    [approved] = say(bot, "ada", f"/approve {job_id}")
    assert approved.text == f"job {job_id} approved; queued: risky"
    assert ended(recorder, job_id).startswith(f"job {job_id} risky done in ")
    [again] = say(bot, "ada", f"/approve {job_id}")
    assert again.text.startswith(f"job {job_id} is ") and "by console:ada; there is nothing left to decide." in again.text
    [detail] = say(bot, "olga", f"/job {job_id}")
    assert detail.text.endswith("; approved by console:ada")
    assert entries(bot, job_id) == [
        ("console:olga", "awaiting_approval"),
        ("console:uma", "approval_refused"),
        ("console:olga", "approval_refused"),
        ("console:ada", "approved"),
        ("console:olga", "started"),
        ("console:olga", "finished"),
        ("console:ada", "approval_refused"),
    ]


def test_denied_self_approval_unknown_and_cancel(fake_factory, tmp_path: Path) -> None:
    add_manifest(tmp_path, RISKY)
    bot, recorder = fake_factory(2, schedules=False)
    mine = say(bot, "ada", "/risky")[0].job_id
    [refused] = say(bot, "ada", f"/approve {mine}")
    assert refused.text == f"You asked for job {mine}; someone else with the role admin must decide."
    theirs = say(bot, "olga", "/risky")[0].job_id
    [denied] = say(bot, "ada", f"/deny {theirs} not during the freeze")
    assert denied.text == f"job {theirs} denied: risky: not during the freeze"
    job = ledger.get(bot.db, theirs)
    assert (job.state, job.output, job.started) == (JobState.DENIED, "not during the freeze", None)
    assert ("console:ada", "approval_denied") in entries(bot, theirs)
    [cancelled] = say(bot, "ada", f"/cancel {mine}")
    assert cancelled.text == f"job {mine} cancelled."
    [late] = say(bot, "ada", f"/approve {mine}")
    assert late.text == f"job {mine} is cancelled; there is nothing left to decide."
    [unknown] = say(bot, "ada", "/approve 999")
    assert unknown.text == "There is no job 999 awaiting approval."
    [bad] = say(bot, "ada", "/deny x")
    assert bad.text.startswith("expected a number from 1 to ")
    assert [e.event for e in audit.latest(bot.db, 3)] == ["approval_refused", "approval_refused", "invalid_arguments"]
    assert bot.runner.runs == []  # nothing ever ran


def test_self_approval_when_the_manifest_allows_it(fake_factory, tmp_path: Path) -> None:
    add_manifest(tmp_path, probe_like("own", "echo own", approval={"roles": ["operator"], "self_approve": True, "notify": "alerts"}))
    bot, recorder = fake_factory(2, schedules=False)
    [ack, notice] = say(bot, "olga", "/own")
    assert notice.conversation == "console:alerts"
    [approved] = say(bot, "olga", f"/approve {ack.job_id}")
    assert approved.text == f"job {ack.job_id} approved; queued: own"
    assert ended(recorder, ack.job_id).startswith(f"job {ack.job_id} own done in ")


def test_no_answer_in_time_is_a_denial(fake_factory, tmp_path: Path) -> None:
    add_manifest(tmp_path, probe_like("hasty", "echo hasty", approval={"roles": ["admin"], "timeout": "1s", "notify": "console:approvers"}))
    bot, recorder = fake_factory(2, schedules=False)
    [ack, notice] = say(bot, "olga", "/hasty")
    assert ack.actions == () and "— /approve" not in ack.text  # approvers are told elsewhere
    assert notice.conversation == "console:approvers" and len(notice.actions) == 2
    [told] = recorder.wait_for(lambda r: "in time" in r.text, "the denial for lack of an answer")
    assert told.text == f"job {ack.job_id} hasty denied: nobody approved it in time."
    assert ledger.get(bot.db, ack.job_id).state == JobState.DENIED
    assert ("podbot:approval-timeout", "approval_expired") in entries(bot, ack.job_id)


def test_scheduled_run_waits_for_approval(fake_factory, tmp_path: Path) -> None:
    schedule = [{"cron": "* * * * *", "reply_to": "console:ops", "as": "console:olga"}]
    add_manifest(tmp_path, {**RISKY, "schedule": schedule})
    bot, recorder = fake_factory(2, schedules=False)
    t0 = 1_800_000_000.0
    bot.scheduler.tick(t0)
    [fired] = bot.scheduler.tick(t0 + 60)
    job = ledger.get(bot.db, fired.job_id)
    assert (job.state, job.requester, job.conversation) == (JobState.AWAITING_APPROVAL, "console:olga", "console:ops")
    recorder.wait_for(lambda r: r.conversation == "console:ops" and "awaits approval by admin" in r.text, "the schedule's notice")
    say(bot, "ada", f"/approve {job.id}")
    assert ended(recorder, job.id).startswith(f"job {job.id} risky done")


def test_validate_warns_of_an_approving_role_nobody_has(tmp_path: Path, log_dir: Path) -> None:
    config_path = write_config(tmp_path, log_dir)
    add_manifest(tmp_path, probe_like("orphan", "true", approval={"roles": ["admin", "release_manager"]}))
    done = cli("manifests", "validate", env={**os.environ, "PODBOT_CONFIG": str(config_path)})
    assert done.returncode == 0, done.stderr
    file = tmp_path / "extra-manifests" / "orphan.yaml"
    [warning] = [line for line in done.stdout.splitlines() if "release_manager" in line]
    assert re.fullmatch(rf"{re.escape(str(file))}:\d+:\d+: warning: nobody has the role 'release_manager' .*", warning)
    assert "'admin'" not in done.stdout


def test_approval_survives_restarts_and_runs_in_podman(podman_ready, tmp_path: Path, log_dir: Path) -> None:
    config_path = write_config(tmp_path, log_dir)
    add_manifest(tmp_path, RISKY)
    add_manifest(tmp_path, probe_like("hasty", "echo hasty", approval={"roles": ["admin"], "timeout": "1s"}))
    env = {**os.environ, "PODBOT_CONFIG": str(config_path)}
    asked = cli("chat", "--user", "olga", env=env, stdin="/risky\n/hasty\n")  # a bot process that ends while both wait
    # Jobs still waiting have not succeeded: a script is told so (exit 1, the states on stderr).
    assert asked.returncode == 1 and "job 1 awaiting_approval" in asked.stderr, asked.stderr
    assert "job 1 awaits approval by admin" in asked.stdout and "job 2 awaits approval by admin" in asked.stdout
    asked_at = time.time()
    wait(lambda: time.time() > asked_at + 1, "hasty's deadline to pass while no bot runs")
    decided = cli("chat", "--user", "ada", env=env, stdin="/approve 1\n/job 2\n")
    assert decided.returncode == 0, decided.stderr
    assert "job 1 approved; queued: risky" in decided.stdout
    assert "job 2 denied — hasty" in decided.stdout and "denied (nobody decided in time) by podbot:approval-timeout" in decided.stdout
    db = open_database(None, config.load(str(config_path), environ={}).data_dir)
    job = ledger.get(db, 1)
    assert (job.state, job.output) == (JobState.SUCCEEDED, "risky ran\n")  # from a real container
    owed = {item.reply.text: item.reply.code for item in outbox.all_pending(db) if item.reply.conversation == "console:olga"}
    assert "job 1 risky approved by console:ada; queued." in owed and "job 2 hasty denied: nobody approved it in time." in owed
    assert owed[next(text for text in owed if text.startswith("job 1 risky done in "))] == "risky ran\n"


def test_manifest_tests_approve_as_a_test_approver(podman_ready, tmp_path: Path, log_dir: Path) -> None:
    config_path = write_config(tmp_path, log_dir)
    add_manifest(tmp_path, {**RISKY, "tests": [{"say": "/risky", "skill": "risky", "output": "^risky ran"}]})
    file = tmp_path / "extra-manifests" / "risky.yaml"
    [result] = skill_tests.run(config.load(str(config_path), environ={}), [file])
    assert result.passed, result.why
