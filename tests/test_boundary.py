"""The error boundary and the process's wiring: no message, job, loop or slow platform knocks the bot over."""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path

from click.testing import CliRunner

from adapters.contract import SimpleAdapter
from bot import config
from bot.app import Bot
from bot.cli import main
from bot.flow import JobState, Reply
from bot.loops import Loops
from bot.runtime.runner import Engine, JobContainer, RunResult, RunSpec
from bot.skill import Skill
from bot.store import audit, ledger, outbox
from bot.understanding.stages import Understood
from tests.conftest import WAIT, Recorder, add_manifest, probe_like, say


class BrokenUnderstanding:
    """Understanding with a bug in it: every free-text message raises."""

    def understand(self, text: str, allowed: Iterable[Skill]) -> Understood:
        raise RuntimeError("a bug in the understanding stage")


class BrokenRunner:
    """A runner whose engine fails in a way nobody planned for."""

    def engine(self) -> Engine:
        return Engine("fake://", "0", True, "v2")

    def run(self, spec: RunSpec) -> RunResult:
        raise RuntimeError("the engine fell over")

    def containers(self) -> list[JobContainer]:
        return []

    def remove(self, name: str) -> None:
        pass

    def image_label(self, image: str, label: str) -> str | None:
        return None

    def build_image(self, context: Path, tag: str, labels: dict[str, str]) -> Iterator[str]:
        return iter(())


def _bot(config_path: Path, **parts) -> Bot:
    return Bot(config.load(str(config_path), environ={}), **parts)


def test_a_failing_message_gets_an_incident_id_an_audit_entry_and_a_log_traceback(config_path: Path, caplog) -> None:
    bot = _bot(config_path, understanding=BrokenUnderstanding())
    with caplog.at_level(logging.ERROR):
        [reply] = say(bot, "uma", "please do something clever")
    found = re.fullmatch(r"Sorry, that failed on my side \(incident ([0-9a-f]{6})\); an admin can find it in podbot's log\.", reply.text)
    assert found, reply.text
    ident = found.group(1)
    [entry] = [e for e in audit.latest(bot.db, 10) if e.event == "error"]
    assert (entry.actor, entry.detail) == ("console:uma", f"incident {ident}")
    [record] = [r for r in caplog.records if f"incident {ident}" in r.getMessage()]
    assert record.exc_info and "a bug in the understanding stage" in str(record.exc_info[1])
    # The next message is handled as usual.
    [skills] = say(bot, "uma", "/skills")
    assert skills.text.startswith("Skills you may run")


def test_an_unexpected_runner_failure_ends_the_job_with_an_incident(config_path: Path) -> None:
    bot = _bot(config_path, runner=BrokenRunner())
    recorder = Recorder()
    bot.add_adapter(recorder)
    bot.start(1, schedules=False, watch=False)
    try:
        [queued] = say(bot, "uma", "/say hello")
        result = recorder.result(queued.job_id)
    finally:
        bot.stop()
    assert re.fullmatch(rf"job {queued.job_id} say failed: the container could not run \(incident [0-9a-f]{{6}}\)", result.text)
    job = ledger.get(bot.db, queued.job_id)
    assert job is not None and job.state == JobState.FAILED


class Gate(SimpleAdapter):
    """A platform whose sends block until the test opens the gate (a rate-limited Discord sleeping 30 s)."""

    platform = "slowchat"

    def __init__(self) -> None:
        self.open = threading.Event()
        self.entered = threading.Event()
        self.sent: list[Reply] = []

    def send(self, reply: Reply) -> None:
        self.entered.set()
        assert self.open.wait(WAIT)
        self.sent.append(reply)


def test_a_platform_that_blocks_never_delays_another(config_path: Path) -> None:
    bot = _bot(config_path)
    gate, recorder = Gate(), Recorder()
    bot.add_adapter(gate)
    bot.add_adapter(recorder)
    bot.start(0, schedules=False, watch=False)
    try:
        outbox.put(bot.db, "t:1", Reply("slowchat:room", "to the slow platform"))
        assert gate.entered.wait(WAIT)
        outbox.put(bot.db, "t:2", Reply("console", "to the console"))
        bot.loops.wake()
        recorder.wait_for(lambda r: r.text == "to the console", "on the console while the other platform is stuck")
        assert gate.sent == []
        gate.open.set()
    finally:
        bot.stop()


class Registrar(SimpleAdapter):
    platform = "native"

    def __init__(self) -> None:
        self.registrations = 0

    def send(self, reply: Reply) -> None:
        pass

    def skills_changed(self) -> None:
        self.registrations += 1


def test_reload_re_registers_native_commands_only_when_the_set_changed(config_path: Path, tmp_path: Path) -> None:
    bot = _bot(config_path)
    registrar = Registrar()
    bot.add_adapter(registrar)
    add_manifest(tmp_path, probe_like("fresh", "echo fresh"))
    [reply] = say(bot, "ada", "/reload")
    assert reply.text.startswith("Reloaded ") and registrar.registrations == 1
    assert "fresh" in [s.name for s in bot.skills()]
    (tmp_path / "extra-manifests" / "zbad.yaml").write_text("name: zbad\n")
    [reply] = say(bot, "ada", "/reload")
    assert reply.text.startswith("Manifests have 3 errors") and registrar.registrations == 1


def test_loops_survive_a_failing_step(caplog) -> None:
    calls: list[int] = []
    second = threading.Event()

    def step() -> None:
        calls.append(1)
        if len(calls) == 1:
            raise ValueError("first pass fails")
        second.set()

    loops = Loops()
    with caplog.at_level(logging.ERROR):
        loops.every("flaky", 0.01, step)
        assert second.wait(WAIT)
        loops.stop()
    assert any("the flaky loop failed" in r.getMessage() for r in caplog.records)


def test_outbox_command_lists_what_is_pending(config_path: Path) -> None:
    bot = _bot(config_path)
    outbox.put(bot.db, "job:7:0", Reply("telegram:42", "job 7 say done in 0.10 s"))
    result = CliRunner().invoke(main, ["--config", str(config_path), "outbox"])
    assert result.exit_code == 0, result.output
    assert result.output.endswith("1 reply pending\n")
    result = CliRunner().invoke(main, ["--config", str(config_path), "outbox", "--json"])
    [item] = json.loads(result.output)
    assert (item["key"], item["to"], item["attempts"], item["text"]) == ("job:7:0", "telegram:42", 0, "job 7 say done in 0.10 s")
