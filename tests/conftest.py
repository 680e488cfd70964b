"""Shared fixtures: a real bot (real Huey consumer, real SQLite files, real rootless Podman).

`bot_factory` / `running` run skills in real containers; `fake_factory` / `fake_running` are the same
bot with a scripted FakeRunner (tests.fake_runner) instead, for tests whose subject is not the container.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml

from adapters.contract import SimpleAdapter
from bot import config
from bot.app import Bot
from bot.flow import Message, Reply
from bot.runtime import images
from bot.runtime.podman import PodmanRunner
from bot.runtime.runner import Engine, Runner
from tests.fake_runner import FakeRunner

REPO = Path(__file__).resolve().parent.parent
WAIT = 120  # seconds before a test gives up waiting; a guard against hangs, not a speed check

PROBE = {
    "name": "probe",
    "description": "Test probe: runs a shell snippet in the container.",
    "parameters": {"type": "object", "properties": {"script": {"type": "string"}}, "required": ["script"]},
    "run": {"image": images.BASE_IMAGE, "command": ["sh", "-c", "{script}"], "timeout": "3s"},
    "roles": ["operator"],
    "invocation": "explicit",  # a shell snippet: only ever from `/probe script=…`, never from free text
}


class Recorder(SimpleAdapter):
    """A console-platform adapter that keeps every reply it is asked to send."""

    platform = "console"

    def __init__(self) -> None:
        self.replies: list[Reply] = []
        self.refuse = False
        self._cond = threading.Condition()

    def send(self, reply: Reply) -> None:
        if self.refuse:
            raise ConnectionError("platform unreachable")
        with self._cond:
            self.replies.append(reply)
            self._cond.notify_all()

    def wait_for(self, predicate, what: str) -> list[Reply]:
        deadline = time.monotonic() + WAIT
        with self._cond:
            while True:
                found = [r for r in self.replies if predicate(r)]
                if found:
                    return found
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no reply {what}; got {[r.text for r in self.replies]}")
                self._cond.wait(left)

    def result(self, job_id: int) -> Reply:
        """The reply that reports job `job_id`'s end (not its queued or approval notices)."""
        found = self.wait_for(lambda r: r.job_id == job_id and " queued" not in r.text and not r.actions, f"ending job {job_id}")
        return found[0]


@pytest.fixture(scope="session")
def podman_ready() -> Engine:
    cfg = config.load(environ={"PODBOT_DATA_DIR": tempfile.mkdtemp(prefix="podbot-session-")})
    runner = PodmanRunner(cfg)
    engine = runner.engine()
    images.ensure_base(runner)
    return engine


@pytest.fixture
def log_dir() -> Iterator[Path]:
    # The rootless container owner must be able to read it, so not under pytest's private tmp.
    path = Path(tempfile.mkdtemp(prefix="podbot-logs-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def write_config(tmp_path: Path, log_dir: Path, **extra) -> Path:
    extra_dir = tmp_path / "extra-manifests"
    extra_dir.mkdir(exist_ok=True)
    (extra_dir / "probe.yaml").write_text(yaml.safe_dump(PROBE, sort_keys=False))
    data = {
        "data_dir": str(tmp_path / "data"),
        "manifest_dirs": [str(REPO / "manifests"), str(extra_dir)],
        "roles": {"admin": ["console:ada"], "operator": ["console:olga"]},
        "mounts": {"logs": str(log_dir)},
        "alert_conversation": "console:alerts",
        "network_mode": "host",
        **extra,
    }
    path = tmp_path / "podbot.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.fixture(scope="session")
def pg_server() -> Iterator:
    """One real PostgreSQL server for the session (tests.postgres_server); each test that wants one gets its own database."""
    from tests.postgres_server import postgres

    with postgres() as server:
        yield server


_databases = iter(range(1, 10**9))


@pytest.fixture
def database(request) -> str | None:
    """The `database:` setting of this test's bot: None (SQLite, the default) or a fresh PostgreSQL database.

    A module's tests that use it run on both engines with `pytestmark = BOTH_ENGINES`; one test, with `@BOTH_ENGINES`.
    """
    if getattr(request, "param", "sqlite") == "sqlite":
        return None
    return request.getfixturevalue("pg_server").database(f"podbot_{next(_databases)}")


BOTH_ENGINES = pytest.mark.both_engines


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if metafunc.definition.get_closest_marker("both_engines") and "database" in metafunc.fixturenames:
        metafunc.parametrize("database", ["sqlite", "postgresql"], indirect=True)


@pytest.fixture
def config_path(tmp_path: Path, log_dir: Path, database: str | None) -> Path:
    return write_config(tmp_path, log_dir, **({"database": database} if database else {}))


def make_bot(cfg: config.Config, runner: Runner | None = None) -> Bot:
    """Bot(cfg, runner); a FakeRunner is attached to the bot's ledger (so it can match skills by name)."""
    bot = Bot(cfg, runner=runner)
    if isinstance(runner, FakeRunner):
        runner.attach(bot.db)
    return bot


def platform_bot(tmp: Path, roles: dict, platforms: dict, runner: Runner | None = None) -> tuple[Bot, Path]:
    """A bot configured for one platform's fake server (Podman unless a runner is given), and its log dir (remove it afterwards)."""
    logs = Path(tempfile.mkdtemp(prefix="podbot-logs-"))
    logs.chmod(0o755)
    path = write_config(tmp, logs, roles=roles, platforms=platforms)
    return make_bot(config.load(str(path), environ={}), runner), logs


@contextmanager
def connected(bot: Bot, environ: dict[str, str]) -> Iterator:
    """Start the bot and its one configured platform adapter; stop both afterwards."""
    import adapters

    [adapter] = adapters.configured(bot.cfg, environ=environ)
    bot.add_adapter(adapter)
    bot.start(2)
    adapter.start(bot)
    try:
        assert adapter.connected.wait(WAIT), adapter.error
        yield adapter
    finally:
        adapter.stop()
        bot.stop()


@contextmanager
def platform_session(tmp: Path, roles: dict, platforms: dict, environ: dict[str, str], runner: Runner | None = None) -> Iterator:
    """(bot, adapter): a bot for one platform's fake server, started and connected; all of it removed afterwards."""
    bot, logs = platform_bot(tmp, roles, platforms, runner)
    try:
        with connected(bot, environ) as adapter:
            yield bot, adapter
    finally:
        shutil.rmtree(logs, ignore_errors=True)


def wait_for_text(path: Path, text: str) -> str:
    """The file's text once `text` appears in it (a process's log, written as it goes)."""
    deadline = time.monotonic() + WAIT
    while text not in path.read_text():
        assert time.monotonic() < deadline, f"{text!r} never appeared in:\n{path.read_text()}"
        time.sleep(0.05)
    return path.read_text()


def cli(*args: str, env: dict[str, str] | None = None, stdin: str = "") -> subprocess.CompletedProcess:
    """`podbot ARGS` as a separate process, from the repository, with its output captured."""
    command = [sys.executable, "-m", "bot.cli", *args]
    return subprocess.run(command, input=stdin, capture_output=True, text=True, cwd=REPO, env=env, timeout=300)


def add_manifest(tmp_path: Path, manifest: dict) -> None:
    """Add a test-only skill next to `probe` (call before the bot starts, or rely on reload)."""
    extra_dir = tmp_path / "extra-manifests"
    extra_dir.mkdir(exist_ok=True)
    (extra_dir / f"{manifest['name']}.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))


def probe_like(name: str, script: str, **extra) -> dict:
    """A test skill that runs a fixed shell script (operator role)."""
    return {
        **PROBE,
        "name": name,
        "description": f"Test skill {name}.",
        "parameters": {"type": "object", "properties": {}},
        "run": {**PROBE["run"], "command": ["sh", "-c", script]},
        **extra,
    }


def _factory(config_path: Path, runner: Callable[[], Runner | None]) -> Iterator:
    started: list[Bot] = []

    def make(workers: int = 2, **options) -> tuple[Bot, Recorder]:
        bot = make_bot(config.load(str(config_path), environ={}), runner())
        recorder = Recorder()
        bot.add_adapter(recorder)
        bot.start(workers, **options)
        started.append(bot)
        return bot, recorder

    yield make
    for bot in started:
        bot.stop()


@pytest.fixture
def bot_factory(podman_ready, config_path: Path) -> Iterator:
    """Start bots on the test config: make(workers=2, **start_options) -> (bot, recorder)."""
    yield from _factory(config_path, lambda: None)


@pytest.fixture
def fake_factory(config_path: Path) -> Iterator:
    """Like bot_factory, but each bot runs its skills on a new FakeRunner (bot.runner); no Podman needed."""
    yield from _factory(config_path, FakeRunner)


@pytest.fixture(scope="session")
def models_dir() -> Path:
    """The bundled models, installed (or verified) where `podbot models install` puts them by default."""
    from bot.understanding import model_files

    path = config.load().model.dir
    model_files.install(path, lambda *_: None, lambda *_: None)
    return path


@pytest.fixture
def running(bot_factory) -> tuple[Bot, Recorder]:
    return bot_factory(2, schedules=False)


@pytest.fixture
def fake_running(fake_factory) -> tuple[Bot, Recorder]:
    """A started bot (2 workers, no schedules) whose bot.runner is a FakeRunner."""
    return fake_factory(2, schedules=False)


_ids = iter(range(1, 10**9))


def say(bot: Bot, user: str, text: str) -> list[Reply]:
    """`user` (a console name) says `text` to the bot; returns the immediate replies."""
    msg = Message(
        platform="console", conversation="console", user=f"console:{user}", text=text, user_name=user, message_id=f"t{next(_ids)}"
    )
    return bot.receive(msg)


def run_skill(bot: Bot, recorder: Recorder, user: str, text: str) -> Reply:
    """Say `text`, expect a job, and return the reply that reports its end."""
    replies = say(bot, user, text)
    assert replies and replies[0].job_id is not None and "queued" in replies[0].text, [r.text for r in replies]
    return recorder.result(replies[0].job_id)
