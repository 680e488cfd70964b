"""The `podbot` command as a person or a script uses it: real processes, real consumer, real containers."""

from __future__ import annotations

import os
import pty
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from adapters.console import completions
from bot.cli.serve import unsuccessful_jobs
from bot.flow import JobState
from bot.store import ledger
from bot.store.database import SqliteDatabase, open_database
from tests.conftest import WAIT, cli, write_config

REPO = Path(__file__).resolve().parent.parent


def podbot(config_path: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess:
    return cli(*args, env={**os.environ, "PODBOT_CONFIG": str(config_path)}, stdin=stdin)


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
    assert worker.returncode == 0 and "job consumer started: 2 workers" in worker_log


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


def chat_process(config_path: Path, user: str, **popen) -> subprocess.Popen:
    env = {**os.environ, "PODBOT_CONFIG": str(config_path)}
    argv = [sys.executable, "-m", "bot.cli", "chat", "--user", user]
    pipes = {"stdin": subprocess.PIPE, "stdout": subprocess.PIPE, "stderr": subprocess.PIPE}
    return subprocess.Popen(argv, env=env, text=True, **{**pipes, **popen})


def tell(chat: subprocess.Popen, line: str) -> str:
    """Send one line to a running chat and return the first line it prints back."""
    chat.stdin.write(line + "\n")
    chat.stdin.flush()
    return chat.stdout.readline()


def test_each_console_person_sees_only_their_replies_and_the_shared_ones(podman_ready, config_path: Path) -> None:
    from bot import config
    from bot.flow import Reply
    from bot.store import outbox

    db = open_database(None, config.load(str(config_path), environ={}).data_dir)
    outbox.put(db, "test:olga", Reply("console:olga", "for olga only"))
    outbox.put(db, "test:shared", Reply("console", "for any console"))
    uma = podbot(config_path, "chat", "--user", "uma", stdin="/whoami\n")
    assert uma.returncode == 0, uma.stderr
    assert "You are console:uma" in uma.stdout and "for any console" in uma.stdout and "for olga only" not in uma.stdout
    olga = podbot(config_path, "chat", "--user", "olga", stdin="/whoami\n")
    assert "for olga only" in olga.stdout and "for any console" not in olga.stdout  # shown once, by uma's console


def test_a_question_belongs_to_its_person_while_others_chat(podman_ready, config_path: Path) -> None:
    olga = chat_process(config_path, "olga")
    try:
        assert tell(olga, "/probe") == "Which script for probe?\n"
        uma = podbot(config_path, "chat", "--user", "uma", stdin="echo not for olga\n")
        assert uma.returncode == 0, uma.stderr
        assert "say text=not for olga" in uma.stdout and "Which script" not in uma.stdout and "probe" not in uma.stdout
        # Not `echo from olga`: that is a request of its own (say's pattern), which a question never swallows.
        ack = tell(olga, "printf 'from olga\\n'")
        assert ack.startswith("job ") and ack.endswith(" queued: probe script=printf 'from olga\\n'\n"), ack
    finally:
        rest, _ = olga.communicate(timeout=WAIT)  # closes its input: the chat ends once its job has answered
    assert "\nfrom olga\n" in rest and "not for olga" not in rest


def test_alerts_to_the_default_conversation_reach_the_console(podman_ready, tmp_path: Path, log_dir: Path) -> None:
    path = write_config(tmp_path, log_dir, alert_conversation="console")
    result = podbot(path, "chat", "--user", "olga", stdin="/send_alert disk full\nyes\n")
    assert result.returncode == 0, result.stderr
    assert "job 1 queued: send_alert message=disk full; the result goes to console\n" in result.stdout
    assert "\nALERT: disk full\n" in result.stdout


def test_skill_output_cannot_drive_the_terminal(podman_ready, config_path: Path) -> None:
    result = podbot(config_path, "chat", "--user", "olga", stdin="/probe script='printf \"a\\033[2Jb\\000c\\n\"'\n")
    assert result.returncode == 0, result.stderr
    assert "\na\\x1b[2Jb\\x00c\n" in result.stdout
    assert "\x1b" not in result.stdout and "\x00" not in result.stdout


def test_a_closed_output_ends_the_chat(podman_ready, config_path: Path) -> None:
    chat = chat_process(config_path, "uma")
    assert tell(chat, "/whoami").startswith("You are console:uma")
    chat.stdout.close()  # as `podbot chat | head -1` does once it has its line
    chat.stdin.write("/skills\n")
    chat.stdin.close()
    assert chat.wait(WAIT) == 0
    errors = chat.stderr.read()
    assert "Traceback" not in errors and "Exception ignored" not in errors


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["SIGINT", "SIGTERM"])
def test_a_signal_stops_a_piped_chat(podman_ready, config_path: Path, sig: int, code: int) -> None:
    # A script's background job starts with SIGINT ignored: Ctrl-C and kill must still stop the chat.
    chat = chat_process(config_path, "uma", preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    assert tell(chat, "/whoami").startswith("You are console:uma")
    chat.send_signal(sig)
    assert chat.wait(WAIT) == code  # stdin is still open: only the signal can have ended it
    assert "Traceback" not in chat.stderr.read()
    chat.stdin.close()
    chat.stdout.close()


def test_piped_chat_exits_1_when_a_job_it_started_did_not_succeed(podman_ready, config_path: Path) -> None:
    result = podbot(config_path, "chat", "--user", "olga", stdin="say fine\n/probe script='exit 3'\n")
    assert result.returncode == 1, result.stderr
    assert "job 1 say done" in result.stdout and "job 2 probe failed with exit code 3" in result.stdout
    assert "podbot: not every job succeeded: job 2 failed" in result.stderr


def test_tab_completes_commands_and_skill_names() -> None:
    names = ["help", "skills", "schedules", "say", "disk_usage"]
    assert completions("/s", names) == ["/say ", "/schedules ", "/skills "]
    assert completions("/di", names) == ["/disk_usage "]
    assert completions("/help sa", names) == ["say "]
    assert completions("/say sk", names) == [] and completions("df /", names) == [] and completions("s", names) == []


def test_a_terminal_chat_edits_lines_and_recalls_history(podman_ready, config_path: Path) -> None:
    """A real pseudo-terminal: Tab completes, the up arrow recalls the last line, and history outlives the chat."""
    env = {**os.environ, "PODBOT_CONFIG": str(config_path), "TERM": "xterm"}
    argv = [sys.executable, "-m", "bot.cli", "chat", "--user", "ada"]
    pid, fd = pty.fork()
    if pid == 0:
        os.chdir(REPO)
        os.execve(sys.executable, argv, env)
    seen = b""
    ended = (0, 0)

    def until(text: str, times: int = 1) -> None:
        """Wait for the `times`-th `text` and the prompt after it: keys typed before readline has the terminal may be lost."""
        nonlocal seen
        while seen.count(text.encode()) < times or b"> " not in seen.rsplit(text.encode(), 1)[1]:
            ready, _, _ = select.select([fd], [], [], WAIT)
            assert ready, f"{text!r} and a prompt never came: {seen.decode(errors='replace')}"
            seen += os.read(fd, 4096)

    try:
        until("Ctrl-D quits.")
        os.write(fd, b"/whoa\t\r")  # Tab completes /whoami
        until("You are console:ada")
        os.write(fd, b"\x1b[A\r")  # the up arrow: the last line again, never the escape sequence as a message
        until("You are console:ada", 2)
        os.write(fd, b"\x04")  # Ctrl-D
        deadline = time.monotonic() + WAIT  # a guard against a hang, not a speed check
        while not (ended := os.waitpid(pid, os.WNOHANG))[0] and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        if not ended[0]:
            os.kill(pid, signal.SIGKILL)
        os.close(fd)
    assert os.waitstatus_to_exitcode(ended[1]) == 0
    assert b"I don't know" not in seen
    data_dir = Path(yaml.safe_load(config_path.read_text())["data_dir"])
    assert (data_dir / "console_history").read_text().splitlines() == ["/whoami "]  # as completed; a repeat is kept once
    assert (data_dir / "console_history").stat().st_mode & 0o077 == 0


def test_only_this_chats_own_successful_jobs_make_exit_0(tmp_path: Path) -> None:
    db = SqliteDatabase(tmp_path / "podbot.db")
    began = time.time()
    old = ledger.create(db, "say", {}, "console:olga", "console:olga", state=JobState.FAILED)
    db.execute("UPDATE jobs SET created = ? WHERE id = ?", (began - 60, old.id))  # named by `/job 1`, not started here
    someone_elses = ledger.create(db, "say", {}, "console:ada", "console:ada", state=JobState.FAILED)
    ok = ledger.create(db, "say", {}, "console:olga", "console:olga", state=JobState.SUCCEEDED)
    assert unsuccessful_jobs(db, [old.id, someone_elses.id, ok.id], "console:olga", began) == []
    late = ledger.create(db, "probe", {}, "console:olga", "console:olga", state=JobState.TIMED_OUT)
    denied = ledger.create(db, "probe", {}, "console:olga", "console:olga", state=JobState.DENIED)
    assert unsuccessful_jobs(db, [ok.id, late.id, denied.id, late.id], "console:olga", began) == [
        f"job {late.id} timed_out",
        f"job {denied.id} denied",
    ]
