"""The FakeRunner itself: what the tests that use it may rely on."""

from __future__ import annotations

import threading

import pytest

from bot.errors import Unavailable
from bot.runtime import images
from bot.runtime.runner import JobContainer, RunSpec
from tests.fake_runner import KILLED, FakeRunner, Scripted


def spec(*argv: str, job_id: int = 1, timeout: float = 5.0, image: str = images.BASE_IMAGE) -> RunSpec:
    return RunSpec(image, list(argv), job_id, 1, timeout)


def test_default_output_scripts_newest_first_and_records() -> None:
    runner = FakeRunner()
    assert runner.run(spec("echo", "hello", "world")).output == "hello world\n"
    assert runner.run(spec("df", "-h", "/")).output == "df -h /\n"
    runner.script(["sh", "-c"], Scripted(exit_code=3, output="boom\n"))
    runner.script(lambda s: s.argv[-1] == "exit 4", Scripted(exit_code=4))
    assert (runner.run(spec("sh", "-c", "x")).exit_code, runner.run(spec("sh", "-c", "exit 4")).exit_code) == (3, 4)
    assert [s.argv[0] for s in runner.runs] == ["echo", "df", "sh", "sh"]
    with pytest.raises(Unavailable, match="not built here"):
        runner.run(spec("true", image="localhost/missing:latest"))
    with pytest.raises(ValueError, match="attach"):
        runner.script("say", Scripted())


def test_a_delay_past_the_timeout_times_out_after_the_timeout() -> None:
    runner = FakeRunner()
    runner.script(["sleep"], Scripted(output="started\n", delay=60))
    result = runner.run(spec("sleep", timeout=0.1))
    assert (result.timed_out, result.exit_code, result.output) == (True, None, "started\n")
    assert result.duration >= 0.1  # it waited out the timeout, as a real run does


def test_remove_ends_a_running_container_at_once() -> None:
    runner = FakeRunner()
    runner.script(["sleep"], Scripted(delay=60))
    results = []
    thread = threading.Thread(target=lambda: results.append(runner.run(spec("sleep", job_id=7, timeout=120))))
    thread.start()
    while not runner.containers():
        thread.join(0.01)
    [container] = runner.containers()
    assert (container.job_id, container.attempt) == (7, 1) and isinstance(container, JobContainer)
    runner.remove(container.name)
    runner.remove(container.name)  # already gone: nothing happens
    thread.join()
    assert runner.containers() == [] and results[0].exit_code == KILLED and not results[0].timed_out
