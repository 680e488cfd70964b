"""The shipped skills that perceive and act on the host and its services, each in its real container:
disk_usage and host_stats (the host's filesystems and processes), pg_query (a real PostgreSQL),
webhook (a real local HTTP server)."""

from __future__ import annotations

import http.server
import json
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from bot import config
from bot.app import Bot
from bot.runtime import images
from bot.runtime.podman import PodmanRunner
from bot.skill import load_all
from tests.conftest import Recorder, make_bot, run_skill, say, write_config
from tests.postgres_server import Postgres, postgres


@pytest.fixture(scope="session")
def skill_images(podman_ready) -> None:
    """The shipped skills' images (the Debian base and the recipes on it), built once if missing or changed."""
    cfg = config.load(environ={"PODBOT_DATA_DIR": tempfile.mkdtemp(prefix="podbot-session-")})
    skills, _ = load_all(list(cfg.manifest_dirs))
    images.ensure_all(PodmanRunner(cfg), skills.values())


@pytest.fixture(scope="module")
def pg() -> Iterator[Postgres]:
    with postgres() as server:
        yield server


def test_disk_usage_reports_the_hosts_filesystem(running) -> None:
    bot, recorder = running
    reply = run_skill(bot, recorder, "uma", "df /var")
    host_mount = subprocess.run(["df", "--output=target", "/var"], capture_output=True, text=True).stdout.split()[-1]
    header, row = reply.code.splitlines()[:2]
    assert header.split()[-2:] == ["Mounted", "on"] and row.split()[-1] == host_mount, reply.code
    assert "failed" not in run_skill(bot, recorder, "uma", "/disk_usage path=/usr/lib").text
    refused = say(bot, "uma", "/disk_usage path=/../etc")
    assert refused[0].job_id is None and "not valid" in refused[0].text


def test_host_stats_sees_the_hosts_memory_and_processes(running) -> None:
    bot, recorder = running
    reply = run_skill(bot, recorder, "olga", "top 5")
    total_mb = int(Path("/proc/meminfo").read_text().split()[1]) // 1024
    lines = reply.code.splitlines()
    mem = next(line for line in lines if line.lstrip().startswith("Mem:"))
    assert abs(int(mem.split()[1]) - total_mb) <= 1, reply.code
    assert "load average:" in lines[0]
    header = next(i for i, line in enumerate(lines) if line.split()[:1] == ["PID"])
    assert len(lines) - header - 1 == 5, reply.code  # the 5 busiest, of the host's processes


@contextmanager
def started(tmp_path: Path, log_dir: Path, **extra) -> Iterator[tuple[Bot, Recorder]]:
    """A real bot on the test config plus `extra` settings, started; stopped afterwards."""
    bot = make_bot(config.load(str(write_config(tmp_path, log_dir, **extra)), environ={}))
    recorder = Recorder()
    bot.add_adapter(recorder)
    bot.start(2, schedules=False)
    try:
        yield bot, recorder
    finally:
        bot.stop()


def test_pg_query_reads_and_the_database_refuses_writes(skill_images, pg: Postgres, tmp_path: Path, log_dir: Path) -> None:
    password = tmp_path / "pg_password"
    password.write_text(pg.reader_password + "\n")
    # slirp4netns with allow_host_loopback: the host's 127.0.0.1 is 10.0.2.2 inside the container.
    with started(
        tmp_path,
        log_dir,
        network_mode="slirp4netns:allow_host_loopback=true",
        secrets={"pg_password": {"file": str(password)}},
        skill_env={"pg_query": {"PG_DSN": pg.dsn("10.0.2.2"), "PG_ROWS": 3}},
    ) as (bot, recorder):
        asked = [
            "sql: select item from orders where id > 1 order by id",
            "sql: select * from generate_series(1, 1000)",
            "sql: insert into orders values (4, 'gpu')",
        ]
        jobs = [say(bot, "olga", text)[0].job_id for text in asked]  # queued together: two workers run them
        ok, cut, write = (recorder.result(job) for job in jobs if job is not None)
        assert " done in " in ok.text and ok.code.split() == ["item", "--------", "cpu", "memory"], ok.code
        assert " done in " in cut.text and cut.code.rstrip().endswith("(cut at 3 rows)") and len(cut.code.splitlines()) == 6
        assert "failed with exit code" in write.text and "cannot execute INSERT in a read-only transaction" in write.code
        assert pg.sql("select count(*) from orders").strip() == "3"
        refused = say(bot, "olga", "sql: select 1; delete from orders")
        assert refused[0].job_id is None and "not valid" in refused[0].text
        assert pg.reader_password not in "".join((r.text or "") + (r.code or "") for r in recorder.replies)


class Hooks(http.server.ThreadingHTTPServer):
    def __init__(self) -> None:
        self.seen: list[tuple[str, dict[str, str], bytes]] = []

        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                server.seen.append((self.path, dict(self.headers), body))
                self.send_response(201)
                self.end_headers()
                self.wfile.write(b'{"pipeline": 77}')

            def log_message(self, *args) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)


def test_webhook_posts_with_the_secret_token(skill_images, tmp_path: Path, log_dir: Path, monkeypatch) -> None:
    hooks = Hooks()
    threading.Thread(target=hooks.serve_forever, daemon=True).start()
    token = "tok-3f9a1c0b2d"
    monkeypatch.setenv("TEST_WEBHOOK_TOKEN", token)
    url = f"http://127.0.0.1:{hooks.server_address[1]}/hooks/deploy"
    settings = {"secrets": {"webhook_token": {"env": "TEST_WEBHOOK_TOKEN"}}, "skill_env": {"webhook": {"WEBHOOK_URL_DEPLOY": url}}}
    try:
        with started(tmp_path, log_dir, **settings) as (bot, recorder):
            _trigger(bot, recorder, hooks, token)
    finally:
        hooks.shutdown()


def _trigger(bot: Bot, recorder: Recorder, hooks: Hooks, token: str) -> None:
    asked = say(bot, "olga", "trigger deploy v1.4.2")[0]  # the shipped webhook waits for an admin's approval
    assert asked.text.startswith(f"job {asked.job_id} awaits approval by admin until "), asked.text
    assert say(bot, "ada", f"/approve {asked.job_id}")[0].text == f"job {asked.job_id} approved; queued: webhook hook=deploy ref=v1.4.2"
    done = recorder.result(asked.job_id)
    assert done.code.splitlines() == ["webhook deploy -> HTTP 201", '{"pipeline": 77}'], done.code
    [(path, headers, body)] = hooks.seen
    assert path == "/hooks/deploy" and headers["Authorization"] == f"Bearer {token}"
    assert json.loads(body) == {"hook": "deploy", "ref": "v1.4.2"}
    denied = say(bot, "olga", "trigger deploy v1.4.3")[0]
    assert (
        say(bot, "ada", f"/deny {denied.job_id} change freeze")[0].text
        == f"job {denied.job_id} denied: webhook hook=deploy ref=v1.4.3: change freeze"
    )
    unknown = say(bot, "olga", "/webhook nope")[0]
    say(bot, "ada", f"/approve {unknown.job_id}")
    assert "no webhook named nope" in recorder.result(unknown.job_id).code and len(hooks.seen) == 1
    assert "127.0.0.1" not in "".join((r.text or "") + (r.code or "") for r in recorder.replies)  # the URL stays in config
