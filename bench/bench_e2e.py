"""Benchmark: chat message -> result reply for `say hello`, against a bare `podman run --rm`.

Podbot: from Bot.receive() until the adapter is handed the result reply of that
job (pipeline, ledger, Huey queue, in-process consumer, container through the
Podman API, outbox). Bare: `podman run --rm --runtime R --network none IMAGE ARGV`
run as the container owner, with the image and argv the `say` manifest renders.
The two alternate in one run, after warm-ups, with an idle --gap before each, as
messages reach a chat bot that was idle. Each message comes from its own console
user, so the per-person rate limit never cuts in. Each run uses a fresh temporary
data directory; nothing is asserted, the figures are printed.

    .venv/bin/python bench/bench_e2e.py --runs 30
"""

from __future__ import annotations

import argparse
import shlex
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from percentiles import pct

from adapters.contract import SimpleAdapter
from bot import config, shipped
from bot.app import Bot
from bot.flow import Message, Reply
from bot.runtime import host
from bot.skill import render_argv
from bot.store import ledger

TEXT = "say hello"
SKILL, ARGS, OUTPUT = "say", {"text": "hello"}, "hello\n"


class Recorder(SimpleAdapter):
    """An adapter that notes when each reply arrives, per job id."""

    platform = "console"

    def __init__(self) -> None:
        self._arrived = threading.Condition()
        self._replies: dict[int, list[tuple[float, float, Reply]]] = {}  # job id -> (perf_counter, time.time, reply)

    def send(self, reply: Reply) -> None:
        stamp = (time.perf_counter(), time.time(), reply)
        if reply.job_id is not None:
            with self._arrived:
                self._replies.setdefault(reply.job_id, []).append(stamp)
                self._arrived.notify_all()

    def result(self, ack: Reply, timeout: float = 60.0) -> tuple[float, float, Reply]:
        """Wait for the first reply of ack's job that is not the ack itself."""
        assert ack.job_id is not None

        def found() -> tuple[float, float, Reply] | None:
            return next((s for s in self._replies.get(ack.job_id, []) if s[2] != ack), None)

        with self._arrived:
            if not self._arrived.wait_for(found, timeout):
                raise SystemExit(f"no result for job {ack.job_id} within {timeout:.0f} s")
            return found()  # type: ignore[return-value]


class PodbotRun:
    def __init__(self, bot: Bot, recorder: Recorder) -> None:
        self.bot, self.recorder = bot, recorder
        self.count = 0
        self.phases: dict[str, list[float]] = {"receive": [], "queue wait": [], "container": [], "reply": []}

    def __call__(self) -> float:
        self.count += 1
        msg = Message(
            platform="console", conversation="console", user=f"console:bench-{self.count}", text=TEXT, message_id=f"bench-{self.count}"
        )
        wall, start = time.time(), time.perf_counter()
        replies = self.bot.receive(msg)
        if len(replies) != 1 or replies[0].job_id is None:
            raise SystemExit(f"{TEXT!r} did not queue a job: {replies}")
        done, done_wall, reply = self.recorder.result(replies[0])
        if " done in " not in reply.text or reply.code != OUTPUT:
            raise SystemExit(f"job {reply.job_id} did not succeed: {reply}")
        job = ledger.get(self.bot.db, replies[0].job_id)
        assert job is not None and job.started is not None and job.finished is not None
        stamps = [wall, job.created, job.started, job.finished, done_wall]
        for name, before, after in zip(self.phases, stamps, stamps[1:], strict=False):
            self.phases[name].append(after - before)
        return done - start


def bare_run(argv: list[str]) -> Callable[[], float]:
    def run() -> float:
        start = time.perf_counter()
        proc = subprocess.run(argv, cwd="/tmp", capture_output=True, text=True, check=False)
        took = time.perf_counter() - start
        if proc.returncode != 0 or proc.stdout != OUTPUT:
            raise SystemExit(f"bare podman run failed ({proc.returncode}): {proc.stdout!r} {proc.stderr!r}")
        return took

    return run


def snapshot_config(tmp: Path) -> config.Config:
    """Config with its data in tmp and a copy of the manifests there, so edits to manifests/ during a run do not matter."""
    shutil.copytree(shipped.MANIFESTS, tmp / "manifests")
    shutil.copytree(shipped.SKILLS, tmp / "skills")  # the manifests name their image recipes as ../skills/NAME
    (tmp / "podbot.yaml").write_text(f"data_dir: {tmp}\nmanifest_dirs: [{tmp / 'manifests'}]\n")
    return config.load(str(tmp / "podbot.yaml"))


def row(label: str, seconds: list[float]) -> str:
    ms = [s * 1000 for s in seconds]
    return f"{label:<12} {pct(ms, 50):>7.1f} {pct(ms, 95):>7.1f} {statistics.mean(ms):>7.1f} {min(ms):>7.1f} {max(ms):>7.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=30, help="measured runs of each (default 30)")
    parser.add_argument("--warmup", type=int, default=2, help="unmeasured runs of each first (default 2)")
    parser.add_argument("--gap", type=float, default=0.5, help="idle seconds before each run (default 0.5)")
    parser.add_argument("--workers", type=int, help="Huey consumer threads, at least 1 (default: the config's workers, 2)")
    parser.add_argument("--tmp", help="where to create the temporary data directory (default: the system temp dir)")
    args = parser.parse_args()
    if args.runs < 2 or (args.workers is not None and args.workers < 1):
        parser.error("--runs must be at least 2 and --workers at least 1")

    with tempfile.TemporaryDirectory(prefix="podbot-bench-", dir=args.tmp) as tmp:
        cfg = snapshot_config(Path(tmp))
        bot = Bot(cfg)
        engine = bot.check_host()
        owner = host.owner(cfg)
        info = subprocess.run(
            owner.command(["podman", "info", "--format", "{{.Store.GraphDriverName}}"]),
            cwd="/tmp",
            capture_output=True,
            text=True,
            check=False,
        )
        driver = info.stdout.strip() or "?"
        skill = bot.catalog.skills[SKILL]
        podman_argv = ["podman", "run", "--rm", "--runtime", cfg.podman.runtime, "--network", "none", skill.run_image]
        argv = owner.command(podman_argv + render_argv(skill, ARGS))
        recorder = Recorder()
        bot.add_adapter(recorder)
        workers = cfg.workers if args.workers is None else args.workers
        bot.start(workers)
        podbot, bare = PodbotRun(bot, recorder), bare_run(argv)
        times: dict[str, list[float]] = {"podbot": [], "bare podman": []}
        try:
            for i in range(args.warmup + args.runs):
                for name, run in (("podbot", podbot), ("bare podman", bare)):
                    time.sleep(args.gap)
                    took = run()
                    if i >= args.warmup:
                        times[name].append(took)
        finally:
            bot.stop()

    print(
        f"podbot e2e: {TEXT!r} -> result reply, vs bare podman run; {args.runs} runs each after {args.warmup} warm-ups,"
        f" alternating, {args.gap} s idle before each; {workers} workers"
    )
    print(f"Podman {engine.version}, rootless={engine.rootless}, cgroup {engine.cgroup_version}, storage driver {driver}")
    print(f"bare argv: {shlex.join(argv)}")
    print(f"{'':<12} {'p50 ms':>7} {'p95 ms':>7} {'mean ms':>7} {'min ms':>7} {'max ms':>7}")
    for name, seconds in times.items():
        print(row(name, seconds))
    ours, theirs = times["podbot"], times["bare podman"]
    p50 = statistics.median(ours) / statistics.median(theirs)
    mean = statistics.mean(ours) / statistics.mean(theirs)
    print(f"ratio podbot/bare: p50 {p50:.2f} (target <= 1.15: {'met' if p50 <= 1.15 else 'NOT met'}), mean {mean:.2f}")
    measured = {name: values[args.warmup :] for name, values in podbot.phases.items()}
    print(
        "podbot phases, p50 / mean ms: "
        + ", ".join(f"{n} {statistics.median(v) * 1000:.1f} / {statistics.mean(v) * 1000:.1f}" for n, v in measured.items())
    )


if __name__ == "__main__":
    main()
