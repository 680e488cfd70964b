"""The one place that talks to Podman: `PodmanRunner`, the real `Runner`.

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
from pathlib import Path
from typing import Any

import podman
import podman.errors
import requests

from bot.config import Config
from bot.errors import Unavailable
from bot.runtime import host
from bot.runtime.runner import Engine, JobContainer, RunResult, RunSpec

log = logging.getLogger(__name__)

JOB_LABEL = "podbot.job"
ATTEMPT_LABEL = "podbot.attempt"
# Which podbot (its database) started a container: several bots may share one Podman user.
INSTANCE_LABEL = "podbot.instance"
CONTAINER_USER = "65534:65534"


def instance(cfg: Config) -> str:
    return hashlib.sha256(str(cfg.db_path).encode()).hexdigest()[:12]


def _memory_bytes(text: str) -> int:
    return int(text[:-1]) * {"k": 1024, "m": 1024**2, "g": 1024**3}[text[-1]]


def _read_capped(container: Any, limit: int) -> tuple[str, bool]:
    chunks, size = [], 0
    for chunk in container.logs(stdout=True, stderr=True):
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            break
    data = b"".join(chunks)
    truncated = len(data) > limit
    return data[:limit].decode("utf-8", errors="replace"), truncated


def _remove(container: Any) -> None:
    try:
        container.remove(force=True)
    except podman.errors.NotFound:
        pass  # removed meanwhile (a cancel, or recovery's sweep)


class PodmanRunner:
    """Rootless Podman through its API socket; one per process, shared by every thread."""

    def __init__(self, cfg: Config):
        self.cfg = cfg
        self._instance = instance(cfg)
        self._lock = threading.Lock()
        self._engine: Engine | None = None
        self._local = threading.local()  # one API client per thread: podman-py's session is not thread-safe

    def engine(self) -> Engine:
        with self._lock:
            if self._engine is None:
                url = host.ensure_service(self.cfg)
                try:
                    info = self._client_for(url).info()
                except (podman.errors.APIError, requests.RequestException) as exc:
                    raise Unavailable(f"the Podman API at {url} does not answer: {exc}") from None
                engine = Engine(
                    url, info["version"]["Version"], bool(info["host"]["security"]["rootless"]), str(info["host"].get("cgroupVersion", ""))
                )
                if not engine.enforces_resource_limits:
                    log.info(
                        "rootless Podman on cgroup %s ignores memory, CPU and pids limits; "
                        "runs keep their ulimits (nofile, nproc), timeout and output cap",
                        engine.cgroup_version,
                    )
                self._engine = engine
            return self._engine

    def _client_for(self, url: str) -> podman.PodmanClient:
        client = getattr(self._local, "client", None)
        if client is None:
            client = self._local.client = podman.PodmanClient(base_url=url)
        return client

    def _client(self) -> podman.PodmanClient:
        return self._client_for(self.engine().url)

    def run(self, spec: RunSpec) -> RunResult:
        engine = self.engine()
        client = self._client()
        limits = self.cfg.limits
        options: dict[str, Any] = dict(
            command=spec.argv,
            user=CONTAINER_USER,
            network_mode=self.cfg.network_mode if spec.network else "none",
            read_only=True,
            mounts=[{"type": "tmpfs", "target": "/tmp", "size": "16m", "mode": "1777"}]
            + [{"type": "bind", "source": src, "target": dst, "read_only": True} for src, dst in spec.mounts],
            cap_drop=["ALL"],
            no_new_privileges=True,
            ulimits=[
                {"Name": "nofile", "Soft": limits.nofile, "Hard": limits.nofile},
                {"Name": "nproc", "Soft": limits.nproc, "Hard": limits.nproc},
            ],
            labels={JOB_LABEL: str(spec.job_id), ATTEMPT_LABEL: str(spec.attempt), INSTANCE_LABEL: self._instance},
            environment=spec.env,
            runtime=self.cfg.podman.runtime,
            # A cancel or a sweep removes a running container: kill it at once instead of Podman's 10 s grace.
            stop_timeout=0,
            log_config={"Type": "k8s-file"},
        )
        if engine.enforces_resource_limits:
            options.update(pids_limit=limits.pids, mem_limit=_memory_bytes(limits.memory), nano_cpus=int(limits.cpus * 1e9))
        started = time.monotonic()
        try:
            container = client.containers.create(spec.image, **options)
        except podman.errors.ImageNotFound:
            raise Unavailable(f"the image {spec.image} is not built here: run `podbot images build`") from None
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

    def containers(self) -> list[JobContainer]:
        # podman-py sends one label filter only (a list is sent as its string), so the job label is read here.
        found = self._client().containers.list(all=True, filters={"label": f"{INSTANCE_LABEL}={self._instance}"})
        return [JobContainer(c.name, int(c.labels.get(JOB_LABEL, 0)), int(c.labels.get(ATTEMPT_LABEL, 0))) for c in found]

    def remove(self, name: str) -> None:
        try:
            _remove(self._client().containers.get(name))
        except podman.errors.NotFound:
            pass

    def image_label(self, image: str, label: str) -> str | None:
        client = self._client()
        if not client.images.exists(image):
            return None
        return (client.images.get(image).labels or {}).get(label)

    def build_image(self, context: Path, tag: str, labels: dict[str, str]) -> Iterator[str]:
        _, lines = self._client().images.build(path=str(context), dockerfile="Containerfile", tag=tag, rm=True, labels=labels)
        for line in lines:
            text = json.loads(line).get("stream", "") if line else ""
            if text.strip():
                yield text.rstrip()
