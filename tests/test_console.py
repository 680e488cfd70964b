"""The `podbot` command as a person or a script uses it: real processes, real consumer, real containers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def podbot(config_path: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess:
    env = {**os.environ, "PODBOT_CONFIG": str(config_path)}
    return subprocess.run([sys.executable, "-m", "bot.cli", *args], input=stdin, capture_output=True, text=True, env=env, timeout=300)


def test_piped_chat_answers_every_line_then_exits(podman_ready, config_path: Path) -> None:
    result = podbot(config_path, "chat", "--user", "alice", stdin="/skills\ndf /\n/disk_usage path=/\n/help\n")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.startswith("Skills you may run (3):\n/disk_usage [path=…] — ")
    assert "job 1 queued: disk_usage path=/" in out and "job 2 queued: disk_usage path=/" in out
    assert out.count("Filesystem") == 2
    assert "job 1 disk_usage done in" in out and "job 2 disk_usage done in" in out
    assert "Ask me to run a skill:" in out


def test_jobs_can_run_in_a_separate_worker_process(podman_ready, config_path: Path) -> None:
    env = {**os.environ, "PODBOT_CONFIG": str(config_path)}
    worker = subprocess.Popen([sys.executable, "-m", "bot.cli", "worker"], env=env, stderr=subprocess.PIPE, text=True)
    try:
        result = podbot(config_path, "chat", "--user", "olga", "--workers", "0", stdin="say from the worker\n")
    finally:
        worker.send_signal(signal.SIGINT)
        worker_log = worker.communicate(timeout=60)[1]
    assert result.returncode == 0, result.stderr
    assert "job 1 say done in" in result.stdout and "from the worker" in result.stdout
    assert worker.returncode == 0 and "Huey consumer started" in worker_log


def test_broken_manifest_refuses_to_start(podman_ready, config_path: Path, tmp_path: Path) -> None:
    (tmp_path / "extra-manifests" / "broken.yaml").write_text(
        "name: broken\ndescription: x\nrun: {image: x, command: [x]}\nroles: [user]\nextra: 1\n"
    )
    result = podbot(config_path, "chat", stdin="/help\n")
    assert result.returncode == 1
    assert f"{tmp_path}/extra-manifests/broken.yaml:5:1: unknown key 'extra'" in result.stderr
    assert result.stdout == ""


def test_bad_config_is_reported_with_position(tmp_path: Path) -> None:
    path = tmp_path / "podbot.yaml"
    path.write_text("workers: zero\n")
    result = podbot(path, "chat", stdin="")
    assert result.returncode == 1
    assert f"{path}:1:1: workers: 'zero' is not of type 'integer'" in result.stderr


def test_audit_command_lists_decisions(podman_ready, config_path: Path) -> None:
    podbot(config_path, "chat", "--user", "uma", stdin="/http_check url=http://127.0.0.1:9/\nsay audited\n")
    result = podbot(config_path, "audit", "-n", "10")
    assert result.returncode == 0
    lines = result.stdout.splitlines()
    assert any("console:uma" in line and "denied" in line and "http_check" in line for line in lines)
    assert any("finished" in line and "say" in line for line in lines)
