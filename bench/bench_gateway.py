"""Benchmark: 1,000 WebSocket clients talking to the gateway at once, beside the console path in the same run.

A child process runs the bot with its gateway on 127.0.0.1 (no job workers, so
every job stays queued, as in bench_enqueue.py; the outbox sender pushes each
"job N queued" reply to its client). This process opens --clients connections,
each authenticated with its own token (web:bench-N), measures the child's RSS
before and after to give the memory per idle connection, then has every client
send --messages `say hello` one after the other, all clients at once: the ack
latency (send to ack: the message was handled and stored) p50/p99, the
messages per second, and how long after the last ack every reply had reached its
client. Then the child sends as many messages through
Bot.receive the way the console does (one after the other, from one thread),
and prints the same figures. Each run uses a fresh temporary data directory.

    .venv/bin/python bench/bench_gateway.py --clients 1000 --messages 5
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from percentiles import pct

from bot import config, shipped
from bot.app import Bot
from bot.flow import Message, Reply
from bot.gateway import client, tokens
from bot.gateway.server import Gateway
from bot.store.database import open_database

TEXT = "say hello"


def bench_config(tmp: Path, clients: int) -> Path:
    """Data in tmp with a copy of the manifests; the per-person rate limit and the unauthenticated cap out of the way."""
    shutil.copytree(shipped.MANIFESTS, tmp / "manifests")
    shutil.copytree(shipped.SKILLS, tmp / "skills")  # the manifests name their image recipes as ../skills/NAME
    settings = {
        "data_dir": str(tmp),
        "manifest_dirs": [str(tmp / "manifests")],
        "rate_limit": {"jobs": 1000000, "per": 60},
        # Every client comes from 127.0.0.1 and they all connect at once.
        "gateway": {"listen": "127.0.0.1:0", "max_unauthenticated": clients, "heartbeat": 60},
    }
    path = tmp / "podbot.yaml"
    path.write_text(json.dumps(settings))
    return path


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def summary(latencies: list[float], seconds: float) -> dict[str, float]:
    ms = [x * 1000 for x in latencies]
    return {"messages": len(ms), "per_second": len(ms) / seconds, "p50": pct(ms, 50), "p99": pct(ms, 99), "max": max(ms)}


def serve(path: Path) -> None:
    """The child: bot and gateway; on stdin, `console N` runs N console-path messages and prints their figures as JSON."""
    bot = Bot(config.load(str(path), environ={}))
    gateway = Gateway(bot)
    bot.start(0, schedules=False, watch=False)
    gateway.start()
    print(f"PORT {gateway.port}", flush=True)
    for line in sys.stdin:
        count = int(line.split()[1])
        latencies = []
        started = time.perf_counter()
        for n in range(count):
            msg = Message("console", "console:bench", "console:bench", TEXT, "bench", message_id=f"console-{n}")
            begin = time.perf_counter()
            bot.receive(msg)
            latencies.append(time.perf_counter() - begin)
        print(json.dumps(summary(latencies, time.perf_counter() - started)), flush=True)
    gateway.stop()
    bot.stop()


async def drive(port: int, minted: list[str], messages: int, pid: int) -> tuple[float, dict[str, float], float]:
    """Connect every client at once, weigh the idle connections, then have them all talk.

    Returns (KiB per idle connection, the ack figures, seconds from the last ack until every "job N queued" reply
    had been pushed to its client)."""
    url = f"ws://127.0.0.1:{port}/ws"
    before = rss_kb(pid)
    received = 0
    everything = asyncio.Event()

    def count(reply: Reply) -> None:
        nonlocal received
        received += 1
        if received == len(minted) * messages:
            everything.set()

    clients = await asyncio.gather(*(client.connect(url, token, count) for token in minted))
    await asyncio.sleep(2.0)  # let the child settle after the connection storm
    per_connection = (rss_kb(pid) - before) / len(clients)
    latencies: list[float] = []

    async def talk(person: client.Client) -> None:
        for _ in range(messages):
            begin = time.perf_counter()
            await person.send(TEXT)
            latencies.append(time.perf_counter() - begin)

    started = time.perf_counter()
    await asyncio.gather(*(talk(person) for person in clients))
    acked = time.perf_counter()
    figures = summary(latencies, acked - started)
    await everything.wait()
    drained = time.perf_counter() - acked
    await asyncio.gather(*(person.close() for person in clients))
    return per_connection, figures, drained


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--messages", type=int, default=5, help="messages each client sends (default 5)")
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(Path(args.serve))
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 4 * args.clients + 256)), hard))
    with tempfile.TemporaryDirectory(prefix="podbot-bench-") as tmp:
        path = bench_config(Path(tmp), args.clients)
        child = subprocess.Popen([sys.executable, __file__, "--serve", str(path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert child.stdin is not None and child.stdout is not None
        try:
            port = int(child.stdout.readline().split()[1])
            cfg = config.load(str(path), environ={})
            db, key = open_database(cfg.database, cfg.data_dir), tokens.signing_key(cfg.data_dir)
            minted = [tokens.encode(key, tokens.create(db, key, f"web:bench-{n}", 3600)) for n in range(args.clients)]
            per_connection, ws, drained = asyncio.run(drive(port, minted, args.messages, child.pid))
            child.stdin.write(f"console {ws['messages']:.0f}\n")
            child.stdin.flush()
            console = json.loads(child.stdout.readline())
        finally:
            child.stdin.close()
            child.wait(60)
    print(f"{args.clients} WebSocket clients, {args.messages} messages each; console path: as many messages, one thread")
    print(f"{'path':<10} {'messages':>8} {'msg/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for label, figures in (("websocket", ws), ("console", console)):
        print(
            f"{label:<10} {figures['messages']:>8.0f} {figures['per_second']:>8.1f} {figures['p50']:>8.2f} {figures['p99']:>8.2f}"
            f" {figures['max']:>8.2f}"
        )
    print(f"every reply pushed {drained:.2f} s after the last ack (the outbox sender delivers one reply at a time)")
    print(f"gateway memory per idle connection: {per_connection:.1f} KiB (child RSS growth over {args.clients} connections)")


if __name__ == "__main__":
    main()
