"""Several hosts on one PostgreSQL database: the workers registry, leases, one sender per platform, cron once,
skill concurrency, and jobs taken over from a dead host.

The unit tests run on both engines; the process tests run `podbot worker` and `podbot run` processes with
distinct host identities (PODBOT_HOST) and data dirs, sharing one PostgreSQL database and one Podman.
"""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from bot import config
from bot.cli import status
from bot.flow import JobState, Reply
from bot.jobs import recovery
from bot.runtime import images
from bot.runtime.runner import RunSpec
from bot.sending import LEASE, Sender
from bot.store import audit, leases, ledger, outbox, workers
from bot.store.database import Database, open_database
from tests.conftest import BOTH_ENGINES, REPO, WAIT, add_manifest, probe_like, say, write_config
from tests.fake_runner import Scripted
from tests.fake_telegram import FakeTelegram


def wait(predicate, what: str, timeout: float = WAIT, shown=lambda: "") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what} {shown()}")
        time.sleep(0.05)


def logged(path: Path, text: str) -> str:
    """A process's log once `text` appears in it."""
    wait(lambda: path.exists() and text in path.read_text(), f"{text!r} in {path}")
    return path.read_text()


def db_of(database: str | None, tmp_path: Path) -> Database:
    return open_database(database, tmp_path / "data")


def dead_pid() -> int:
    done = subprocess.Popen([sys.executable, "-c", "pass"])
    done.wait()
    return done.pid


# --- the workers registry and leases, on both engines ---


@BOTH_ENGINES
def test_the_registry_says_up_gone_or_stopped_and_forgets_after_a_day(database: str | None, tmp_path: Path) -> None:
    db = db_of(database, tmp_path)
    now = time.time()
    workers.beat(db, "host-a:10", "host-a", 10, now - 50, [3, 1], now)
    workers.beat(db, "host-b:20", "host-b", 20, now - 50, [2], now - 40)
    workers.beat(db, "host-c:30", "host-c", 30, now - 50, [], now - 5)
    workers.stop(db, "host-c:30", [], now - 4)
    found = {w.id: w for w in workers.listing(db)}
    assert [found[i].shown(now) for i in ("host-a:10", "host-b:20", "host-c:30")] == ["up", "gone (last heartbeat 40 s ago)", "stopped"]
    assert found["host-a:10"].running == (1, 3) and found["host-b:20"].running == (2,)
    workers.beat(db, "host-c:30", "host-c", 30, now, [4], now)  # the same host and pid again: a new process
    assert [w.state(now) for w in workers.listing(db) if w.id == "host-c:30"] == [workers.UP]
    assert workers.prune(db, now + workers.PRUNE_AFTER - 60) == 0
    assert workers.prune(db, now + workers.PRUNE_AFTER + 1) == 3
    assert workers.listing(db) == []


@BOTH_ENGINES
def test_a_lease_has_one_holder_until_it_runs_out_or_is_released(database: str | None, tmp_path: Path) -> None:
    db = db_of(database, tmp_path)
    now = time.time()
    assert leases.hold(db, "outbox:slack", "a", 10, now)
    assert not leases.hold(db, "outbox:slack", "b", 10, now + 5)
    assert leases.hold(db, "outbox:slack", "a", 10, now + 5)  # renewed: now until now + 15
    assert not leases.hold(db, "outbox:slack", "b", 10, now + 14)
    assert leases.hold(db, "outbox:slack", "b", 10, now + 16)  # ran out: taken over
    assert not leases.hold(db, "outbox:slack", "a", 10, now + 17)
    assert leases.current(db, "outbox:slack", now + 17) == leases.Lease("outbox:slack", "b", now + 26)
    leases.release(db, "outbox:slack", "a")  # not a's any more: nothing happens
    assert leases.current(db, "outbox:slack", now + 17) is not None
    assert not leases.take_over(db, "outbox:slack", "c", "a", 10, now + 17)
    assert leases.take_over(db, "outbox:slack", "c", "b", 10, now + 17)
    assert [lease.holder for lease in leases.held(db, "outbox:", now + 17)] == ["c"]
    leases.release(db, "outbox:slack", "c")
    assert leases.current(db, "outbox:slack", now + 17) is None
    assert leases.hold(db, "outbox:slack", "a", 10, now + 18)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@BOTH_ENGINES
def test_a_sender_whose_lease_is_past_stops_before_its_next_send(database: str | None, tmp_path: Path) -> None:
    db = db_of(database, tmp_path)
    for i in range(5):
        outbox.put(db, f"r:{i}", Reply("telegram:1", f"reply {i}"))
    clock, sent_a, sent_b = Clock(), list[str](), list[str]()

    def send_a(reply: Reply) -> None:
        sent_a.append(reply.text)
        if len(sent_a) == 2:  # a's process stops here for longer than the lease; b takes the sending over meanwhile
            clock.now += LEASE + 1
            assert leases.hold(db, "outbox:telegram", "host-b:2/1", LEASE, time.time() + LEASE + 1)

    a = Sender(db, "telegram", send_a, lambda: None, "host-a:1/1", clock)
    b = Sender(db, "telegram", lambda reply: sent_b.append(reply.text), lambda: None, "host-b:2/1")
    assert a.step() == 2 and not a.holding
    assert sent_a == ["reply 0", "reply 1"]
    assert b.step() == 3 and b.holding
    assert sent_b == ["reply 2", "reply 3", "reply 4"]
    outbox.put(db, "r:5", Reply("telegram:1", "reply 5"))
    clock.now += 10
    assert a.step() == 0 and sent_a == ["reply 0", "reply 1"]  # b holds it and renews it
    b.release()
    clock.now += 10
    assert a.step() == 1 and sent_a[-1] == "reply 5"  # released on a clean stop: taken at once


@BOTH_ENGINES
def test_the_lease_of_a_dead_process_on_this_host_is_taken_at_once(database: str | None, tmp_path: Path) -> None:
    db = db_of(database, tmp_path)
    assert leases.hold(db, "outbox:discord", f"host-a:{dead_pid()}/1", LEASE)
    assert leases.hold(db, "outbox:slack", f"host-b:{dead_pid()}/1", LEASE)  # another host's: it must run out first
    sent = []
    for platform in ("discord", "slack"):
        outbox.put(db, f"{platform}:0", Reply(f"{platform}:1", f"to {platform}"))
        Sender(db, platform, lambda reply: sent.append(reply.text), lambda: None, f"host-a:{os.getpid()}/1").step()
    assert sent == ["to discord"]


@BOTH_ENGINES
def test_a_connection_bound_sender_needs_no_lease(database: str | None, tmp_path: Path) -> None:
    db = db_of(database, tmp_path)
    assert leases.hold(db, "outbox:console", "host-b:2/1", LEASE)
    outbox.put(db, "c:0", Reply("console:ada", "mine"))
    outbox.put(db, "c:1", Reply("console:bob", "not mine"))
    sent: list[str] = []
    assert Sender(db, "console", lambda reply: sent.append(reply.text), lambda: ["console:ada"], None).step() == 1
    assert sent == ["mine"]


@BOTH_ENGINES
def test_status_shows_each_worker_and_a_silent_one_holding_jobs_is_a_problem(config_path: Path, tmp_path: Path) -> None:
    cfg = config.load(str(config_path), environ={})
    db = open_database(cfg.database, cfg.data_dir)
    now = time.time()
    held = ledger.create(db, "probe", {"script": "true"}, "console:olga", "console")
    ledger.claim(db, held.id, "host-b:20", 60)
    workers.beat(db, "host-a:10", "host-a", 10, now - 100, [], now)
    workers.beat(db, "host-b:20", "host-b", 20, now - 100, [held.id], now - 60)
    workers.beat(db, "host-c:30", "host-c", 30, now - 100, [], now - 60)
    leases.hold(db, "outbox:telegram", "host-a:10/1", LEASE)
    shown = status.report(cfg, now)
    assert [(w["id"], w["state"], w["running"], w["stranded"]) for w in shown["workers"]] == [
        ("host-a:10", "up", [], []),
        ("host-b:20", "gone", [held.id], [held.id]),
        ("host-c:30", "gone", [], []),
    ]
    assert shown["senders"] == {"telegram": "host-a:10/1"}
    assert (
        f"worker host-b:20 is gone (last heartbeat 60 s ago) while running jobs {held.id}: others take them once their leases end"
        in (shown["problems"])
    )
    assert not any("host-c" in problem for problem in shown["problems"])  # silent, but it held nothing


# --- recovery across hosts ---


@BOTH_ENGINES
def test_recovery_removes_only_the_lost_attempts_container(fake_factory, monkeypatch) -> None:
    bot, _ = fake_factory(0, schedules=False)
    job = ledger.create(bot.db, "probe", {"script": "sleep 30"}, "console:olga", "console")
    ledger.claim(bot.db, job.id, "host-c:30", 0.0)  # host-c died during attempt 1; its container was left
    lost = ledger.get(bot.db, job.id)
    assert lost is not None and lost.attempts == 1
    # Meanwhile another host's recovery re-queued it, and host-b runs attempt 2.
    assert ledger.release(bot.db, lost, 10) == JobState.QUEUED
    ledger.claim(bot.db, job.id, "host-b:20", 60)
    bot.runner.script(["sh"], Scripted(delay=30))
    runs = [threading.Thread(target=bot.runner.run, args=(RunSpec(images.BASE_IMAGE, ["sh"], job.id, n, 60),)) for n in (1, 2)]
    for run in runs:
        run.start()
    wait(lambda: len(bot.runner.containers()) == 2, "both attempts' containers")
    monkeypatch.setattr(recovery, "orphans", lambda worker: [lost])  # this pass read the ledger before the job was re-queued
    assert recovery.recover(bot.worker, lambda: set()) == 0
    assert [(c.job_id, c.attempt) for c in bot.runner.containers()] == [(job.id, 2)]
    again = ledger.get(bot.db, job.id)
    assert again is not None and (again.state, again.attempts, again.worker) == (JobState.RUNNING, 2, "host-b:20")
    bot.runner.remove(bot.runner.containers()[0].name)
    for run in runs:
        run.join(WAIT)


# --- processes: several bots and workers on one PostgreSQL database ---

ON_POSTGRESQL = pytest.mark.parametrize("database", ["postgresql"], indirect=True)
TOKEN = "7000:AAF-test-token-for-the-fake-api"


def podbot(config_path: Path, tmp_path: Path, host: str, *args: str, **environ: str) -> subprocess.Popen:
    """`podbot ARGS` as host `host`: its own host identity and data dir, the shared config and database."""
    env = {**os.environ, "PODBOT_CONFIG": str(config_path), "PODBOT_HOST": host, "PODBOT_DATA_DIR": str(tmp_path / host), **environ}
    command = [sys.executable, "-m", "bot.cli", *args]
    return subprocess.Popen(command, env=env, cwd=REPO, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stop(*processes: subprocess.Popen) -> None:
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
    for process in processes:
        process.wait(WAIT)


def states(db: Database, ids: list[int]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for job_id in ids:
        job = ledger.get(db, job_id)
        assert job is not None
        counts[job.state.value] = counts.get(job.state.value, 0) + 1
    return counts


@ON_POSTGRESQL
def test_two_bots_ticking_the_same_minutes_fire_each_once(fake_factory, tmp_path: Path) -> None:
    entry = {"cron": "* * * * *", "reply_to": "console:ops", "as": "console:olga", "catch_up": "all"}
    add_manifest(tmp_path, probe_like("minutely", "true", schedule=[entry]))
    bots = [fake_factory(0, schedules=False)[0] for _ in range(2)]  # each its own pool of connections
    t0 = math.floor(time.time() / 60) * 60 + 30
    assert bots[0].scheduler.tick(t0) == []  # first sight: remembered, nothing due
    minutes = range(1, 21)
    together = threading.Barrier(2)
    fired: list[list[float]] = [[], []]

    def ticks(n: int) -> None:
        for minute in minutes:
            together.wait(WAIT)
            fired[n].extend(f.due for f in bots[n].scheduler.tick(t0 + 60 * minute))

    threads = [threading.Thread(target=ticks, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT)
    assert sorted(fired[0] + fired[1]) == [t0 - 30 + 60 * minute for minute in minutes]
    assert len(ledger.recent(bots[0].db, 100, skill="minutely")) == len(minutes)


# A worker's claim loop, in a process of its own: it claims its jobs as soon as the gate file appears, holds each a
# moment, and prints the most jobs of the skill it ever saw running right after one of its claims.
CLAIMER = textwrap.dedent(
    """
    import os, sys, time
    from bot.flow import JobState
    from bot.store import ledger
    from bot.store.database import PostgresDatabase

    db = PostgresDatabase(sys.argv[1], pool_size=2, migrate=False)
    todo, most = [int(i) for i in sys.argv[4].split(",")], 0
    while not os.path.exists(sys.argv[3]):
        time.sleep(0.01)
    while todo:
        for job_id in list(todo):
            attempt = ledger.claim(db, job_id, sys.argv[2], 60, concurrency=2)
            if attempt is None:
                continue
            running = db.execute("SELECT COUNT(*) FROM jobs WHERE skill = 'single' AND state = 'running'").fetchone()[0]
            most = max(most, running)
            time.sleep(0.005)
            ledger.finish(db, job_id, attempt, JobState.SUCCEEDED, 0, "")
            todo.remove(job_id)
    print(most)
    """
)


@ON_POSTGRESQL
def test_skill_concurrency_counts_and_claims_in_one_transaction_across_processes(database: str, tmp_path: Path) -> None:
    db = db_of(database, tmp_path)
    ids = [ledger.create(db, "single", {}, "console:olga", "console").id for _ in range(120)]
    gate = tmp_path / "go"
    claimers = []
    for n in range(12):
        command = [sys.executable, "-c", CLAIMER, database, f"host-{n}:1", str(gate), ",".join(map(str, ids[n::12]))]
        claimers.append(subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, text=True))
    gate.touch()
    most = [int(claimer.communicate(timeout=WAIT)[0]) for claimer in claimers]
    assert max(most) <= 2, most
    assert states(db, ids) == {"succeeded": 120}


@ON_POSTGRESQL
def test_skill_concurrency_holds_across_worker_processes_on_several_hosts(
    bot_factory, tmp_path: Path, log_dir: Path, database: str
) -> None:
    config_path = write_config(tmp_path, log_dir, database=database, rate_limit={"jobs": 1000, "per": 60})
    add_manifest(tmp_path, probe_like("single", "sleep 0.3", concurrency=1))
    bot, recorder = bot_factory(0, schedules=False)
    ids = [say(bot, "olga", "/single")[0].job_id for _ in range(8)]
    hosts = [podbot(config_path, tmp_path, f"host-{name}", "worker", "--workers", "2") for name in "abc"]
    try:
        wait(lambda: not ledger.unfinished(bot.db, ids), "every job to end")
    finally:
        stop(*hosts)
    assert states(bot.db, ids) == {"succeeded": 8}
    jobs = [ledger.get(bot.db, i) for i in ids]
    spans = sorted((job.started, job.finished) for job in jobs)
    assert all(spans[i][1] <= spans[i + 1][0] for i in range(len(spans) - 1)), spans
    assert len({job.worker.split(":")[0] for job in jobs}) > 1  # run by more than one host
    assert {w.host: w.state(time.time()) for w in workers.listing(bot.db)} == {
        "host-a": "stopped",
        "host-b": "stopped",
        "host-c": "stopped",
    }


@ON_POSTGRESQL
def test_three_hosts_one_killed_one_stopped_every_job_succeeds_and_replies_once(
    bot_factory, tmp_path: Path, log_dir: Path, database: str
) -> None:
    config_path = write_config(tmp_path, log_dir, database=database, rate_limit={"jobs": 1000, "per": 60})
    add_manifest(tmp_path, probe_like("nap", "sleep 0.1; echo rested"))
    bot, recorder = bot_factory(0, schedules=False)  # the replies: its Recorder is the only sender
    ids = [say(bot, "olga", "/nap")[0].job_id for _ in range(300)]
    hosts = {name: podbot(config_path, tmp_path, name, "worker", "--workers", "2") for name in ("host-a", "host-b", "host-c")}

    def progress() -> dict[str, int]:
        return states(bot.db, ids)

    try:
        wait(lambda: progress().get("succeeded", 0) >= 40, "the workers to get going", 900, progress)
        hosts["host-b"].send_signal(signal.SIGKILL)
        hosts["host-b"].wait()
        wait(lambda: progress().get("succeeded", 0) >= 100, "more jobs to end", 900, progress)
        hosts["host-c"].send_signal(signal.SIGTERM)  # stops at once, leaving its running jobs to the others
        hosts["host-c"].wait(WAIT)
        at_stops = states(bot.db, ids)
        hosts["host-d"] = podbot(config_path, tmp_path, "host-d", "worker", "--workers", "2")
        wait(lambda: not ledger.unfinished(bot.db, ids), "every job to end", 900, progress)
        # The dead worker's last API calls may finish after recovery; the live workers' sweeps remove what they left.
        wait(lambda: bot.runner.containers() == [], "no container to be left behind")
        registry = {w.host: w for w in workers.listing(bot.db)}
    finally:
        stop(*hosts.values())
    assert at_stops.get("running", 0) + at_stops.get("queued", 0) > 0, at_stops  # the kill and the stop cut work short
    assert states(bot.db, ids) == {"succeeded": 300}
    wait(lambda: bot.idle(ids), "every reply to be sent")
    results = Counter(r.job_id for r in recorder.replies if r.job_id in ids and " queued" not in r.text)
    assert set(results) == set(ids) and set(results.values()) == {1}  # one result per job, none twice
    recovered = [e for e in audit.latest(bot.db, 5000) if e.event == "recovered"]
    assert any("worker host-b:" in e.detail for e in recovered), [e.detail for e in recovered]
    now = time.time()
    assert {host: w.state(now) for host, w in registry.items()} == {"host-a": "up", "host-b": "gone", "host-c": "stopped", "host-d": "up"}
    ran = {job.worker.split(":")[0] for job in (ledger.get(bot.db, i) for i in ids) if job is not None and job.worker}
    assert {"host-a", "host-d"} <= ran


def telegram_config(tmp_path: Path, log_dir: Path, database: str, fake: FakeTelegram) -> Path:
    platforms = {"telegram": {"base_url": fake.base_url, "base_file_url": f"{fake.url}/file/bot", "poll_timeout": 1}}
    return write_config(tmp_path, log_dir, database=database, platforms=platforms)


@ON_POSTGRESQL
def test_two_bot_processes_on_one_platform_send_each_reply_once_and_hand_over_on_a_kill(
    podman_ready, tmp_path: Path, log_dir: Path, database: str
) -> None:
    fake = FakeTelegram(TOKEN).start()
    config_path = telegram_config(tmp_path, log_dir, database, fake)
    db = open_database(database, tmp_path / "data")
    bots = {name: podbot(config_path, tmp_path, name, "run", "--workers", "0", TELEGRAM_BOT_TOKEN=TOKEN) for name in ("host-a", "host-b")}
    chats = (11, 12, 13)

    def put(batch: int) -> list[str]:
        texts = []
        for i in range(20):
            for chat in chats:
                texts.append(f"batch {batch} reply {i} to {chat}")
                outbox.put(db, f"test:{batch}:{chat}:{i}", Reply(f"telegram:{chat}", texts[-1]))
        return texts

    def delivered() -> dict[int, list[str]]:
        return {chat: [d["text"] for d in fake.sent(chat)] for chat in chats}

    try:
        for name in bots:
            logged(tmp_path / name / "podbot.log", "podbot is running on telegram")
        first = put(1)
        wait(lambda: outbox.count_pending(db, ["telegram"]) == 0, "the first batch to be sent")
        holder = leases.current(db, "outbox:telegram")
        assert holder is not None
        assert delivered() == {chat: [t for t in first if t.endswith(f" to {chat}")] for chat in chats}  # once each, in order
        taken, survivor = sorted(bots, key=lambda name: not holder.holder.startswith(f"{name}:"))
        bots[taken].send_signal(signal.SIGKILL)
        bots[taken].wait()
        second = put(2)
        wait(lambda: outbox.count_pending(db, ["telegram"]) == 0, "the second batch to be sent by the other process")
        after = leases.current(db, "outbox:telegram")
        assert after is not None and after.holder.startswith(f"{survivor}:")
        assert delivered() == {chat: [t for t in first + second if t.endswith(f" to {chat}")] for chat in chats}
        logged(tmp_path / survivor / "podbot.log", f"telegram: this process ({after.holder}) sends its replies now")
    finally:
        stop(*bots.values())
        fake.stop()
