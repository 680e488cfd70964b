"""The runner seam: what podbot needs from a container engine, as one small protocol.

`PodmanRunner` (bot.runtime.podman) is the real one and the only code that
talks to Podman; tests of everything else may pass a scripted runner instead.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol


@dataclass(frozen=True)
class RunSpec:
    """One locked-down run of a skill's container."""

    image: str
    argv: list[str]
    job_id: int
    attempt: int
    timeout: float
    network: bool = False
    env: dict[str, str] = field(default_factory=dict, repr=False)  # may hold secrets: never in a repr or a log
    mounts: list[tuple[str, str]] = field(default_factory=list)  # (host path, container path), read-only
    secret_files: dict[str, str] = field(default_factory=dict, repr=False)  # container path -> a secret's value
    host_pid: bool = False  # see the host's processes (`run.pid: host`)
    pull: bool = False  # pull the image when it is not here (`run.pull: missing`)


@dataclass(frozen=True)
class RunResult:
    """What a container run produced."""

    exit_code: int | None
    output: str
    truncated: bool
    timed_out: bool
    duration: float
    stopped_for_output: bool = False  # killed because it went on writing far past the output cap


@dataclass(frozen=True)
class JobContainer:
    """A container this podbot started for a job, found on the engine."""

    name: str
    job_id: int
    attempt: int


@dataclass(frozen=True)
class Engine:
    """What the connected engine is, as far as a run's limits are concerned."""

    url: str
    version: str
    rootless: bool
    cgroup_version: str

    @property
    def enforces_resource_limits(self) -> bool:
        return not (self.rootless and self.cgroup_version == "v1")


class Runner(Protocol):
    def engine(self) -> Engine:
        """Connect (starting the engine's API if needed) and describe it; raises Unavailable with how to fix it."""
        ...

    def run(self, spec: RunSpec) -> RunResult:
        """Run one container to its end or its timeout; raises Unavailable when the engine or the image is missing."""
        ...

    def containers(self) -> list[JobContainer]:
        """This podbot's job containers that still exist."""
        ...

    def remove(self, name: str) -> None:
        """Kill and remove a container; nothing happens when it is already gone."""
        ...

    def has_image(self, image: str) -> bool:
        """Whether the image is here (podbot never pulls unless a manifest opts in)."""
        ...

    def image_label(self, image: str, label: str) -> str | None:
        """A label of a local image; None when the image or the label is missing."""
        ...

    def build_image(self, context: Path, tag: str, labels: dict[str, str]) -> Iterator[str]:
        """Build `tag` from context/Containerfile, yielding the build's output lines."""
        ...


def remove_job_containers(runner: Runner, job_id: int, attempt: int | None = None) -> int:
    """Stop and remove every container of one job (cancelled), or of one attempt (its worker died); how many there were."""
    found = [c for c in runner.containers() if c.job_id == job_id and attempt in (None, c.attempt)]
    for container in found:
        runner.remove(container.name)
    return len(found)
