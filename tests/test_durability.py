"""Nothing lost: worker crashes, bot crashes, platform outages, retries, fallbacks, limits, cancel, cache.

The crash, outage and container-stopping tests run real containers; the job logic (retries, fallbacks,
concurrency, cancel, cache, rate limit) runs on the FakeRunner (tests.fake_runner).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from bot.errors import Undeliverable
from bot.flow import JobState, Message, Reply
from bot.store import audit, ledger, outbox
from tests.conftest import BOTH_ENGINES, REPO, WAIT, add_manifest, probe_like, run_skill, say, write_config
from tests.fake_runner import KILLED, Scripted


def wait(predicate, what: str, timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def states(bot, ids: list[int]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for job_id in ids:
        state = ledger.get(bot.db, job_id).state.value
        counts[state] = counts.get(state, 0) + 1
    return counts


def test_kill_9_worker_loses_no_job(bot_factory, tmp_path: Path, log_dir: Path) -> None:
    config_path = write_config(tmp_path, log_dir, workers=3, rate_limit={"jobs": 1000, "per": 60})
    add_manifest(tmp_path, probe_like("nap", "sleep 0.1; echo rested"))
    bot, recorder = bot_factory(0, schedules=False)
    env = {**os.environ, "PODBOT_CONFIG": str(config_path)}

    def worker() -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-m", "bot.cli", "worker"], env=env, stderr=subprocess.DEVNULL)

    # 60 jobs on SQLite; tests/test_several_hosts.py kills and stops workers among 300 on PostgreSQL.
    ids = [say(bot, "olga", "/nap")[0].job_id for _ in range(60)]
    first = worker()
    wait(lambda: states(bot, ids).get("succeeded", 0) >= 20, "the first worker to get going")
    first.send_signal(signal.SIGKILL)
    first.wait()
    at_kill = states(bot, ids)
    second = worker()
    try:
        wait(lambda: not ledger.unfinished(bot.db, ids), "every job to end", timeout=600)
        # The dead worker's last API calls may finish after recovery; the new worker's sweep removes what they left.
        wait(lambda: bot.runner.containers() == [], "no container to be left behind")
    finally:
        second.send_signal(signal.SIGINT)
        second.wait(timeout=60)
    assert at_kill.get("running", 0) + at_kill.get("queued", 0) > 0, at_kill  # the kill really cut work short
    assert states(bot, ids) == {"succeeded": 60}
    wait(lambda: bot.idle(ids), "every reply to be sent")
    results = [r.job_id for r in recorder.replies if r.job_id in ids and " queued" not in r.text]
    assert sorted(results) == sorted(ids)  # one result per job, none twice
    assert any(e.event == "recovered" or e.event == "requeued" for e in audit.latest(bot.db, 2000))


@BOTH_ENGINES
def test_bot_killed_between_send_and_mark_loses_no_reply(podman_ready, config_path: Path, tmp_path: Path) -> None:
    from bot import config
    from bot.store.database import open_database

    cfg = config.load(str(config_path), environ={})
    db = open_database(cfg.database, cfg.data_dir)
    for i in range(10):
        outbox.put(db, f"test:{i}", Reply("console", f"reply {i}"))
    sent = tmp_path / "sent.txt"
    child = [sys.executable, "-m", "tests.outbox_child", str(config_path), str(sent)]
    crashed = subprocess.run([*child, "4"], cwd=REPO, timeout=120)
    assert crashed.returncode == 9
    assert sent.read_text().splitlines() == [f"reply {i}" for i in range(4)]
    resumed = subprocess.run(child, cwd=REPO, timeout=120)
    assert resumed.returncode == 0
    # The console cannot be asked whether it showed reply 3, so it is sent again: at least once, never lost.
    assert sent.read_text().splitlines() == [f"reply {i}" for i in range(4)] + [f"reply {i}" for i in range(3, 10)]
    assert outbox.count_pending(db, ["console"]) == 0


@BOTH_ENGINES
def test_outage_every_reply_arrives_in_order(fake_running) -> None:
    # The subject is the outbox, not the container: scripted runs (the crash tests above stay on Podman).
    bot, recorder = fake_running
    recorder.refuse = True
    acks = []
    for i in range(6):
        for conversation in ("console", "console:other"):
            msg = Message("console", conversation, "console:uma", f"say {conversation} {i}", message_id=f"outage-{conversation}-{i}")
            acks.extend(r.job_id for r in bot.receive(msg))
    wait(lambda: not ledger.unfinished(bot.db, acks), "the jobs to end")
    time.sleep(1)
    assert recorder.replies == []
    pending = outbox.all_pending(bot.db)
    assert len(pending) == 24 and any(item.last_error.startswith("ConnectionError: platform unreachable") for item in pending)
    recorder.refuse = False
    wait(lambda: len(recorder.replies) == 24, "all 24 replies after the outage")
    for conversation in ("console", "console:other"):
        rows = bot.db.execute("SELECT text FROM outbox WHERE conversation = ? ORDER BY id", (conversation,)).fetchall()
        assert [r.text for r in recorder.replies if r.conversation == conversation] == [r["text"] for r in rows]


@BOTH_ENGINES
def test_retries_then_fallback_with_the_failure_as_input(fake_factory, tmp_path: Path) -> None:
    add_manifest(tmp_path, probe_like("flaky", "echo trying; exit 7", retries=2, retry_delay="100ms", fallback="send_alert"))
    bot, recorder = fake_factory(2, schedules=False)
    bot.runner.script("flaky", Scripted(exit_code=7, output="trying\n"))
    result = run_skill(bot, recorder, "olga", "/flaky")
    assert result.text == f"job {result.job_id} flaky failed with exit code 7 after 3 attempts; last lines:"
    job = ledger.get(bot.db, result.job_id)
    assert (job.state, job.attempts) == (JobState.FAILED, 3)
    alert = recorder.wait_for(lambda r: r.conversation == "console:alerts", "from the fallback")[0]
    assert alert.code.startswith(f"ALERT: job {job.id} flaky failed (exit 7): trying")
    events = [e.event for e in audit.latest(bot.db, 100) if e.job_id == job.id]
    assert events.count("retrying") == 2 and events.count("started") == 3
    assert [run.attempt for run in bot.runner.runs_of("flaky")] == [1, 2, 3]
    [fallback] = bot.runner.runs_of("send_alert")
    assert fallback.env == {
        "PODBOT_FAILED_SKILL": "flaky",
        "PODBOT_FAILED_ARGS": "{}",
        "PODBOT_FAILED_EXIT": "7",
        "PODBOT_FAILED_OUTPUT": "trying",
    }


@BOTH_ENGINES
def test_concurrency_limit_holds_across_workers(fake_factory, tmp_path: Path) -> None:
    add_manifest(tmp_path, probe_like("single", "sleep 0.5", concurrency=1))
    bot, recorder = fake_factory(3, schedules=False)
    bot.runner.script("single", Scripted(delay=0.3))
    ids = [say(bot, "olga", "/single")[0].job_id for _ in range(3)]
    for job_id in ids:
        recorder.result(job_id)
    spans = sorted((ledger.get(bot.db, i).started, ledger.get(bot.db, i).finished) for i in ids)
    assert all(spans[i][1] <= spans[i + 1][0] for i in range(2)), spans


@BOTH_ENGINES
def test_cancel_stops_the_container(running) -> None:
    bot, _ = running
    [ack] = say(bot, "ada", "/probe script='sleep 30'")
    wait(lambda: bot.runner.containers(), "the container to start")
    [reply] = say(bot, "ada", f"/cancel {ack.job_id}")
    assert reply.text == f"job {ack.job_id} cancelled and its container stopped."
    wait(lambda: not bot.runner.containers(), "the container to go")
    wait(lambda: any(e.event == "superseded" and e.job_id == ack.job_id for e in audit.latest(bot.db, 50)), "the run to end")
    assert ledger.get(bot.db, ack.job_id).state == JobState.CANCELLED


@BOTH_ENGINES
def test_cancel_ends_the_run_and_the_job_gets_no_result(fake_running) -> None:
    bot, recorder = fake_running
    bot.runner.script("probe", Scripted(output="never finished\n", delay=60))
    [other] = say(bot, "ada", "/probe script='sleep 60'")
    [ack] = say(bot, "ada", "/probe script='sleep 60'")
    wait(lambda: len(bot.runner.containers()) == 2, "both runs to start")  # both workers busy: the next job stays queued
    [waiting] = say(bot, "ada", "/probe script='sleep 60'")
    assert say(bot, "ada", f"/cancel {waiting.job_id}")[0].text == f"job {waiting.job_id} cancelled."
    [reply] = say(bot, "ada", f"/cancel {ack.job_id}")
    assert reply.text == f"job {ack.job_id} cancelled and its container stopped."
    assert ledger.get(bot.db, ack.job_id).state == JobState.CANCELLED
    assert [c.job_id for c in bot.runner.containers()] == [other.job_id]  # gone at once, the other one untouched
    wait(lambda: any(e.event == "superseded" and e.job_id == ack.job_id for e in audit.latest(bot.db, 50)), "the run to end")
    assert f"exit={KILLED}" in next(e.detail for e in audit.latest(bot.db, 50) if e.event == "superseded" and e.job_id == ack.job_id)
    [again] = say(bot, "ada", f"/cancel {ack.job_id}")
    assert again.text == f"job {ack.job_id} is cancelled; only jobs that have not ended can be cancelled."
    [refused] = say(bot, "olga", f"/cancel {ack.job_id}")
    assert refused.text == f"There is no job {ack.job_id} of yours."  # someone else's job
    say(bot, "ada", f"/cancel {other.job_id}")
    ids = [other.job_id, ack.job_id, waiting.job_id]
    wait(lambda: not ledger.unfinished(bot.db, ids) and bot.idle(ids), "every job to end and every reply to be sent")
    ends = [r.text for r in recorder.replies if r.job_id in ids and r.text.startswith(f"job {r.job_id} probe ")]
    assert [text for text in ends if " queued" not in text] == []  # no "done" or "failed" for a cancelled job
    assert sorted(run.job_id for run in bot.runner.runs) == [other.job_id, ack.job_id]  # the cancelled queued job never ran


@BOTH_ENGINES
def test_cache_answers_from_the_ledger(fake_factory, tmp_path: Path) -> None:
    add_manifest(tmp_path, probe_like("slowfact", "echo fact", cache="60s"))
    bot, recorder = fake_factory(2, schedules=False)
    bot.runner.script("slowfact", Scripted(output="fact\n"))
    first = run_skill(bot, recorder, "olga", "/slowfact")
    [second] = say(bot, "olga", "/slowfact")
    assert second.text.startswith(f"slowfact: from job {first.job_id}, ") and second.text.endswith("(cached, no new run)")
    assert second.code == "fact\n" and second.job_id is None
    assert len(bot.runner.runs_of("slowfact")) == 1


@BOTH_ENGINES
def test_rate_limit_says_slow_down(fake_factory, tmp_path: Path, log_dir: Path, database: str | None) -> None:
    write_config(tmp_path, log_dir, rate_limit={"jobs": 2, "per": 60}, database=database)
    bot, _ = fake_factory(0, schedules=False)
    say(bot, "uma", "say 1")
    say(bot, "uma", "say 2")
    [reply] = say(bot, "uma", "say 3")
    assert reply.text == "Slow down: you started 2 jobs in the last 60 s (limit 2). Try again shortly."
    assert say(bot, "olga", "say 1")[0].job_id is not None


def test_a_long_backlog_in_one_conversation_does_not_hide_others(tmp_path: Path) -> None:
    from bot.store.database import SqliteDatabase

    db = SqliteDatabase(tmp_path / "podbot.db")
    for i in range(600):
        outbox.put(db, f"a:{i}", Reply("console:a", f"a {i}"))
    outbox.put(db, "b:0", Reply("console:b", "b 0"))
    outbox.mark_failed(db, outbox.pending(db, ["console"])[0], ConnectionError("down"))
    sent: list[Reply] = []
    assert outbox.deliver(db, {"console": sent.append}) == 1
    assert [r.text for r in sent] == ["b 0"]


def test_an_undeliverable_reply_is_given_up_not_retried_forever(tmp_path: Path) -> None:
    from bot.store.database import SqliteDatabase

    db = SqliteDatabase(tmp_path / "podbot.db")
    outbox.put(db, "gone:0", Reply("console:gone", "to a deleted chat"))
    outbox.put(db, "gone:1", Reply("console:gone", "next"))
    sent: list[str] = []

    def send(reply: Reply) -> None:
        if reply.text == "to a deleted chat":
            raise Undeliverable("chat not found")
        sent.append(reply.text)

    assert outbox.deliver(db, {"console": send}) == 1
    assert sent == ["next"] and outbox.count_pending(db, ["console"]) == 0
    row = db.execute("SELECT last_error FROM outbox WHERE key = 'gone:0'").fetchone()
    assert row["last_error"] == "undeliverable: chat not found"
