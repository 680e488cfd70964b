"""The codebase's own checks, run by the test command: lint, types, and the dependency direction."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


@pytest.mark.parametrize(
    "argv",
    [
        ["ruff", "check", "."],
        ["ruff", "format", "--check", "."],
        ["mypy"],  # files and strictness: [tool.mypy] in pyproject.toml
        ["lint-imports"],  # contracts: [tool.importlinter] in pyproject.toml
    ],
    ids=["ruff", "ruff-format", "mypy", "import-contracts"],
)
def test_codebase_check_passes(argv: list[str]) -> None:
    result = subprocess.run([str(BIN / argv[0]), *argv[1:]], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
