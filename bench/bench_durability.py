"""Benchmark: what "nothing lost" costs — recovery after kill -9, cron fire jitter, outbox drain after an outage.

1. recovery: a `podbot worker` process runs a queue of short container jobs and
   is killed with SIGKILL mid-run; a new worker starts. Measured from the new
   worker's start until every job the dead one held (running in the ledger) is
   queued or running again, and until every job has ended.
2. cron jitter: many every-minute schedules ticked the way the bot's scheduler
   loop does (sleeping until just past each minute mark), on a clock shifted so a minute boundary comes every
   few seconds; jitter = when the job was queued minus the minute it was due.
3. outbox drain: replies pile up while the platform refuses every send; then it
   accepts, and we time how fast the backlog drains (in order per conversation).

    .venv/bin/python bench/bench_durability.py --jobs 60 --boundaries 20 --replies 2000
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import yaml
from percentiles import pct

from adapters.contract import SimpleAdapter
from bot import config
from bot.app import Bot
from bot.flow import JobState, Message, Reply
from bot.jobs import scheduler
from bot.jobs.recovery import LOST_AFTER
from bot.store import ledger, outbox

REPO = Path(__file__).resolve().parent.parent


def make_config(tmp: Path, manifests: list[dict]) -> Path:
    extra = tmp / "manifests"
    extra.mkdir()
    for manifest in manifests:
        (extra / f"{manifest['name']}.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
    path = tmp / "podbot.yaml"
    data = {
        "data_dir": str(tmp / "data"),
        "manifest_dirs": [str(REPO / "manifests"), str(extra)],
        "roles": {"admin": ["console:*"]},
        "rate_limit": {"jobs": 100000, "per": 60},
        "workers": 2,
    }
    path.write_text(yaml.safe_dump(data))
    return path


def skill(name: str, script: str, **extra) -> dict:
    return {
        "name": name,
        "description": f"bench {name}",
        "run": {"image": "localhost/podbot-base:latest", "command": ["sh", "-c", script]},
        "roles": ["user"],
        **extra,
    }


def recovery(jobs: int) -> None:
    with tempfile.TemporaryDirectory(prefix="podbot-bench-") as tmp:
        path = make_config(Path(tmp), [skill("nap", "sleep 0.3")])
        bot = Bot(config.load(str(path), environ={}))
        ids = [bot.receive(Message("console", "console", "console:bench", "/nap", message_id=f"n{i}"))[0].job_id for i in range(jobs)]
        env = {**os.environ, "PODBOT_CONFIG": str(path)}
        worker = [sys.executable, "-m", "bot.cli", "worker"]
        first = subprocess.Popen(worker, env=env, stderr=subprocess.DEVNULL)
        while sum(1 for i in ids if ledger.get(bot.db, i).state == JobState.SUCCEEDED) < jobs // 4:
            time.sleep(0.05)
        first.send_signal(signal.SIGKILL)
        first.wait()
        held = [i for i in ids if ledger.get(bot.db, i).state == JobState.RUNNING]
        started = time.monotonic()
        second = subprocess.Popen(worker, env=env, stderr=subprocess.DEVNULL)
        while any(
            ledger.get(bot.db, i).worker
            and ledger.get(bot.db, i).state == JobState.RUNNING
            and ledger.get(bot.db, i).worker.endswith(f":{first.pid}")
            for i in held
        ):
            time.sleep(0.01)
        requeued = time.monotonic() - started
        while ledger.unfinished(bot.db, ids):
            time.sleep(0.05)
        finished = time.monotonic() - started
        second.send_signal(signal.SIGINT)
        second.wait(timeout=60)
        ok = sum(1 for i in ids if ledger.get(bot.db, i).state == JobState.SUCCEEDED)
        print(
            f"recovery after kill -9: {len(held)} running jobs held by the dead worker re-queued {requeued:.2f} s after the new worker "
            f"started; all {jobs} jobs ended {finished:.1f} s after ({ok} succeeded). A Huey message the dead worker had taken but "
            f"not claimed is re-queued after {LOST_AFTER:.0f} s."
        )


def cron_jitter(boundaries: int, schedules: int) -> None:
    with tempfile.TemporaryDirectory(prefix="podbot-bench-") as tmp:
        entries = [
            skill(f"tick{i}", "true", schedule=[{"cron": "* * * * *", "reply_to": "console", "as": "console:bench"}])
            for i in range(schedules)
        ]
        bot = Bot(config.load(str(make_config(Path(tmp), entries)), environ={}))
        jitter: list[float] = []
        offset = 0.0
        bot.scheduler.tick(time.time())
        for _ in range(boundaries):
            # Shift the clock so the next minute boundary is 1-2 s away, at a random phase to the tick.
            now = time.time() + offset
            offset += (math.floor(now / 60) + 1) * 60 - now - random.uniform(1.0, 2.0)
            done = False
            while not done:
                fired = bot.scheduler.tick(time.time() + offset)
                jitter.extend(f.at + offset - f.due for f in fired)
                done = bool(fired)
                time.sleep(scheduler.pause_before_next_tick(time.time() + offset))
        print(
            f"cron fire jitter ({len(jitter)} fires of {schedules} schedules over {boundaries} minute boundaries): "
            f"p50 {pct(jitter, 50) * 1000:.0f} ms, p99 {pct(jitter, 99) * 1000:.0f} ms, "
            f"max {max(jitter) * 1000:.0f} ms"
        )


class Flaky(SimpleAdapter):
    platform = "console"

    def __init__(self) -> None:
        self.up = False
        self.got: list[Reply] = []
        self.done = threading.Event()
        self.expect = 0

    def send(self, reply: Reply) -> None:
        if not self.up:
            raise ConnectionError("platform down")
        self.got.append(reply)
        if len(self.got) == self.expect:
            self.done.set()


def outbox_drain(replies: int, conversations: int) -> None:
    with tempfile.TemporaryDirectory(prefix="podbot-bench-") as tmp:
        bot = Bot(config.load(str(make_config(Path(tmp), [])), environ={}))
        adapter = Flaky()
        adapter.expect = replies
        bot.add_adapter(adapter)
        for i in range(replies):
            outbox.put(bot.db, f"bench:{i}", Reply(f"console:c{i % conversations}", f"reply {i}"))
        bot.start(0, schedules=False, watch=False)
        time.sleep(2)  # every conversation's head is refused and backs off
        backlog = outbox.count_pending(bot.db, ["console"])
        adapter.up = True
        started = time.monotonic()
        bot.db.execute("UPDATE outbox SET next_try = NULL WHERE sent IS NULL")  # time the drain, not the backoff
        adapter.done.wait(600)
        took = time.monotonic() - started
        bot.stop()
        in_order = all(
            [r.text for r in adapter.got if r.conversation == f"console:c{c}"] == [f"reply {i}" for i in range(c, replies, conversations)]
            for c in range(conversations)
        )
        print(
            f"outbox drain after an outage: {backlog} pending replies over {conversations} conversations sent in {took:.2f} s "
            f"= {len(adapter.got) / took:.0f} replies/s; in order per conversation: {in_order}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=60, help="jobs in the kill -9 recovery run")
    parser.add_argument("--boundaries", type=int, default=20, help="minute boundaries for the cron jitter run")
    parser.add_argument("--schedules", type=int, default=20, help="every-minute schedules ticked together")
    parser.add_argument("--replies", type=int, default=2000, help="replies backed up in the outbox")
    parser.add_argument("--conversations", type=int, default=10)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)  # the outage makes the outbox log every refusal
    recovery(args.jobs)
    cron_jitter(args.boundaries, args.schedules)
    outbox_drain(args.replies, args.conversations)


if __name__ == "__main__":
    main()
