"""The one place that talks to Podman: `PodmanRunner`, the real `Runner`.

Every run is locked down the same way: no network unless the manifest asks
for it and config allows it, read-only root with a tmpfs /tmp, all
capabilities dropped, no-new-privileges, a non-root user, explicit ulimits,
a wall-clock timeout, capped output, a job label, and removal afterwards.

Output is bounded three times: the log file on disk (conmon starts it over at
a size), what podbot reads of it (a stream closed at the cap), and the run
itself (killed when it goes on writing far past the cap).
"""

from __future__ import annotations

import hashlib
import json
import logging
import struct
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import podman
import podman.errors
import requests
import urllib3.exceptions

from bot.config import Config, Limits
from bot.errors import Unavailable
from bot.runtime import host, secret_files
from bot.runtime.runner import Engine, JobContainer, RunResult, RunSpec
from bot.store.database import shown_url

log = logging.getLogger(__name__)

JOB_LABEL = "podbot.job"
ATTEMPT_LABEL = "podbot.attempt"
# Which podbot (its database) started a container: several bots may share one Podman user.
INSTANCE_LABEL = "podbot.instance"
CONTAINER_USER = "65534:65534"

# k8s-file stores every line with a ~46-byte timestamp and stream tag, so a file of 64 × the
# cap holds the first output_bytes of any output, even of empty lines, before conmon starts it over.
LOG_FILE_FACTOR = 64
# Past twice the cap a run is not printing a long answer but running away: it is killed.
STOP_FACTOR = 2
PULL_TIMEOUT = 300.0  # seconds a `run.pull: missing` may take at most (more if the run's own timeout is longer)
READ_CHUNK = 64 * 1024  # the most read from a log stream at once, whatever Podman's frame sizes


def instance(cfg: Config) -> str:
    """Which podbot's containers these are: a digest of its database (a file, or a server and database)."""
    where = shown_url(cfg.database) if cfg.database else str(cfg.data_dir / "podbot.db")
    return hashlib.sha256(where.encode()).hexdigest()[:12]


def _memory_bytes(text: str) -> int:
    return int(text[:-1]) * {"k": 1024, "m": 1024**2, "g": 1024**3}[text[-1]]


def _payloads(raw: BinaryIO) -> Iterator[bytes]:
    """The output carried in Podman's multiplexed log frames, in pieces of at most READ_CHUNK bytes.

    Each frame is an 8-byte header (stream, three zero bytes, big-endian size) and its
    payload. Reading large blocks and splitting them here keeps up with a line-a-frame
    flood, which one read per frame (podman-py's way) does not.
    """
    pending, left = b"", 0  # an incomplete header; payload bytes still due in the current frame
    while block := raw.read(READ_CHUNK):
        data, at, out = pending + block, 0, []
        while at < len(data):
            if left:
                out.append(payload := data[at : at + left])
                at, left = at + len(payload), left - len(payload)
            elif len(data) - at >= 8:
                (left,) = struct.unpack_from(">4xL", data, at)
                at += 8
            else:
                break
        pending = data[at:]
        if out:
            yield b"".join(out)


@contextmanager
def _log_stream(container: Any, follow: bool) -> Iterator[Iterator[bytes]]:
    """stdout and stderr as written so far (or, following, until the container ends); closed on leaving.

    podman-py's own `logs()` reads the whole log before returning unless streamed,
    and a streamed one leaves the response open: this reads only what is used.
    """
    params = {"follow": follow, "stdout": True, "stderr": True}
    response = container.client.get(f"/containers/{container.id}/logs", params=params, stream=True)
    try:
        response.raise_for_status()
        yield _payloads(response.raw)
    finally:
        response.close()


def _head(pieces: Iterator[bytes], limit: int) -> bytes:
    """The first `limit` bytes and one more when there are more (the mark of a cut)."""
    kept = bytearray()
    for piece in pieces:
        kept += piece[: limit + 1 - len(kept)]
        if len(kept) > limit:
            break
    return bytes(kept)


def _decode(data: bytes, limit: int) -> tuple[str, bool]:
    return data[:limit].decode("utf-8", errors="replace"), len(data) > limit


def _kill(container: Any) -> bool:
    """Kill a running container; False when it had ended already (by itself, or killed by the other thread)."""
    try:
        container.kill(signal="KILL")
    except podman.errors.APIError:
        container.reload()
        if container.status == "running":
            raise
        return False
    return True


def _wait(container: Any, seconds: float) -> int | None:
    """The exit code, or None when the container still runs after `seconds`."""
    try:
        return int(container.wait(condition="exited", interval="10ms", timeout=seconds))
    except (podman.errors.APIError, requests.RequestException):
        # podman-py reports the HTTP read timeout as an APIError: ask the container itself.
        container.reload()
        if container.status == "exited":
            return int(container.attrs["State"]["ExitCode"])  # it ended just as the wait gave up
        return None


@dataclass(frozen=True)
class _Watched:
    """What the output watch saw of a run."""

    head: bytes | None  # the first output_bytes + 1 bytes, once it read that far
    seen: int  # bytes it read in all
    stopped: bool  # it killed the run


class _OutputWatch:
    """Follows a run's output from a thread of its own; kills the run once it passes STOP_FACTOR × the cap.

    Once it has read past the cap, what it kept is the run's output: reading the log
    again would take long after a flood, and conmon may have started the file over.
    """

    def __init__(self, url: str, container_id: str, limit: int) -> None:
        self._url, self._id, self._limit = url, container_id, limit
        self._ended = threading.Event()
        self._verdict = threading.Lock()  # held while killing, so that `end` returns what really happened
        self._kept = bytearray()  # only grows until it holds limit + 1 bytes
        self._seen = 0
        self._stopped = False
        threading.Thread(target=self._watch, name=f"output-watch-{container_id[:12]}", daemon=True).start()

    def end(self) -> _Watched:
        """The run is over: stop watching."""
        with self._verdict:
            self._ended.set()
            head = bytes(self._kept) if len(self._kept) > self._limit else None
            return _Watched(head, self._seen, self._stopped)

    def _watch(self) -> None:
        try:
            with podman.PodmanClient(base_url=self._url) as client:
                container = client.containers.prepare_model({"Id": self._id})  # no inspect: the watch starts sooner
                with _log_stream(container, follow=True) as pieces:
                    self._follow(container, pieces)
        except (podman.errors.APIError, requests.RequestException, urllib3.exceptions.HTTPError):
            pass  # the run ended and its container went meanwhile: nothing to stop

    def _follow(self, container: Any, pieces: Iterator[bytes]) -> None:
        for piece in pieces:
            if self._ended.is_set():
                return
            self._kept += piece[: self._limit + 1 - len(self._kept)]
            self._seen += len(piece)
            if self._seen > STOP_FACTOR * self._limit:
                self._kill(container)
                return

    def _kill(self, container: Any) -> None:
        with self._verdict:
            if not self._ended.is_set():
                self._stopped = _kill(container)


def _output(container: Any, watched: _Watched, limit: int) -> tuple[str, bool]:
    """The run's output, cut at `limit`, and whether it was cut."""
    if watched.head is not None:
        return _decode(watched.head, limit)
    with _log_stream(container, follow=False) as pieces:
        data = _head(pieces, limit)
    output, truncated = _decode(data, limit)
    # Less left than the watch saw: conmon started the file over, and the start of the output is gone.
    return output, truncated or watched.seen > len(data)


def _ulimits(limits: Limits, engine: Engine) -> list[dict[str, Any]]:
    ulimits: list[dict[str, Any]] = [
        {"Name": "nofile", "Soft": limits.nofile, "Hard": limits.nofile},
        {"Name": "nproc", "Soft": limits.nproc, "Hard": limits.nproc},
    ]
    if not engine.enforces_resource_limits:
        # The data segment (heap and private mappings), per process. Not the address space ("as"):
        # runc applies rlimits to itself before it execs, and its Go runtime needs ~1 GB of that.
        memory = _memory_bytes(limits.memory)
        ulimits.append({"Name": "data", "Soft": memory, "Hard": memory})
    return ulimits


def _network(mode: str) -> dict[str, Any]:
    """Podman's network options for config `network_mode`; `slirp4netns:OPT,OPT` passes slirp4netns options
    (allow_host_loopback=true: the host's 127.0.0.1 is 10.0.2.2 in the container)."""
    name, _, options = mode.partition(":")
    if name == "slirp4netns" and options:
        return {"network_mode": name, "network_options": {name: options.split(",")}}
    return {"network_mode": mode}


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
                        "rootless Podman on cgroup %s ignores memory, CPU and pids limits; runs keep their ulimits "
                        "(nofile, nproc, and data: memory per process), timeout and output cap",
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
        self.engine()
        self._ensure_image(spec)
        with secret_files.staged(host.owner(self.cfg), spec.job_id, spec.secret_files) as secret_binds:
            return self._run(spec, secret_binds)

    def _ensure_image(self, spec: RunSpec) -> None:
        """podbot never pulls unless the manifest opts in; a missing image is one line saying how to get it."""
        if self.has_image(spec.image):
            return
        if not spec.pull:
            raise Unavailable(f"the image {spec.image} is not here: run `podbot images build` (or give the manifest run.pull: missing)")
        # A registry that cannot be reached would hold the pull for minutes: bounded like the run itself.
        reason = "the registry sent no image"
        with podman.PodmanClient(base_url=self.engine().url, timeout=max(spec.timeout, PULL_TIMEOUT)) as puller:
            try:
                # Podman reports a failed pull inside the stream, not as an HTTP error.
                events: Iterator[Any] = puller.images.pull(spec.image, stream=True, decode=True)  # type: ignore[assignment]
                for event in events:
                    if isinstance(event, dict) and event.get("error"):
                        reason = str(event["error"])
            except (podman.errors.APIError, requests.RequestException) as exc:
                reason = str(exc) or type(exc).__name__
        if not self.has_image(spec.image):
            raise Unavailable(f"the image {spec.image} is not here and pulling it failed: {reason.splitlines()[0][:200]}")

    def _run(self, spec: RunSpec, secret_binds: list[tuple[str, str]]) -> RunResult:
        engine = self.engine()
        client = self._client()
        limits = self.cfg.limits
        binds = [*spec.mounts, *secret_binds]
        options: dict[str, Any] = dict(
            command=spec.argv,
            user=CONTAINER_USER,
            **_network(self.cfg.network_mode if spec.network else "none"),
            read_only=True,
            mounts=[{"type": "tmpfs", "target": "/tmp", "size": "16m", "mode": "1777"}]
            + [{"type": "bind", "source": src, "target": dst, "read_only": True} for src, dst in binds],
            cap_drop=["ALL"],
            no_new_privileges=True,
            ulimits=_ulimits(limits, engine),
            labels={JOB_LABEL: str(spec.job_id), ATTEMPT_LABEL: str(spec.attempt), INSTANCE_LABEL: self._instance},
            environment=spec.env,
            runtime=self.cfg.podman.runtime,
            # A cancel or a sweep removes a running container: kill it at once instead of Podman's 10 s grace.
            stop_timeout=0,
            log_config={"Type": "k8s-file", "Config": {"size": LOG_FILE_FACTOR * limits.output_bytes}},
        )
        if spec.host_pid:
            options["pid_mode"] = "host"
        if engine.enforces_resource_limits:
            options.update(pids_limit=limits.pids, mem_limit=_memory_bytes(limits.memory), nano_cpus=int(limits.cpus * 1e9))
        started = time.monotonic()
        container = client.containers.create(spec.image, **options)
        try:
            container.start()
            watch = _OutputWatch(engine.url, container.id, limits.output_bytes)
            try:
                exit_code = _wait(container, spec.timeout)
            finally:
                watched = watch.end()
            timed_out = False
            if exit_code is None and not watched.stopped:
                timed_out = _kill(container)  # False: it ended by itself just now
            if exit_code is None:
                exit_code = _wait(container, 30)
            duration = time.monotonic() - started
            output, truncated = _output(container, watched, limits.output_bytes)
            return RunResult(None if timed_out else exit_code, output, truncated, timed_out, duration, watched.stopped)
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

    def has_image(self, image: str) -> bool:
        return bool(self._client().images.exists(image))

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
