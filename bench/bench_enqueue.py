"""Benchmark: chat message -> job in the SQLite ledger and on the Huey queue.

One thread sends `say hello` (a deterministic pattern route) through Bot.receive
back to back for --seconds. No consumer runs (workers=0), so every job stays
queued; the outbox sender does run and delivers the acks to a no-op adapter.
Each message comes from its own console user (console:* are admins), so the
per-person rate limit is checked but never cuts in.
Prints per-message latency (p50/p99) and the sustained rate, per time window
and overall. Each run uses a fresh temporary data directory.

    .venv/bin/python bench/bench_enqueue.py --seconds 60
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from percentiles import pct

from adapters.contract import SimpleAdapter
from bot import config, shipped
from bot.app import Bot
from bot.flow import JobState, Message, Reply

TEXT = "say hello"


class Counter(SimpleAdapter):
    """An adapter that only counts what the outbox sender hands it."""

    platform = "console"

    def __init__(self) -> None:
        self.sent = 0

    def send(self, reply: Reply) -> None:
        self.sent += 1


def snapshot_config(tmp: Path) -> config.Config:
    """Config with its data in tmp and a copy of the manifests there, so edits to manifests/ during a run do not matter."""
    shutil.copytree(shipped.MANIFESTS, tmp / "manifests")
    shutil.copytree(shipped.SKILLS, tmp / "skills")  # the manifests name their image recipes as ../skills/NAME
    (tmp / "podbot.yaml").write_text(f"data_dir: {tmp}\nmanifest_dirs: [{tmp / 'manifests'}]\n")
    return config.load(str(tmp / "podbot.yaml"))


def message(n: int) -> Message:
    return Message(platform="console", conversation="console", user=f"console:bench-{n}", text=TEXT, message_id=f"bench-{n}")


def send(bot: Bot, n: int) -> float:
    """Run message n through the pipeline; return its latency in seconds."""
    start = time.perf_counter()
    replies = bot.receive(message(n))
    took = time.perf_counter() - start
    if len(replies) != 1 or replies[0].job_id is None:
        raise SystemExit(f"{TEXT!r} did not queue a job: {replies}")
    return took


def row(label: str, lat: list[float], seconds: float) -> str:
    ms = [x * 1000 for x in lat]
    return f"{label:<11} {len(ms):>7} {len(ms) / seconds:>8.1f} {pct(ms, 50):>7.2f} {pct(ms, 99):>7.2f} {max(ms):>7.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60.0, help="how long to send messages (default 60)")
    parser.add_argument("--windows", type=int, default=6, help="time windows to report separately (default 6)")
    parser.add_argument("--warmup", type=int, default=200, help="untimed messages sent first (default 200)")
    parser.add_argument("--tmp", help="where to create the temporary data directory (default: the system temp dir)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="podbot-bench-", dir=args.tmp) as tmp:
        cfg = snapshot_config(Path(tmp))
        bot = Bot(cfg)
        counter = Counter()
        bot.add_adapter(counter)
        bot.start(0)
        try:
            for n in range(args.warmup):
                send(bot, n)
            stamps: list[tuple[float, float]] = []  # (seconds since start, latency)
            n = args.warmup
            begin = time.perf_counter()
            deadline = begin + args.seconds
            while (now := time.perf_counter()) < deadline:
                took = send(bot, n)
                stamps.append((now - begin, took))
                n += 1
            elapsed = time.perf_counter() - begin
            wait_until = time.monotonic() + 10
            while not bot.idle([]) and time.monotonic() < wait_until:  # let the sender deliver the last acks
                time.sleep(0.01)
        finally:
            bot.stop()
        queued = bot.db.execute("SELECT COUNT(*) FROM jobs WHERE state = ?", (JobState.QUEUED.value,)).fetchone()[0]
        pending = bot.queue.pending()

        print(f"podbot enqueue: {TEXT!r} -> ledger + Huey queue; 1 sender, no consumer; {elapsed:.1f} s; data in {tmp}")
        print(f"{'window':<11} {'msgs':>7} {'msg/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7}")
        width = elapsed / args.windows
        for w in range(args.windows):
            lat = [took for at, took in stamps if w * width <= at < (w + 1) * width]
            if lat:
                print(row(f"{w * width:.0f}-{(w + 1) * width:.0f} s", lat, width))
        print(row("all", [took for _, took in stamps], elapsed))
        print(f"check: {n} messages sent; ledger holds {queued} queued jobs, Huey {pending} pending tasks; {counter.sent} acks delivered")


if __name__ == "__main__":
    main()
