"""A scripted `Runner` for tests whose subject is not the container: no Podman, and a run takes no time unless told to.

    runner = FakeRunner()
    bot = Bot(cfg, runner=runner)
    runner.attach(bot.db)                     # lets `script("skill_name", …)` and `runs_of` know a run's skill
    runner.script("flaky", Scripted(exit_code=7, output="trying\n"))
    runner.script(["sh", "-c", "sleep 30"], Scripted(delay=30))
    runner.script(lambda spec: spec.network, Scripted(exit_code=1, output="offline\n"))

What an unscripted run does: it succeeds with exit code 0 (after `FakeRunner(delay=…)`
seconds, none by default), and its output is what the command would print if it
were `echo` or `printf -- '%s\\n'`: for argv ["echo", *words] the words joined by
spaces plus a newline, for ["printf", "--", "%s\\n", *args] each argument on its own
line (so `say hello` answers "hello\\n" and `send_alert` "ALERT: …\\n", exactly as the
real containers do); for any other argv the whole argv joined by spaces plus a
newline (`uptime` answers "uptime\\n").

A scripted run is matched by, newest script first: a callable on the RunSpec; a
str, the skill's name (needs `attach`); or a list/tuple, a prefix of the argv.
It "runs" for `delay` seconds, then ends with `exit_code` and `output`. A delay
longer than the spec's timeout ends after spec.timeout seconds with timed_out=True
(and `output` as the last output), as the real runner does. While a run is
under way its container is listed by containers(); remove(name) ends it at once
(that is how /cancel and recovery stop it) with exit code 137, like a SIGKILL.
A run of an image the runner does not have (it has the base image, and whatever
build_image made) raises Unavailable, as a missing image does for real.

Every RunSpec is appended to `runs` (argv, env, mounts, network, timeout …) for
assertions. Thread-safe: Huey runs jobs on several worker threads.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from bot.errors import Unavailable
from bot.runtime import images
from bot.runtime.runner import Engine, JobContainer, RunResult, RunSpec
from bot.store import ledger
from bot.store.database import Database

KILLED = 137  # what a container removed mid-run exits with (128 + SIGKILL)
# About as long as a real container takes. Bot.receive enqueues a job before it puts the job's "queued" ack
# in the outbox, so a run that ends at once can, now and then, have its result sent before that ack; tests
# that check the order in which a platform gets the replies give each run this long (FakeRunner(delay=RUN_TIME)).
RUN_TIME = 0.2

Match = Callable[[RunSpec], bool] | str | Sequence[str]


@dataclass(frozen=True)
class Scripted:
    """How a matching run ends: after `delay` seconds, with `exit_code` and `output`."""

    exit_code: int = 0
    output: str = ""
    delay: float = 0.0
    truncated: bool = False


def default_output(argv: list[str]) -> str:
    if argv[:3] == ["printf", "--", "%s\\n"]:
        return "".join(f"{arg}\n" for arg in argv[3:])
    words = argv[1:] if argv[:1] == ["echo"] else argv
    return " ".join(words) + "\n"


class FakeRunner:
    """The `Runner` protocol (bot.runtime.runner) with scripted results; see the module docstring."""

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay  # how long an unscripted run takes
        self.runs: list[RunSpec] = []
        self.builds: list[str] = []  # tags build_image was asked for
        self._lock = threading.Lock()
        self._scripts: list[tuple[Match, Scripted]] = []
        self._running: dict[str, tuple[JobContainer, threading.Event]] = {}
        self._skills: dict[int, str] = {}  # job id -> skill, as resolved when the run started
        self._labels: dict[str, dict[str, str]] | None = None  # image -> labels; the base image is "built"
        self._db: Database | None = None
        self._names = itertools.count(1)

    # --- test controls ---

    def attach(self, db: Database) -> FakeRunner:
        """Look up a run's skill in this ledger (for skill-name scripts and runs_of)."""
        self._db = db
        return self

    def script(self, match: Match, result: Scripted) -> None:
        """Make runs that `match` end as `result`; a later script wins over an earlier one."""
        if isinstance(match, str) and self._db is None:
            raise ValueError("matching a skill by name needs attach(db) first")
        with self._lock:
            self._scripts.append((match, result))

    def runs_of(self, skill: str) -> list[RunSpec]:
        with self._lock:
            return [spec for spec in self.runs if self._skills.get(spec.job_id) == skill]

    # --- the Runner protocol ---

    def engine(self) -> Engine:
        return Engine("fake://runner", "fake", True, "v2")

    def run(self, spec: RunSpec) -> RunResult:
        started = time.monotonic()
        skill = self._skill_of(spec.job_id)
        with self._lock:
            scripts = list(self._scripts)
        scripted = self._scripted(scripts, spec, skill)  # outside the lock: a match may call back into the runner
        with self._lock:
            if self._labels_of(spec.image) is None:
                raise Unavailable(f"the image {spec.image} is not built here: run `podbot images build`")
            self.runs.append(spec)
            self._skills[spec.job_id] = skill or ""
            name = f"podbot-fake-{spec.job_id}-{spec.attempt}-{next(self._names)}"
            stopped = threading.Event()
            self._running[name] = (JobContainer(name, spec.job_id, spec.attempt), stopped)
        try:
            timed_out = scripted.delay > spec.timeout
            removed = stopped.wait(spec.timeout if timed_out else scripted.delay) if scripted.delay > 0 else False
        finally:
            with self._lock:
                self._running.pop(name, None)
        duration = time.monotonic() - started
        if removed:
            return RunResult(KILLED, scripted.output, scripted.truncated, False, duration)
        if timed_out:
            return RunResult(None, scripted.output, scripted.truncated, True, duration)
        return RunResult(scripted.exit_code, scripted.output, scripted.truncated, False, duration)

    def containers(self) -> list[JobContainer]:
        with self._lock:
            return [container for container, _ in self._running.values()]

    def remove(self, name: str) -> None:
        with self._lock:
            found = self._running.pop(name, None)
        if found is not None:
            found[1].set()

    def has_image(self, image: str) -> bool:
        with self._lock:
            return self._labels_of(image) is not None

    def image_label(self, image: str, label: str) -> str | None:
        with self._lock:
            labels = self._labels_of(image)
        return None if labels is None else labels.get(label)

    def build_image(self, context: Path, tag: str, labels: dict[str, str]) -> Iterator[str]:
        yield f"fake build of {tag} from {context / 'Containerfile'}"
        with self._lock:
            self._labels_of(tag)
            assert self._labels is not None
            self._labels[tag] = dict(labels)
            self.builds.append(tag)

    # --- inside ---

    def _labels_of(self, image: str) -> dict[str, str] | None:
        if self._labels is None:  # the base image is there and up to date, as on a host after `podbot images build`
            self._labels = {images.BASE_IMAGE: {images.CONTENT_LABEL: images.content_hash()}}
        return self._labels.get(image)

    def _skill_of(self, job_id: int) -> str | None:
        if self._db is None:
            return None
        job = ledger.get(self._db, job_id)
        return job.skill if job is not None else None

    def _scripted(self, scripts: list[tuple[Match, Scripted]], spec: RunSpec, skill: str | None) -> Scripted:
        for match, result in reversed(scripts):
            if isinstance(match, str):
                hit = match == skill
            elif callable(match):
                hit = bool(match(spec))
            else:
                hit = list(spec.argv[: len(match)]) == list(match)
            if hit:
                return result
        return Scripted(0, default_output(spec.argv), self.delay)
