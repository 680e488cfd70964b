"""`podbot service install`: systemd units that systemd itself accepts."""

from __future__ import annotations

import configparser
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import cli, write_config


def test_service_install_writes_units_systemd_accepts(tmp_path: Path, log_dir: Path) -> None:
    config_path = write_config(tmp_path, log_dir)
    done = cli("service", "install", "--dir", str(tmp_path / "units"), env={**os.environ, "PODBOT_CONFIG": str(config_path)})
    assert done.returncode == 0, done.stderr
    files = sorted((tmp_path / "units").iterdir())
    assert [f.name for f in files] == ["podbot-podman.service", "podbot-worker.service", "podbot.service"]

    units = {}
    for file in files:
        parser = configparser.ConfigParser(strict=False, interpolation=None)  # Environment= repeats; the text is checked for those
        parser.optionxform = str  # type: ignore[assignment,method-assign]
        parser.read(file)
        units[file.stem] = parser
    for name, command in (("podbot", " run"), ("podbot-worker", " worker")):
        unit, svc = units[name]["Unit"], units[name]["Service"]
        assert unit["Requires"] == "podbot-podman.service" and "podbot-podman.service" in unit["After"]
        assert svc["ExecStart"].endswith(command) and svc["Restart"] == "on-failure"
        assert svc["StandardOutput"] == svc["StandardError"] == "journal" and svc["StandardInput"] == "null"
        assert (
            f"PODBOT_CONFIG={config_path}" in svc["Environment"]
            or f"PODBOT_CONFIG={config_path}" in (tmp_path / "units" / f"{name}.service").read_text()
        )
    assert "system service --time=0 unix:///run/user/" in units["podbot-podman"]["Service"]["ExecStart"]

    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed here (a container without systemd): the units were checked as INI only")
    verify = subprocess.run(["systemd-analyze", "verify", *map(str, files)], capture_output=True, text=True)
    assert verify.returncode == 0 and verify.stderr == "", verify.stderr
