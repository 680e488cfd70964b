"""podbot.yaml plus PODBOT_* overrides, checked by the same schema validator."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot import config
from bot.errors import Problems


def test_defaults_without_a_file(tmp_path: Path) -> None:
    cfg = config.load(environ={"PODBOT_DATA_DIR": str(tmp_path)})
    assert cfg.data_dir == tmp_path
    assert cfg.default_role == "user" and cfg.admin_roles == {"admin"}
    assert cfg.limits.nofile == 1024 and cfg.podman.runtime == "runc"


def test_file_then_environment(tmp_path: Path) -> None:
    path = tmp_path / "podbot.yaml"
    path.write_text("data_dir: data\nworkers: 3\nlimits: {memory: 128m}\nroles: {operator: ['slack:T1:U1']}\n")
    env = {"PODBOT_WORKERS": "5", "PODBOT_LIMITS__NOFILE": "2048", "PODBOT_ALLOW_NETWORK": "false"}
    cfg = config.load(str(path), env)
    assert cfg.data_dir == tmp_path / "data"
    assert (cfg.workers, cfg.limits.memory, cfg.limits.nofile, cfg.limits.pids) == (5, "128m", 2048, 128)
    assert cfg.allow_network is False
    assert cfg.roles == {"operator": ("slack:T1:U1",)}


def test_errors_name_file_line_and_key(tmp_path: Path) -> None:
    path = tmp_path / "podbot.yaml"
    path.write_text("workers: 2\nlimits:\n  memroy: 1g\n")
    with pytest.raises(Problems) as exc:
        config.load(str(path), {"PODBOT_WORKERS": "many"})
    assert str(exc.value).splitlines() == [
        f"{path}:3:3: unknown key 'memroy' (known: cpus, max_timeout, memory, nofile, nproc, output_bytes, pids)",
        "PODBOT_* environment:1:1: workers: 'many' is not of type 'integer'",
    ]


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(Problems, match="config file not found"):
        config.load(str(tmp_path / "nope.yaml"), {})
