"""The one place that talks to Podman: run a skill's container, build and look up images.

Every run is locked down the same way: no network unless the manifest asks
for it and config allows it, read-only root with a tmpfs /tmp, all
capabilities dropped, no-new-privileges, a non-root user, explicit ulimits,
a wall-clock timeout, capped output, a job label, and removal afterwards.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import podman
import podman.errors
import requests

from bot import host
from bot.config import Config
from bot.models import RunResult

log = logging.getLogger(__name__)

JOB_LABEL = "podbot.job"
ATTEMPT_LABEL = "podbot.attempt"
# Which podbot (its database) started a container: several bots may share one Podman user.
INSTANCE_LABEL = "podbot.instance"
CONTAINER_USER = "65534:65534"


@dataclass(frozen=True)
class Engine:
    """What the connected Podman is, as far as a run's limits are concerned."""

    url: str
    version: str
    rootless: bool
    cgroup_version: str

    @property
    def enforces_resource_limits(self) -> bool:
        return not (self.rootless and self.cgroup_version == "v1")


@dataclass(frozen=True)
class JobContainer:
    name: str
    job_id: int
    attempt: int


@dataclass(frozen=True)
class RunSpec:
    image: str
    argv: list[str]
    job_id: int
    attempt: int
    timeout: float
    network: bool = False
    env: dict[str, str] | None = None
    mounts: list[tuple[str, str]] | None = None  # (host path, container path), read-only


_local = threading.local()
_engine_lock = threading.Lock()
_engines: dict[str, Engine] = {}


def _client(url: str) -> podman.PodmanClient:
    clients = getattr(_local, "clients", None)
    if clients is None:
        clients = _local.clients = {}
    if url not in clients:
        clients[url] = podman.PodmanClient(base_url=url)
    return clients[url]


def connect(cfg: Config) -> Engine:
    """Make sure the API answers (starting it if needed) and describe it. Cached per owner and socket."""
    key = f"{cfg.podman.user}|{cfg.podman.socket}"
    with _engine_lock:
        if key not in _engines:
            url = host.ensure_service(cfg)
            try:
                info = _client(url).info()
            except (podman.errors.APIError, requests.RequestException) as exc:
                raise host.HostError(f"the Podman API at {url} does not answer: {exc}") from None
            engine = Engine(
                url, info["version"]["Version"], bool(info["host"]["security"]["rootless"]), str(info["host"].get("cgroupVersion", ""))
            )
            if not engine.enforces_resource_limits:
                log.info(
                    "rootless Podman on cgroup %s ignores memory, CPU and pids limits; "
                    "runs keep their ulimits (nofile, nproc), timeout and output cap",
                    engine.cgroup_version,
                )
            _engines[key] = engine
        return _engines[key]


def _memory_bytes(text: str) -> int:
    return int(text[:-1]) * {"k": 1024, "m": 1024**2, "g": 1024**3}[text[-1]]


def _read_capped(container, limit: int) -> tuple[str, bool]:
    chunks, size = [], 0
    for chunk in container.logs(stdout=True, stderr=True):
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            break
    data = b"".join(chunks)
    truncated = len(data) > limit
    return data[:limit].decode("utf-8", errors="replace"), truncated


def run(cfg: Config, spec: RunSpec) -> RunResult:
    """Run one container to completion (or timeout) and return its capped output."""
    engine = connect(cfg)
    client = _client(engine.url)
    limits = cfg.limits
    options = dict(
        command=spec.argv,
        user=CONTAINER_USER,
        network_mode=cfg.network_mode if spec.network else "none",
        read_only=True,
        mounts=[{"type": "tmpfs", "target": "/tmp", "size": "16m", "mode": "1777"}]
        + [{"type": "bind", "source": src, "target": dst, "read_only": True} for src, dst in spec.mounts or []],
        cap_drop=["ALL"],
        no_new_privileges=True,
        ulimits=[
            {"Name": "nofile", "Soft": limits.nofile, "Hard": limits.nofile},
            {"Name": "nproc", "Soft": limits.nproc, "Hard": limits.nproc},
        ],
        labels={JOB_LABEL: str(spec.job_id), ATTEMPT_LABEL: str(spec.attempt), INSTANCE_LABEL: instance(cfg)},
        environment=spec.env or {},
        runtime=cfg.podman.runtime,
        # A cancel or a sweep removes a running container: kill it at once instead of Podman's 10 s grace.
        stop_timeout=0,
        log_config={"Type": "k8s-file"},
    )
    if engine.enforces_resource_limits:
        options.update(pids_limit=limits.pids, mem_limit=_memory_bytes(limits.memory), nano_cpus=int(limits.cpus * 1e9))
    started = time.monotonic()
    container = client.containers.create(spec.image, **options)
    try:
        container.start()
        timed_out = False
        try:
            exit_code = container.wait(condition="exited", interval="10ms", timeout=spec.timeout)
        except (podman.errors.APIError, requests.RequestException):
            # podman-py reports the HTTP read timeout as an APIError: ask the container itself.
            container.reload()
            if container.status == "exited":
                raise
            timed_out = True
            container.kill(signal="KILL")
            exit_code = container.wait(condition="exited", interval="10ms", timeout=30)
        duration = time.monotonic() - started
        output, truncated = _read_capped(container, limits.output_bytes)
        return RunResult(None if timed_out else exit_code, output, truncated, timed_out, duration)
    finally:
        _remove(container)


def instance(cfg: Config) -> str:
    return hashlib.sha256(str(cfg.db_path).encode()).hexdigest()[:12]


def _remove(container) -> None:
    try:
        container.remove(force=True)
    except podman.errors.NotFound:
        pass  # removed meanwhile (a cancel, or recovery's sweep)


def _ours(cfg: Config) -> list:
    # podman-py sends one label filter only (a list is sent as its string), so the rest is matched here.
    client = _client(connect(cfg).url)
    return client.containers.list(all=True, filters={"label": f"{INSTANCE_LABEL}={instance(cfg)}"})


def remove_job_containers(cfg: Config, job_id: int) -> int:
    """Stop and remove any container of this job (a cancelled job, or one whose worker died)."""
    found = [c for c in _ours(cfg) if c.labels.get(JOB_LABEL) == str(job_id)]
    for container in found:
        _remove(container)
    return len(found)


def job_containers(cfg: Config) -> list[JobContainer]:
    """This podbot's containers that still exist."""
    return [JobContainer(c.name, int(c.labels.get(JOB_LABEL, 0)), int(c.labels.get(ATTEMPT_LABEL, 0))) for c in _ours(cfg)]


def remove_container(cfg: Config, name: str) -> None:
    try:
        _remove(_client(connect(cfg).url).containers.get(name))
    except podman.errors.NotFound:
        pass


def image_label(cfg: Config, name: str, label: str) -> str | None:
    """A label of a local image; None when the image or the label is missing."""
    client = _client(connect(cfg).url)
    if not client.images.exists(name):
        return None
    return (client.images.get(name).labels or {}).get(label)


def build_image(cfg: Config, context: Path, tag: str, labels: dict[str, str]) -> Iterator[str]:
    """Build `tag` from context/Containerfile, yielding the build's output lines."""
    client = _client(connect(cfg).url)
    _, lines = client.images.build(path=str(context), dockerfile="Containerfile", tag=tag, rm=True, labels=labels)
    for line in lines:
        text = json.loads(line).get("stream", "") if line else ""
        if text.strip():
            yield text.rstrip()
