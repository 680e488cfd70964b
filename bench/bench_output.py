"""Benchmark: a skill printing endlessly against one printing 10 lines, side by side in one bot.

For each run: the time from Bot.receive() to the result reply, the bot process's peak RSS
during the run (VmHWM, reset before each run through /proc/self/clear_refs) next to its
RSS when idle, and the largest the run's container log file grew on disk (the k8s-file
path from the Podman API, stat'ed every 10 ms while the container exists: run this as root
or as the container owner). The skills are `yes`, `yes 1>&2` and `seq 1 10`, all with
--timeout (5 s by default, as in the report that found the problem); the runs alternate. Each
bench uses a fresh temporary data directory; nothing is asserted, the figures are printed.

    .venv/bin/python bench/bench_output.py --runs 3
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import podman
import podman.errors
import yaml

from adapters.contract import SimpleAdapter
from bot import config
from bot.app import Bot
from bot.flow import Message, Reply
from bot.runtime import images
from bot.store import ledger

SKILLS = {"flood": "yes", "flood_stderr": "yes 1>&2", "ten": "seq 1 10"}


class Recorder(SimpleAdapter):
    """An adapter that keeps each job's result reply (the first reply of a job that is not its ack)."""

    platform = "console"

    def __init__(self) -> None:
        self._arrived = threading.Condition()
        self._results: dict[int, Reply] = {}

    def send(self, reply: Reply) -> None:
        if reply.job_id is not None and " queued" not in reply.text:
            with self._arrived:
                self._results.setdefault(reply.job_id, reply)
                self._arrived.notify_all()

    def result(self, job_id: int, timeout: float) -> Reply:
        with self._arrived:
            if not self._arrived.wait_for(lambda: job_id in self._results, timeout):
                raise SystemExit(f"no result for job {job_id} within {timeout:.0f} s")
            return self._results[job_id]


def status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise SystemExit(f"no {field} in /proc/self/status")


class LogSampler:
    """Follows one job's container log file size from a thread of its own, with its own Podman client."""

    def __init__(self, bot: Bot, url: str, job_id: int) -> None:
        self.bot, self.url, self.job_id = bot, url, job_id
        self.peak = 0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def stop(self) -> int:
        self._done.set()
        self._thread.join()
        return self.peak

    def _sample(self) -> None:
        paths: dict[str, str] = {}
        with podman.PodmanClient(base_url=self.url) as client:
            while not self._done.wait(0.01):
                for container in self.bot.runner.containers():
                    if container.job_id != self.job_id:
                        continue
                    try:
                        if container.name not in paths:
                            paths[container.name] = client.containers.get(container.name).inspect()["HostConfig"]["LogConfig"]["Path"]
                        self.peak = max(self.peak, os.stat(paths[container.name]).st_size)
                    except (podman.errors.APIError, FileNotFoundError):
                        pass  # removed meanwhile, or conmon is starting the file over


@dataclass
class Run:
    skill: str
    seconds: float
    state: str
    rss_idle: int  # kB
    rss_peak: int  # kB
    log_peak: int  # bytes
    reply: str


def one_run(bot: Bot, recorder: Recorder, url: str, skill: str, n: int) -> Run:
    Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS
    idle = status_kb("VmRSS")
    msg = Message(
        platform="console", conversation="console", user=f"console:bench-{skill}-{n}", text=f"/{skill}", message_id=f"bench-{skill}-{n}"
    )
    start = time.perf_counter()
    [ack] = bot.receive(msg)
    if ack.job_id is None:
        raise SystemExit(f"/{skill} did not queue a job: {ack.text}")
    sampler = LogSampler(bot, url, ack.job_id)
    reply = recorder.result(ack.job_id, 900)
    took = time.perf_counter() - start
    log_peak = sampler.stop()
    job = ledger.get(bot.db, ack.job_id)
    assert job is not None
    # VmHWM is updated lazily: never below the RSS measured after the reset.
    return Run(skill, took, job.state.value, idle, max(idle, status_kb("VmHWM")), log_peak, reply.text)


def write_setup(tmp: Path, timeout: float) -> Path:
    manifests = tmp / "manifests"
    manifests.mkdir()
    for name, script in SKILLS.items():
        manifest = {
            "name": name,
            "description": f"Bench skill: {script}.",
            "parameters": {"type": "object", "properties": {}},
            "run": {"image": images.BASE_IMAGE, "command": ["sh", "-c", script], "timeout": f"{timeout:g}s"},
            "roles": ["operator"],
            "invocation": "explicit",
        }
        (manifests / f"{name}.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
    path = tmp / "podbot.yaml"
    settings = {"data_dir": str(tmp / "data"), "manifest_dirs": [str(manifests)], "roles": {"operator": ["console:*"]}}
    path.write_text(yaml.safe_dump(settings))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3, help="runs of each skill (default 3)")
    parser.add_argument("--timeout", type=float, default=5.0, help="the flooding skills' timeout in seconds (default 5)")
    parser.add_argument("--tmp", help="where to create the temporary data directory (default: the system temp dir)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="podbot-bench-", dir=args.tmp) as tmp:
        cfg = config.load(str(write_setup(Path(tmp), args.timeout)), environ={})
        bot = Bot(cfg)
        engine = bot.check_host()
        recorder = Recorder()
        bot.add_adapter(recorder)
        bot.start(1, schedules=False, watch=False)
        runs: list[Run] = []
        try:
            for n in range(args.runs):
                for skill in SKILLS:
                    runs.append(one_run(bot, recorder, engine.url, skill, n))
        finally:
            bot.stop()

    print(
        f"podbot output: endless `yes` / `yes 1>&2` (timeout {args.timeout:g} s) vs `seq 1 10`; {args.runs} runs each, alternating;"
        f" output cap {cfg.limits.output_bytes} bytes"
    )
    print(f"Podman {engine.version}, rootless={engine.rootless}, cgroup {engine.cgroup_version}; 1 worker")
    print(f"{'skill':<13} {'answer s':>8} {'state':<10} {'RSS idle MB':>11} {'peak MB':>8} {'+MB':>6} {'log peak KiB':>12}  reply")
    for run in runs:
        print(row(run.skill, run.seconds, run.state, run.rss_idle, run.rss_peak, run.log_peak) + f"  {run.reply}")
    print("median per skill:")
    for skill in SKILLS:
        mine = [r for r in runs if r.skill == skill]
        medians = [statistics.median(getattr(r, name) for r in mine) for name in ("seconds", "rss_idle", "rss_peak", "log_peak")]
        print(row(skill, medians[0], "", *medians[1:]))


def row(skill: str, seconds: float, state: str, rss_idle: float, rss_peak: float, log_peak: float) -> str:
    return (
        f"{skill:<13} {seconds:>8.2f} {state:<10} {rss_idle / 1024:>11.1f} {rss_peak / 1024:>8.1f}"
        f" {(rss_peak - rss_idle) / 1024:>6.1f} {log_peak / 1024:>12.1f}"
    )


if __name__ == "__main__":
    main()
