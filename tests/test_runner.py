"""What a skill's container can and cannot do: rootless, locked down, timed, capped, removed."""

from __future__ import annotations

import io
import os
import re
import struct
import time
from pathlib import Path

import podman
import podman.errors
import pytest

from bot import config
from bot.errors import Unavailable
from bot.flow import JobState, Reply
from bot.runtime import podman as podman_runner
from bot.runtime.podman import LOG_FILE_FACTOR, PodmanRunner
from bot.store import ledger
from tests.conftest import WAIT, add_manifest, probe_like, run_skill, say

CAP = 65536  # limits.output_bytes by default


def probe(running, script: str):
    bot, recorder = running
    return run_skill(bot, recorder, "olga", f"/probe script={script!r}"), bot


def test_the_socket_belongs_to_a_rootless_podman(podman_ready) -> None:
    assert podman_ready.rootless is True
    assert podman_ready.url.startswith("unix://")


def test_container_is_locked_down(running) -> None:
    script = (
        "id -u; grep CapEff /proc/self/status; grep NoNewPrivs /proc/self/status; "
        "touch /etc/x 2>/dev/null && echo root-writable || echo root-read-only; "
        "touch /tmp/x && echo tmp-writable; "
        "ls /sys/class/net; ulimit -n; ulimit -u; "
        "wget -q -O- http://127.0.0.1:9/ 2>&1 | head -1"
    )
    reply, _ = probe(running, script)
    lines = reply.code.splitlines()
    assert lines[0] == "65534"  # nobody inside the container
    assert lines[1].split() == ["CapEff:", "0000000000000000"]
    assert lines[2].split() == ["NoNewPrivs:", "1"]
    assert lines[3:5] == ["root-read-only", "tmp-writable"]
    assert lines[5] == "lo"  # --network none: loopback only
    assert lines[6:8] == ["1024", "256"]
    assert "Network is unreachable" in lines[8] or "Connection refused" in lines[8]


def test_timeout_kills_and_reports(running) -> None:
    reply, bot = probe(running, "echo started; sleep 60")
    assert reply.text.startswith(f"job {reply.job_id} probe timed out after 3 s")
    assert reply.code == "started"
    assert ledger.get(bot.db, reply.job_id).state == JobState.TIMED_OUT


def test_failure_reports_exit_code_and_tail(running) -> None:
    reply, bot = probe(running, "for i in $(seq 1 50); do echo line $i; done; exit 3")
    assert reply.text == f"job {reply.job_id} probe failed with exit code 3; last lines:"
    assert reply.code.splitlines() == [f"line {i}" for i in range(31, 51)]
    job = ledger.get(bot.db, reply.job_id)
    assert (job.state, job.exit_code) == (JobState.FAILED, 3)


def test_output_is_capped_and_marked(running) -> None:
    reply, bot = probe(running, "yes abcdefghijklmnopqrstuvwxyz | head -c 200000")
    assert reply.text.endswith("(output cut at 65536 bytes)")
    assert len(ledger.get(bot.db, reply.job_id).output.encode()) == 65536


def test_arguments_stay_one_argv_item(running) -> None:
    reply, _ = probe(running, 'printf "%s|" "$0" ; echo')
    assert reply.code == "sh|\n"
    bot, recorder = running
    result = run_skill(bot, recorder, "uma", "say $(id) `id` ; id && id")
    assert result.code == "$(id) `id` ; id && id\n"


def test_no_container_is_left_behind(running) -> None:
    probe(running, "true")
    bot, _ = running
    assert bot.runner.containers() == []


def test_podman_unreachable_is_a_clear_error(tmp_path) -> None:
    cfg = config.load(environ={"PODBOT_DATA_DIR": str(tmp_path), "PODBOT_PODMAN__SOCKET": f"unix://{tmp_path}/none.sock"})
    with pytest.raises(Unavailable, match=f"nothing answers at podman.socket unix://{tmp_path}/none.sock: start it with"):
        PodmanRunner(cfg).engine()


def _rss() -> int:
    return int(re.search(r"VmRSS:\s+(\d+) kB", Path("/proc/self/status").read_text()).group(1)) * 1024


def _log_size(client: podman.PodmanClient, name: str) -> int:
    try:
        return os.stat(client.containers.get(name).inspect()["HostConfig"]["LogConfig"]["Path"]).st_size
    except (podman.errors.APIError, FileNotFoundError):
        return 0  # gone, or conmon is starting the file over


def watch_job(bot, recorder, url: str, job_id: int) -> tuple[Reply, int, int]:
    """Wait for a job's result while sampling its container's log file size and this process's RSS.

    Returns the result, the largest log file seen and the RSS growth over the idle bot.
    """
    idle, peak_rss, peak_log = _rss(), 0, 0
    deadline = time.monotonic() + WAIT
    with podman.PodmanClient(base_url=url) as client:
        while not (done := [r for r in recorder.replies if r.job_id == job_id and " queued" not in r.text]):
            assert time.monotonic() < deadline, f"no result for job {job_id}"
            for container in bot.runner.containers():
                if container.job_id == job_id:
                    peak_log = max(peak_log, _log_size(client, container.name))
            peak_rss = max(peak_rss, _rss())
            time.sleep(0.02)
    return done[0], peak_log, peak_rss - idle


@pytest.mark.parametrize("script", ["yes", "yes 1>&2"])
def test_endless_output_is_stopped_without_growing_the_bot_or_the_disk(bot_factory, tmp_path, podman_ready, script) -> None:
    flood = probe_like("flood", script)
    flood["run"]["timeout"] = "60s"  # the output cap stops it, not the timeout
    add_manifest(tmp_path, flood)
    bot, recorder = bot_factory(2, schedules=False)
    [ack] = say(bot, "olga", "/flood")
    reply, peak_log, rss_growth = watch_job(bot, recorder, podman_ready.url, ack.job_id)
    assert reply.text == f"job {ack.job_id} flood was stopped: it kept writing past its output cap; last lines: (output cut at {CAP} bytes)"
    assert reply.code.splitlines() == ["y"] * 20
    job = ledger.get(bot.db, ack.job_id)
    assert job.state == JobState.FAILED
    assert len(job.output.encode()) == CAP
    assert 0 < peak_log <= LOG_FILE_FACTOR * CAP  # conmon starts the file over at that size
    assert rss_growth < 32 * 1024**2  # the whole log used to be read into memory: gigabytes
    assert bot.runner.containers() == []


def test_endless_output_ends_by_the_timeout_or_the_cap(running) -> None:
    # `probe` times out after 3 s, about when the cap's watch may stop `yes`: either ends it.
    reply, bot = probe(running, "yes")
    job = ledger.get(bot.db, reply.job_id)
    assert job.state in (JobState.TIMED_OUT, JobState.FAILED)
    # Less than the cap only when the run ended just after conmon started its log file over.
    assert re.search(r"(timed out after 3 s; last output:|was stopped: .*) \(output cut at \d+ bytes\)$", reply.text)
    assert 0 < len(job.output.encode()) <= CAP


def test_output_past_the_cap_that_stops_is_not_stopped(running) -> None:
    # Past the cap but less than twice it, then quiet while still running: a long answer, not a flood.
    reply, bot = probe(running, "yes abcdefghijklmnopqrstuvwxyz | head -c 100000; sleep 2")
    assert reply.text.startswith(f"job {reply.job_id} probe done in ")
    assert reply.text.endswith(f"(output cut at {CAP} bytes)")
    assert ledger.get(bot.db, reply.job_id).state == JobState.SUCCEEDED


def test_memory_is_capped_per_process_where_cgroups_cannot(running, podman_ready) -> None:
    if podman_ready.enforces_resource_limits:
        pytest.skip("the engine enforces limits.memory with a cgroup here")
    # dd allocates its block size at once: 600 MB used to pass the 256m limit.
    small = "dd if=/dev/zero of=/dev/null bs=64M count=1 2>/dev/null && echo 64M-ok"
    large = "dd if=/dev/zero of=/dev/null bs=600M count=1; echo 600M=$?"
    reply, _ = probe(running, f"ulimit -d; {small}; {large}")
    assert reply.code.splitlines() == ["262144", "64M-ok", "dd: out of memory", "600M=1"]  # ulimit -d is in KiB


class Dribble(io.RawIOBase):
    """A stream that hands out at most 3 bytes per read, as a slow socket may."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def read(self, size: int = -1) -> bytes:
        return self._data.read(min(size, 3))


def test_log_frames_are_split_whatever_the_reads() -> None:
    frames = [(1, b"hello\n"), (2, b""), (2, b"oops\n"), (1, b"x" * 70000)]
    data = b"".join(struct.pack(">B3xL", stream, len(payload)) + payload for stream, payload in frames)
    for raw in (io.BytesIO(data), Dribble(data)):
        pieces = list(podman_runner._payloads(raw))
        assert b"".join(pieces) == b"hello\noops\n" + b"x" * 70000
        assert max(map(len, pieces)) <= podman_runner.READ_CHUNK
