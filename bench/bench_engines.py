"""Benchmark: SQLite next to PostgreSQL in one run: message to queued job and to reply, jobs/s with 1, 2, 4 workers, idle CPU.

1. enqueue: one thread sends `say hello` through Bot.receive back to back (as
   bench_enqueue.py: no consumer, each message from its own console user); the
   two engines' bots take turns in 1 s slices for --seconds each, so a load
   change on the machine hits both alike. msg/s and p50/p99 of the receive call.
2. reply: `say hello` from Bot.receive until the adapter is handed the result
   reply (as bench_e2e.py: real rootless Podman, in-process Huey consumer with
   the config's 2 worker threads, --gap idle before each run); the engines
   alternate run by run. p50/p95 of the round trip and the ledger's queue wait.
3. throughput: --jobs `say hello` jobs queued first, then --workers `podbot
   worker` processes (each its own PODBOT_HOST, --threads Huey threads) start;
   timed from their start until the last job is terminal in the ledger, and
   from the first job's start to the last job's end (without process start-up).
   Worker counts alternate between the engines.
4. idle: one `podbot worker` per engine with nothing queued, both at once; after
   --settle seconds, its CPU time (utime+stime of every thread, /proc/PID/stat)
   over --idle-seconds, as % of one core; on PostgreSQL also the server's
   processes over the same window.

Each part uses fresh temporary data directories (with a copy of manifests/ and
skills/) and, on PostgreSQL, a fresh database on one throw-away server
(tests/postgres_server.py). Progress goes to stderr, figures to stdout; nothing
is asserted. Temporary directories, the server, worker processes and leftover
containers are removed at the end, also after Ctrl-C.

    .venv/bin/python bench/bench_engines.py --jobs 100 --seconds 10
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import yaml
from bench_e2e import PodbotRun, Recorder
from bench_enqueue import Counter, send
from percentiles import pct

from bot import config, shipped
from bot.app import Bot
from bot.flow import JobState, Message
from bot.runtime.podman import PodmanRunner
from bot.store import ledger

ENGINES = ("sqlite", "postgresql")
PARTS = ("enqueue", "reply", "throughput", "idle")
SLICE = 1.0  # seconds each engine sends before the other one's turn (enqueue)
TICK = os.sysconf("SC_CLK_TCK")
WORKER = [sys.executable, "-m", "bot.cli", "worker"]


def progress(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S', time.gmtime())} load {load()}] {text}", file=sys.stderr, flush=True)


def load() -> str:
    """The 1-, 5- and 15-minute load averages."""
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def ms(seconds: list[float]) -> list[float]:
    return [s * 1000 for s in seconds]


class Setup:
    """Fresh data directories, one PostgreSQL server started on first use, the worker processes and bots to clean up."""

    def __init__(self, stack: ExitStack, tmp_root: str | None):
        self.stack = stack
        self.tmp_root = tmp_root
        self.server: Any = None
        self.databases = 0
        self.processes: list[subprocess.Popen] = []
        self.bots: list[Bot] = []
        self.runners: list[PodmanRunner] = []

    def config(self, engine: str, label: str, **extra: Any) -> Path:
        """podbot.yaml in a new temporary directory beside a copy of manifests/ and skills/; on PostgreSQL a new database."""
        tmp = Path(tempfile.mkdtemp(prefix=f"podbot-bench-{label}-{engine}-", dir=self.tmp_root))
        self.stack.callback(shutil.rmtree, tmp, ignore_errors=True)
        shutil.copytree(shipped.MANIFESTS, tmp / "manifests")
        shutil.copytree(shipped.SKILLS, tmp / "skills")  # the manifests name their image recipes as ../skills/NAME
        data = {"data_dir": str(tmp / "data"), "manifest_dirs": [str(tmp / "manifests")], **extra}
        if engine == "postgresql":
            data["database"] = self.postgres().database(f"bench_{label}_{self.databases}")
            self.databases += 1
        path = tmp / "podbot.yaml"
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        return path

    def postgres(self) -> Any:
        if self.server is None:
            from tests.postgres_server import postgres

            progress("starting PostgreSQL (initdb, pg_ctl)")
            self.server = self.stack.enter_context(postgres())
        return self.server

    def bot(self, path: Path) -> Bot:
        bot = Bot(config.load(str(path), environ={}))
        self.bots.append(bot)
        self.runners.append(bot.runner)  # type: ignore[arg-type]
        return bot

    def stop(self, bot: Bot) -> None:
        if bot in self.bots:
            self.bots.remove(bot)
            bot.stop()

    def worker(self, path: Path, host: str, threads: int | None = None) -> subprocess.Popen:
        """A `podbot worker` process on `path`'s config, as host `host`; its stderr goes to a file beside the config."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("PODBOT_")}
        env.update(PODBOT_CONFIG=str(path), PODBOT_HOST=host)
        argv = WORKER + ([] if threads is None else ["--workers", str(threads)])
        with open(path.parent / f"{host}.log", "ab") as log:
            proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=log, start_new_session=True)
        self.processes.append(proc)
        return proc

    def stop_workers(self) -> None:
        """SIGINT (Huey's graceful stop) to every worker still running, SIGKILL to those not gone after 30 s."""
        for proc in self.processes:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        deadline = time.monotonic() + 30
        for proc in self.processes:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.processes.clear()

    def remove_containers(self) -> int:
        """Remove every container the bench's bots and workers left (they carry each database's instance label)."""
        removed = 0
        for runner in self.runners:
            try:
                for container in runner.containers():
                    runner.remove(container.name)
                    removed += 1
            except Exception as exc:  # the Podman service may be gone already: say so, go on cleaning up
                progress(f"could not sweep containers: {exc}")
        return removed

    def close(self) -> None:
        """Workers, containers and bots; the stack then stops the server and removes the directories."""
        self.stop_workers()
        removed = self.remove_containers()
        if removed:
            progress(f"removed {removed} leftover containers")
        for bot in list(self.bots):
            self.stop(bot)


def log_tail(path: Path, lines: int = 10) -> str:
    """The end of a worker's log (the temporary directory that holds it is removed on the way out)."""
    return f"{path.name}:\n" + "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


# --- 1. message -> queued job ---


def enqueue(setup: Setup, engines: list[str], seconds: float, warmup: int) -> dict[str, dict]:
    bots, counters, sent = {}, {}, {}
    for engine in engines:
        bots[engine] = setup.bot(setup.config(engine, "enqueue"))
        counters[engine] = Counter()
        bots[engine].add_adapter(counters[engine])
        bots[engine].start(0)
        for n in range(warmup):
            send(bots[engine], n)
        sent[engine] = warmup
    latencies: dict[str, list[float]] = {e: [] for e in engines}
    busy = dict.fromkeys(engines, 0.0)
    before = load()
    progress(f"enqueue: {seconds:g} s per engine in {SLICE:g} s turns")
    turn = 0
    while min(busy.values()) < seconds:
        for engine in engines[turn % 2 :] + engines[: turn % 2]:  # who goes first alternates
            begin = time.perf_counter()
            end = begin + min(SLICE, seconds - busy[engine])
            while time.perf_counter() < end:
                latencies[engine].append(send(bots[engine], sent[engine]))
                sent[engine] += 1
            busy[engine] += time.perf_counter() - begin
        turn += 1
    results = {}
    for engine in engines:
        bot = bots[engine]
        wait_until = time.monotonic() + 10
        while not bot.idle([]) and time.monotonic() < wait_until:  # let the sender deliver the last acks
            time.sleep(0.01)
        queued = bot.db.execute("SELECT COUNT(*) FROM jobs WHERE state = ?", (JobState.QUEUED.value,)).fetchone()[0]
        lat = ms(latencies[engine])
        results[engine] = {
            "messages": len(lat),
            "seconds": busy[engine],
            "msg_per_s": len(lat) / busy[engine],
            "p50_ms": pct(lat, 50),
            "p99_ms": pct(lat, 99),
            "max_ms": max(lat),
            "check": {"sent": sent[engine], "ledger_queued": queued, "huey_pending": bot.queue.pending(), "acks": counters[engine].sent},
            "load": [before, load()],
        }
        setup.stop(bot)
    return results


# --- 2. message -> reply ---


def reply(setup: Setup, engines: list[str], runs: int, warmup: int, gap: float) -> dict[str, dict]:
    podbots = {}
    for engine in engines:
        bot = setup.bot(setup.config(engine, "reply"))
        recorder = Recorder()
        bot.add_adapter(recorder)
        bot.start(bot.cfg.workers)
        podbots[engine] = PodbotRun(bot, recorder)
    times: dict[str, list[float]] = {e: [] for e in engines}
    before = load()
    progress(f"reply: {warmup} warm-ups and {runs} runs per engine, alternating, {gap:g} s idle before each")
    for i in range(warmup + runs):
        for engine in engines:
            time.sleep(gap)
            took = podbots[engine]()
            if i >= warmup:
                times[engine].append(took)
    results = {}
    for engine in engines:
        run = podbots[engine]
        lat = ms(times[engine])
        phases = {name: ms(values[warmup:]) for name, values in run.phases.items()}
        results[engine] = {
            "runs": len(lat),
            "workers": run.bot.cfg.workers,
            "p50_ms": pct(lat, 50),
            "p95_ms": pct(lat, 95),
            "mean_ms": statistics.mean(lat),
            "min_ms": min(lat),
            "max_ms": max(lat),
            "phases_p50_ms": {name: statistics.median(v) for name, v in phases.items()},
            "load": [before, load()],
        }
        setup.stop(run.bot)
    setup.remove_containers()
    return results


# --- 3. jobs per second with 1, 2, 4 worker processes ---


def throughput(setup: Setup, engine: str, jobs: int, workers: int, threads: int, timeout: float) -> dict:
    path = setup.config(engine, f"w{workers}", workers=threads)
    bot = setup.bot(path)
    ids = []
    for n in range(jobs):
        replies = bot.receive(
            Message(platform="console", conversation="console", user=f"console:bench-{n}", text="say hello", message_id=f"bench-{n}")
        )
        if len(replies) != 1 or replies[0].job_id is None:
            raise SystemExit(f"'say hello' did not queue a job: {replies}")
        ids.append(replies[0].job_id)
    before = load()
    progress(f"throughput: {engine}, {jobs} jobs queued, starting {workers} worker processes of {threads} threads")
    start = time.time()
    for i in range(workers):
        setup.worker(path, f"bench-w{i + 1}", threads)
    deadline = time.monotonic() + timeout
    while (left := ledger.unfinished(bot.db, ids)) and time.monotonic() < deadline:
        if any(p.poll() is not None for p in setup.processes):
            raise SystemExit("a worker process ended early:\n" + "\n".join(log_tail(f) for f in path.parent.glob("bench-w*.log")))
        time.sleep(0.05)
    after = load()
    setup.stop_workers()
    records = [ledger.get(bot.db, i) for i in ids]
    done = [j for j in records if j is not None and j.finished is not None]
    states: dict[str, int] = {}
    per_host: dict[str, int] = {}
    for job in records:
        assert job is not None
        states[job.state.value] = states.get(job.state.value, 0) + 1
        if job.worker:
            host = job.worker.rsplit(":", 1)[0]
            per_host[host] = per_host.get(host, 0) + 1
    last = max(j.finished for j in done) if done else time.time()
    first = min(j.started for j in done if j.started is not None) if done else start
    setup.stop(bot)
    setup.remove_containers()
    return {
        "engine": engine,
        "workers": workers,
        "threads": threads,
        "jobs": jobs,
        "unfinished": len(left),
        "states": states,
        "jobs_per_worker": dict(sorted(per_host.items())),
        "seconds": last - start,
        "jobs_per_s": len(done) / (last - start),
        "steady_seconds": last - first,
        "steady_jobs_per_s": len(done) / (last - first) if last > first else 0.0,
        "first_start_s": first - start,
        "job_p50_s": statistics.median(j.finished - j.started for j in done if j.started is not None) if done else 0.0,
        "job_mean_s": statistics.mean(j.finished - j.started for j in done if j.started is not None) if done else 0.0,
        "job_max_s": max((j.finished - j.started for j in done if j.started is not None), default=0.0),
        "between_jobs_p50_ms": between_jobs(done) if threads == 1 else None,
        "load": [before, after],
    }


def between_jobs(done: list[Any]) -> float | None:
    """p50 ms from a one-thread worker's end of a job (ledger `finished`) to its claim of the next (`started`):
    the engine's part of each job (Huey's dequeue, the ledger's claim, the end's transaction), without the container."""
    by_worker: dict[str, list[Any]] = {}
    for job in done:
        by_worker.setdefault(job.worker, []).append(job)
    gaps = []
    for jobs in by_worker.values():
        jobs.sort(key=lambda j: j.started)
        gaps += [(b.started - a.finished) * 1000 for a, b in zip(jobs, jobs[1:], strict=False)]
    return statistics.median(gaps) if gaps else None


# --- 4. idle CPU ---


def cpu_ticks(pid: int) -> int:
    """utime + stime of a process, all its threads included (fields 14 and 15 of /proc/PID/stat), in clock ticks."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def server_ticks(server: Any) -> dict[int, int]:
    """CPU ticks of the PostgreSQL server's processes: the postmaster and its children (backends, background workers)."""
    postmaster = int((server.socket_dir.parent / "data" / "postmaster.pid").read_text().split()[0])
    ticks = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(entry.name) == postmaster or int(fields[1]) == postmaster:
            ticks[int(entry.name)] = int(fields[11]) + int(fields[12])
    return ticks


def threads_of(pid: int) -> int:
    return len(list(Path(f"/proc/{pid}/task").iterdir()))


def idle(setup: Setup, engines: list[str], seconds: float, settle: float) -> dict[str, dict]:
    procs, paths = {}, {}
    for engine in engines:
        paths[engine] = setup.config(engine, "idle")
        procs[engine] = setup.worker(paths[engine], f"bench-idle-{engine}")
    progress(f"idle: {len(engines)} `podbot worker` processes with nothing queued; settling {settle:g} s after they register")
    deadline = time.monotonic() + 120
    for engine, proc in procs.items():
        registered = Path(yaml.safe_load(paths[engine].read_text())["data_dir"]) / "processes"
        while not any(registered.glob(f"*-{proc.pid}.json")):  # <host>-<pid>.json (bot/cli/status.py)
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the {engine} worker did not start:\n" + log_tail(paths[engine].parent / f"bench-idle-{engine}.log"))
            time.sleep(0.1)
    time.sleep(settle)
    before = load()
    progress(f"idle: measuring CPU time over {seconds:g} s")
    start = time.monotonic()
    ticks = {e: cpu_ticks(p.pid) for e, p in procs.items()}
    server = server_ticks(setup.server) if setup.server is not None else {}
    time.sleep(seconds)
    elapsed = time.monotonic() - start
    used = {e: cpu_ticks(p.pid) - ticks[e] for e, p in procs.items()}
    server_used = sum(t - server.get(pid, 0) for pid, t in server_ticks(setup.server).items()) if setup.server is not None else 0
    results = {}
    for engine, proc in procs.items():
        results[engine] = {
            "seconds": elapsed,
            "threads": threads_of(proc.pid),
            "cpu_s": used[engine] / TICK,
            "cpu_pct": 100 * used[engine] / TICK / elapsed,
            "load": [before, load()],
        }
        if engine == "postgresql":
            results[engine]["server_cpu_pct"] = 100 * server_used / TICK / elapsed
    setup.stop_workers()
    return results


# --- output ---


def report(out: dict) -> str:
    engines = out["engines"]
    lines = [f"podbot on {' and '.join(engines)}, {out['started']} UTC, load average {out['load_start']} at the start"]
    if "podman" in out:
        p = out["podman"]
        lines[0] += f"; Podman {p['version']}, rootless={p['rootless']}, cgroup {p['cgroup']}"
    rows: list[tuple[str, ...]] = [("figure", *engines, "load at start")]

    def add(label: str, got: dict[str, dict], cell: Callable[[dict], str]) -> None:
        rows.append((label, *(cell(got[e]) if e in got else "-" for e in engines), next(iter(got.values()))["load"][0]))

    if "enqueue" in out:
        add("message -> queued job: msg/s", out["enqueue"], lambda r: f"{r['msg_per_s']:.1f}")
        add("  receive p50 / p99 ms", out["enqueue"], lambda r: f"{r['p50_ms']:.2f} / {r['p99_ms']:.2f}")
    if "reply" in out:
        add("message -> reply: p50 / p95 ms", out["reply"], lambda r: f"{r['p50_ms']:.0f} / {r['p95_ms']:.0f}")
        add("  queue wait p50 ms", out["reply"], lambda r: f"{r['phases_p50_ms']['queue wait']:.1f}")
        add("  container p50 ms", out["reply"], lambda r: f"{r['phases_p50_ms']['container']:.0f}")
    if "throughput" in out:
        t = out["throughput"]
        for w in t["by_workers"]:
            k = w["workers"]
            add(
                f"{k} worker process{'es' if k > 1 else ''}: jobs/s (x vs 1)",
                w["engines"],
                lambda r: f"{r['jobs_per_s']:.2f} (x{r['speedup']:.2f})",
            )
            add("  first start -> last end: jobs/s", w["engines"], lambda r: f"{r['steady_jobs_per_s']:.2f} (x{r['steady_speedup']:.2f})")
            add(
                "  a job's run s / between jobs ms, p50",
                w["engines"],
                lambda r: f"{r['job_p50_s']:.2f} / " + ("-" if r["between_jobs_p50_ms"] is None else f"{r['between_jobs_p50_ms']:.0f}"),
            )
    if "idle" in out:
        add("idle worker: CPU % of one core", out["idle"], lambda r: f"{r['cpu_pct']:.2f}")
        add("  PostgreSQL server meanwhile: %", out["idle"], lambda r: f"{r['server_cpu_pct']:.2f}" if "server_cpu_pct" in r else "-")
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines += ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True))) for r in rows]

    if "enqueue" in out:
        lines.append("enqueue, after the run: " + "; ".join(f"{e}: {r['check']}" for e, r in out["enqueue"].items()))
    if "reply" in out:
        r0 = next(iter(out["reply"].values()))
        lines.append(
            f"reply: {r0['runs']} runs per engine, in-process consumer with {r0['workers']} threads; p50 ms of receive / queue wait /"
            " container / reply: "
            + "; ".join(f"{e} " + " / ".join(f"{v:.1f}" for v in r["phases_p50_ms"].values()) for e, r in out["reply"].items())
        )
    if "throughput" in out:
        t = out["throughput"]
        lines.append(f"throughput: {t['jobs']} `say hello` jobs queued first; worker processes of {t['threads']} Huey threads each:")
        for w in t["by_workers"]:
            for e, r in w["engines"].items():
                lines.append(
                    f"  {e:<10} {r['workers']} proc: {r['seconds']:6.1f} s from start, first job started {r['first_start_s']:.1f} s in,"
                    f" a job's run p50 {r['job_p50_s']:.2f} / mean {r['job_mean_s']:.2f} / max {r['job_max_s']:.1f} s,"
                    f" between jobs p50 {r['between_jobs_p50_ms'] or 0:.0f} ms;"
                    f" {r['states']}; per host {r['jobs_per_worker']}; load {r['load'][0]} -> {r['load'][1]}"
                )
    if "idle" in out:
        lines.append(
            "idle: "
            + "; ".join(
                f"{e} worker {r['cpu_s']:.2f} s CPU in {r['seconds']:.0f} s, {r['threads']} threads" for e, r in out["idle"].items()
            )
        )
    lines.append(f"load average at the end: {out['load_end']}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0, help="enqueue: seconds of sending per engine (default 10)")
    parser.add_argument("--warmup", type=int, default=200, help="enqueue: untimed messages first (default 200)")
    parser.add_argument("--runs", type=int, default=10, help="reply: measured runs per engine (default 10, after 2 warm-ups)")
    parser.add_argument("--gap", type=float, default=0.5, help="reply: idle seconds before each run (default 0.5)")
    parser.add_argument("--jobs", type=int, default=60, help="throughput: jobs queued before the workers start (default 60)")
    parser.add_argument("--workers", default="1,2,4", help="throughput: worker process counts (default 1,2,4)")
    parser.add_argument("--threads", type=int, default=1, help="throughput: Huey threads per worker process (default 1)")
    parser.add_argument("--idle-seconds", type=float, default=30.0, help="idle: seconds of CPU time measured (default 30)")
    parser.add_argument("--settle", type=float, default=5.0, help="idle: seconds after the worker registered before measuring")
    parser.add_argument("--engines", default=",".join(ENGINES), help="comma-separated: sqlite, postgresql (default both)")
    parser.add_argument("--only", action="append", help="run only this part (enqueue, reply, throughput, idle); repeat or comma-separate")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON instead of the table")
    parser.add_argument("--tmp", help="where to create the temporary data directories (default: the system temp dir)")
    args = parser.parse_args()
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    parts = [p.strip() for o in (args.only or [",".join(PARTS)]) for p in o.split(",") if p.strip()]
    counts = [int(w) for w in args.workers.split(",")]
    if not engines or set(engines) - set(ENGINES) or set(parts) - set(PARTS) or min(counts) < 1 or args.runs < 2:
        parser.error(f"--engines from {ENGINES}, --only from {PARTS}, --workers counts >= 1, --runs >= 2")
    signal.signal(signal.SIGTERM, interrupted)  # kill PID cleans up as Ctrl-C does

    out: dict[str, Any] = {"engines": engines, "started": time.strftime("%Y-%m-%d %H:%M", time.gmtime()), "load_start": load()}
    try:
        with ExitStack() as stack:
            setup = Setup(stack, args.tmp)
            try:
                run_parts(setup, out, parts, engines, counts, args)
            finally:
                progress("cleaning up")
                setup.close()  # workers, containers, bots; leaving the stack stops PostgreSQL and removes the directories
    except KeyboardInterrupt:
        progress("interrupted; cleaned up")
        sys.exit(130)
    out["load_end"] = load()
    print(json.dumps(out, indent=2) if args.json else report(out))


def interrupted(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def run_parts(setup: Setup, out: dict, parts: list[str], engines: list[str], counts: list[int], args: argparse.Namespace) -> None:
    if {"reply", "throughput"} & set(parts):
        probe = setup.bot(setup.config(engines[0], "check"))
        progress("checking Podman and the images")
        engine = probe.check_host()
        out["podman"] = {"version": engine.version, "rootless": engine.rootless, "cgroup": engine.cgroup_version}
        setup.stop(probe)
    if "enqueue" in parts:
        out["enqueue"] = enqueue(setup, engines, args.seconds, args.warmup)
    if "reply" in parts:
        out["reply"] = reply(setup, engines, args.runs, 2, args.gap)
    if "throughput" in parts:
        by = []
        for k in counts:  # the engines take turns at each worker count
            by.append(
                {"workers": k, "engines": {e: throughput(setup, e, args.jobs, k, args.threads, 60 + 10 * args.jobs) for e in engines}}
            )
        for e in engines:
            base = next((w["engines"][e] for w in by if w["workers"] == 1), by[0]["engines"][e])
            for w in by:
                r = w["engines"][e]
                r["speedup"] = r["jobs_per_s"] / base["jobs_per_s"]
                r["steady_speedup"] = r["steady_jobs_per_s"] / base["steady_jobs_per_s"] if base["steady_jobs_per_s"] else 0.0
        out["throughput"] = {"jobs": args.jobs, "threads": args.threads, "by_workers": by}
    if "idle" in parts:
        out["idle"] = idle(setup, engines, args.idle_seconds, args.settle)


if __name__ == "__main__":
    main()
