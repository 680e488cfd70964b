"""What a skill's container can and cannot do: rootless, locked down, timed, capped, removed."""

from __future__ import annotations

import pytest

from bot import config
from bot.errors import Unavailable
from bot.flow import JobState
from bot.runtime.podman import PodmanRunner
from bot.store import ledger
from tests.conftest import run_skill


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
