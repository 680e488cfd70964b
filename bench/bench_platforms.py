"""Benchmark: `say hello` sent on each platform -> its result reply arriving at that platform, against the fake servers.

Per platform (the real SDK against its fake from tests/, as in the tests), three
intervals per run:
- end to end: from the moment the fake hands the message to the SDK (Telegram:
  a waiting getUpdates returns it; Slack: a Socket Mode envelope; Discord: a
  gateway MESSAGE_CREATE) until the fake has the result message;
- in: from that moment until the adapter calls Bot.receive;
- out: from the outbox calling the adapter's send() with the result until the
  fake has it (render, the SDK's HTTP request, the fake's answer).
The console path is the same bot without an SDK: Bot.receive() until its
adapter is handed the result (its in and out are nil), so "in + out" is the
adapter's overhead over the console path; the difference of the end-to-end
medians says the same, with the queue's and the container's noise on top.
The four paths alternate in one run with one bot (2 workers, real rootless
Podman), after warm-ups, with an idle --gap before each.

    .venv/bin/python bench/bench_platforms.py --runs 20
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from itertools import count
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the fakes live in tests/

from percentiles import pct

import adapters  # noqa: E402
from adapters.contract import SimpleAdapter  # noqa: E402
from bot import config  # noqa: E402
from bot.app import Bot  # noqa: E402
from bot.flow import Message, Reply  # noqa: E402
from tests.fake_discord import FakeDiscord  # noqa: E402
from tests.fake_slack import FakeSlack  # noqa: E402
from tests.fake_telegram import FakeTelegram  # noqa: E402

TEXT, OUTPUT = "say hello", "hello\n"
TOKENS = {
    "TELEGRAM_BOT_TOKEN": "7000:AAF-bench-token",
    "SLACK_BOT_TOKEN": "xoxb-bench-token",
    "SLACK_APP_TOKEN": "xapp-bench-token",
    "DISCORD_BOT_TOKEN": "MTAx.bench.discord-token",
}


class Console(SimpleAdapter):
    """The console path: an adapter that notes when the result of a job arrives."""

    platform = "console"

    def __init__(self) -> None:
        self._arrived = threading.Condition()
        self._results: dict[int, float] = {}

    def send(self, reply: Reply) -> None:
        if reply.job_id is not None and reply.code == OUTPUT:
            with self._arrived:
                self._results[reply.job_id] = time.perf_counter()
                self._arrived.notify_all()

    def wait(self, job_id: int) -> float:
        with self._arrived:
            if not self._arrived.wait_for(lambda: job_id in self._results, 60):
                raise SystemExit(f"no result for console job {job_id}")
            return self._results[job_id]


class Stamps:
    """When each conversation's message reached Bot.receive, and when its result reached an adapter's send()."""

    def __init__(self, bot: Bot, adapters: list) -> None:
        self.received: dict[str, float] = {}
        self.sending: dict[str, float] = {}
        receive = bot.receive

        def stamped_receive(msg: Message) -> list[Reply]:
            self.received[msg.conversation] = time.perf_counter()
            return receive(msg)

        bot.receive = stamped_receive  # type: ignore[method-assign]
        for adapter in adapters:
            adapter.send = self._stamped_send(adapter.send)

    def _stamped_send(self, send: Callable[[Reply], None]) -> Callable[[Reply], None]:
        def stamped(reply: Reply) -> None:
            if reply.code == OUTPUT:
                self.sending.setdefault(reply.conversation, time.perf_counter())
            send(reply)

        return stamped


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=20, help="measured runs per path (default 20)")
    parser.add_argument("--warmup", type=int, default=2, help="unmeasured runs per path first (default 2)")
    parser.add_argument("--gap", type=float, default=0.3, help="idle seconds before each run (default 0.3)")
    args = parser.parse_args()
    if args.runs < 2:
        parser.error("--runs must be at least 2")

    telegram = FakeTelegram(TOKENS["TELEGRAM_BOT_TOKEN"]).start()
    slack = FakeSlack(TOKENS["SLACK_BOT_TOKEN"], TOKENS["SLACK_APP_TOKEN"]).start()
    discord = FakeDiscord(TOKENS["DISCORD_BOT_TOKEN"]).start()
    with tempfile.TemporaryDirectory(prefix="podbot-bench-") as tmp:
        cfg_path = Path(tmp, "podbot.yaml")
        cfg_path.write_text(
            f"data_dir: {tmp}\nplatforms:\n"
            f"  telegram: {{base_url: '{telegram.base_url}'}}\n"
            f"  slack: {{api_base_url: '{slack.api_url}'}}\n"
            f"  discord: {{api_base_url: '{discord.api_url}', gateway_url: '{discord.gateway_url}'}}\n"
        )
        cfg = config.load(str(cfg_path), environ={})
        bot = Bot(cfg)
        engine = bot.check_host()
        console = Console()
        platforms = adapters.configured(cfg, environ=TOKENS)
        for adapter in [console, *platforms]:
            bot.add_adapter(adapter)
        stamps = Stamps(bot, platforms)  # before start: each outbox sender takes its adapter's send when it starts
        bot.start(2, schedules=False)
        for adapter in platforms:
            adapter.start(bot)
            if not adapter.connected.wait(60):
                raise SystemExit(f"{adapter.platform} did not connect: {adapter.error}")
        ids = count(1)

        def via_console() -> tuple[float, ...]:
            msg = Message("console", "console", "console:bench", TEXT, message_id=f"bench-{next(ids)}")
            start = time.perf_counter()
            [ack] = bot.receive(msg)
            return (console.wait(ack.job_id) - start,)

        def via(push: Callable[[int], str], fake, what: str, done: Callable[[dict, int], bool]) -> Callable[[], tuple[float, ...]]:
            """A run on a platform: conversation n gets TEXT; done once the fake holds its result."""

            def run() -> tuple[float, ...]:
                n = next(ids)
                start = time.perf_counter()
                conversation = push(n)
                [arrived] = fake.wait_for(what, lambda d: done(d, n))
                return arrived["at"] - start, stamps.received[conversation] - start, arrived["at"] - stamps.sending[conversation]

            return run

        def telegram_push(n: int) -> str:
            telegram.message(1000 + n, 1, TEXT)
            return f"telegram:{1000 + n}"

        def slack_push(n: int) -> str:
            slack.send_event(slack.message(f"D{n}", "U1", TEXT))
            return f"slack:D{n}"

        def discord_push(n: int) -> str:
            discord.message(9000 + n, 1, TEXT)
            return f"discord:{9000 + n}"

        def telegram_done(d: dict, n: int) -> bool:
            return d["chat_id"] == 1000 + n and "<pre>hello" in d["text"]

        def slack_done(d: dict, n: int) -> bool:
            return d["channel"] == f"D{n}" and "```" in d["text"]

        def discord_done(d: dict, n: int) -> bool:
            return d["channel_id"] == 9000 + n and "```" in d["content"]

        paths = {
            "console": via_console,
            "telegram": via(telegram_push, telegram, "send", telegram_done),
            "slack": via(slack_push, slack, "post", slack_done),
            "discord": via(discord_push, discord, "message", discord_done),
        }
        times: dict[str, list[tuple[float, ...]]] = {name: [] for name in paths}
        try:
            for i in range(args.warmup + args.runs):
                for name, run in paths.items():
                    time.sleep(args.gap)
                    took = run()
                    if i >= args.warmup:
                        times[name].append(took)
        finally:
            for adapter in platforms:
                adapter.stop()
            bot.stop()
            for fake in (telegram, slack, discord):
                fake.stop()

    print(
        f"podbot platforms: {TEXT!r} -> result reply at the platform, {args.runs} runs each after {args.warmup} warm-ups,"
        f" alternating, {args.gap} s idle before each; 2 workers; Podman {engine.version}, rootless={engine.rootless}"
    )
    base = statistics.median(t[0] for t in times["console"])
    print(f"{'ms':<9} {'e2e p50':>8} {'e2e p95':>8} {'in p50':>7} {'in p95':>7} {'out p50':>7} {'out p95':>7}", end="")
    print(f" {'in+out p50':>10} {'e2e p50 - console':>18}")
    for name, runs in times.items():
        e2e = [t[0] * 1000 for t in runs]
        row = f"{name:<9} {pct(e2e, 50):>8.1f} {pct(e2e, 95):>8.1f}"
        if name != "console":
            inbound, outbound = [t[1] * 1000 for t in runs], [t[2] * 1000 for t in runs]
            both = statistics.median(i + o for i, o in zip(inbound, outbound, strict=True))
            row += f" {pct(inbound, 50):>7.1f} {pct(inbound, 95):>7.1f} {pct(outbound, 50):>7.1f} {pct(outbound, 95):>7.1f} {both:>10.1f}"
            row += f" {statistics.median(e2e) - base * 1000:>+18.1f}"
        print(row)


if __name__ == "__main__":
    main()
