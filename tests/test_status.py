"""`podbot status` over real `podbot run` and `podbot worker` processes: processes, queue, outbox, schedules, models, exit codes."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import REPO, WAIT, add_manifest, cli, probe_like, write_config

NEW_YEAR = [{"cron": "0 3 1 1 *", "timezone": "Europe/Paris", "reply_to": "console:alerts", "as": "console:olga", "name": "new_year"}]


def status(env: dict[str, str]) -> tuple[int, dict]:
    shown = cli("status", "--json", env=env)
    return shown.returncode, json.loads(shown.stdout)


def registered(data_dir: Path, process: subprocess.Popen) -> None:
    """Wait until `process` has registered itself for `podbot status`."""
    deadline = time.monotonic() + WAIT
    while not (data_dir / "processes" / f"{socket.gethostname()}-{process.pid}.json").exists():
        assert time.monotonic() < deadline and process.poll() is None
        time.sleep(0.05)


def read_until(bot: subprocess.Popen, text: str) -> None:
    """Read the piped console's output until a line contains `text` (its replies are printed as they come)."""
    assert bot.stdout is not None
    while text not in (line := bot.stdout.readline()):
        assert line, f"the console ended before {text!r}"


def test_status_follows_the_processes_queue_schedules_and_models(podman_ready, models_dir: Path, tmp_path: Path, log_dir: Path) -> None:
    add_manifest(tmp_path, probe_like("greeting", "echo happy new year", schedule=NEW_YEAR))
    path = write_config(tmp_path, log_dir, model={"dir": str(models_dir)})
    env = {**os.environ, "PODBOT_CONFIG": str(path)}
    argv = [sys.executable, "-m", "bot.cli"]
    bot = subprocess.Popen(
        [*argv, "run", "--user", "olga", "--workers", "0"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=REPO, env=env, text=True
    )
    worker = None
    try:
        registered(tmp_path / "data", bot)
        code, data = status(env)
        assert code == 0 and data["problems"] == [] and data["pid"] == bot.pid
        assert [(p["role"], p["pid"], p["workers"]) for p in data["processes"]] == [("run", bot.pid, 0)]
        [entry] = data["schedules"]
        assert entry["name"] == "new_year" and entry["timezone"] == "Europe/Paris" and not entry["paused"]
        assert entry["next"].endswith("-01-01T03:00+01:00")
        assert data["models"]["embeddings"]["on"] and data["models"]["model"]["on"]

        assert bot.stdin is not None
        bot.stdin.write("say waiting for a worker\n")
        bot.stdin.flush()
        read_until(bot, "job 1 queued")
        text = cli("status", env=env)  # the same report, for people
        assert text.returncode == 2 and "queue     1 queued, 0 running" in text.stdout
        assert "problem   1 jobs queued and no process runs jobs (`podbot worker`, or `podbot run` without --workers 0)" in text.stdout
        assert f"process   run        pid {bot.pid}" in text.stdout
        assert "schedule  new_year (greeting) 0 3 1 1 * Europe/Paris: next " in text.stdout

        worker = subprocess.Popen([*argv, "worker"], cwd=REPO, env=env, stderr=subprocess.DEVNULL)
        read_until(bot, "job 1 say done")
        registered(tmp_path / "data", worker)
        code, data = status(env)
        assert code == 0 and data["queue"] == {"queued": 0, "running": 0}, data
        assert sorted(p["role"] for p in data["processes"]) == ["run", "worker"]
        bot.stdin.close()
        assert bot.wait(WAIT) == 0
    finally:
        bot.kill()
        if worker is not None:
            worker.send_signal(signal.SIGINT)
            worker.wait(WAIT)
    code, data = status(env)
    assert code == 1 and not data["running"] and data["processes"] == []
