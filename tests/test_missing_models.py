"""A data dir without the model files: said at start, in `--version`, in status and in the eval header, never reported as on."""

from __future__ import annotations

import json
import os
from pathlib import Path

from tests.conftest import cli, write_config


def test_missing_models_are_said_everywhere_and_never_reported_on(tmp_path: Path, log_dir: Path) -> None:
    env = {**os.environ, "PODBOT_CONFIG": str(write_config(tmp_path, log_dir))}
    missing = tmp_path / "data" / "models" / "all-MiniLM-L6-v2"
    off = f"off: {missing} is missing (`podbot models install`)"

    version = cli("--version", env=env)
    assert version.returncode == 0 and version.stdout.startswith("podbot ")
    assert "\nPython 3." in version.stdout and "\nPodman " in version.stdout
    assert f"embeddings all-MiniLM-L6-v2: {off}" in version.stdout
    assert "model SmolLM2-135M-Instruct.Q4_1.gguf: off: " in version.stdout

    shown = cli("status", "--json", env=env)
    data = json.loads(shown.stdout)
    assert shown.returncode == 1  # nothing runs here
    assert data["models"]["embeddings"] == {"path": str(missing), "present": False, "on": False, "state": off}
    assert not data["models"]["model"]["on"] and f"embeddings {off}" in data["problems"]

    cases = tmp_path / "cases.yaml"
    cases.write_text("cases:\n  - {text: 'is /var full?', sender: 'console:uma', skill: disk_usage}\n")
    evaluated = cli("eval", "routing", str(cases), env={**env, "COLUMNS": "300"})
    assert evaluated.returncode == 0, evaluated.stderr
    assert "plain-language understanding is off: missing" in evaluated.stderr and "podbot models install" in evaluated.stderr
    assert f"embeddings {off}" in evaluated.stdout and "model stage on" not in evaluated.stdout

    listed = cli("models", "list", env={**env, "COLUMNS": "1000"})
    assert listed.returncode == 0 and f"embeddings {off}" in listed.stdout and " on" not in listed.stdout.split("Models dir:")[1]
