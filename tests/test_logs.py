"""The operator's log: job lines with podbot's ids, JSON lines on request, rotation, nothing in the interactive chat."""

from __future__ import annotations

import json
import logging
import os
import pty
import subprocess
import sys
import threading
from pathlib import Path

from bot import config, logs
from tests.conftest import REPO, cli, wait_for_text, write_config


def test_json_lines_name_the_job_skill_person_and_outcome(podman_ready, tmp_path: Path, log_dir: Path) -> None:
    path = write_config(tmp_path, log_dir, log_format="json")
    chat = cli("chat", "--user", "olga", env={**os.environ, "PODBOT_CONFIG": str(path)}, stdin="say hello log\n")
    assert chat.returncode == 0, chat.stderr
    lines = [json.loads(line) for line in (tmp_path / "data" / "podbot.log").read_text().splitlines()]
    ended = [line for line in lines if line.get("outcome") == "succeeded"]
    assert ended and {k: ended[0][k] for k in logs.FIELDS} == {"job": 1, "skill": "say", "person": "console:olga", "outcome": "succeeded"}
    assert ended[0]["message"].startswith("job 1 say for console:olga: succeeded exit=0")
    assert not [line for line in lines if line["logger"].startswith("huey")], "Huey's task-id lines stay out of the log"


def test_the_file_log_rotates_and_takes_thread_exceptions(tmp_path: Path) -> None:
    environ = {"PODBOT_DATA_DIR": str(tmp_path), "PODBOT_LOG_MAX_BYTES": "4096", "PODBOT_LOG_BACKUPS": "2"}
    cfg = config.load(environ=environ)
    root = logging.getLogger()
    before, hook = list(root.handlers), threading.excepthook
    try:
        logs.setup(cfg, verbose=False, to_stderr=logs.QUIET)
        for n in range(200):
            logging.getLogger("test").warning("line %d %s", n, "x" * 60)
        thread = threading.Thread(target=lambda: 1 / 0, name="doomed")
        thread.start()
        thread.join()
    finally:
        for handler in set(root.handlers) - set(before):
            root.removeHandler(handler)
            handler.close()
        threading.excepthook = hook
        logging.captureWarnings(False)
    names = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("podbot.log"))
    assert names == ["podbot.log", "podbot.log.1", "podbot.log.2"]
    assert all((tmp_path / name).stat().st_size <= 4096 for name in names)
    text = (tmp_path / "podbot.log").read_text()
    assert "uncaught in doomed" in text and "ZeroDivisionError" in text


def test_processes_sharing_the_log_follow_each_others_rotation(tmp_path: Path) -> None:
    file = tmp_path / "podbot.log"
    first, second = (logs.SharedRotatingFile(file, maxBytes=200, backupCount=3) for _ in range(2))
    record = logging.LogRecord("test", logging.INFO, __file__, 1, "x" * 150, None, None)
    first.emit(record)
    first.emit(record)  # full: the first rotates
    second.emit(logging.LogRecord("test", logging.INFO, __file__, 1, "after", None, None))
    for handler in (first, second):
        handler.close()
    assert (tmp_path / "podbot.log.1").exists() and "after" in file.read_text()


def test_warnings_go_to_the_log_not_into_the_interactive_chat(podman_ready, tmp_path: Path, log_dir: Path) -> None:
    # No models in this data dir: plain text that no pattern claims makes the understanding stage warn.
    path = write_config(tmp_path, log_dir)
    env = {**os.environ, "PODBOT_CONFIG": str(path)}
    log = tmp_path / "data" / "podbot.log"
    log.parent.mkdir()
    log.touch()  # the chat appends to it
    leader, follower = pty.openpty()
    argv = [sys.executable, "-m", "bot.cli", "chat", "--user", "ada"]
    chat = subprocess.Popen(argv, stdin=follower, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO, env=env, text=True)
    os.close(follower)
    try:
        os.write(leader, b"what is the weather like in paris\n")
        wait_for_text(log, "not found at")
        os.write(leader, b"\x04")  # Ctrl-D ends the chat
        out, err = chat.communicate(timeout=120)
    finally:
        os.close(leader)
    assert chat.returncode == 0, err
    assert "not found at" not in err and "Traceback" not in err and "WARNING" not in err
    assert "podbot models install" in err  # the one start line, said before the chat begins


def test_run_with_nothing_to_serve_fails_with_the_reason(podman_ready, config_path: Path) -> None:
    env = {**os.environ, "PODBOT_CONFIG": str(config_path)}
    run = subprocess.run(
        [sys.executable, "-m", "bot.cli", "run"], stdin=subprocess.DEVNULL, capture_output=True, text=True, cwd=REPO, env=env
    )
    assert run.returncode == 1
    assert "no platform and no gateway is configured and there is no console" in run.stderr
