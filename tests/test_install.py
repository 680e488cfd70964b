"""podbot from a built wheel, installed into a fresh virtualenv outside the clone (issue 14: install and upgrade).

The wheel is built once for the module. Its dependencies are not downloaded again: the new venv
reads them from the venv running the tests through a .pth line. That venv's own podbot is an
editable install whose hook lives in a .pth file, and a .pth line only adds a directory (it does
not run the .pth files inside it), so `bot` in the new venv can only be the wheel's.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

from tests.conftest import REPO

SOURCES = ("bot", "adapters", "manifests", "skills", "pyproject.toml", "README.md")


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bin/ directory of a fresh venv with podbot installed from a wheel built from a copy of the clone."""
    base = tmp_path_factory.mktemp("wheel")
    source = base / "source"
    for name in SOURCES:
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            source.mkdir(exist_ok=True)
            shutil.copy(REPO / name, source / name)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    env = clean_env()
    subprocess.run([*pip, "wheel", "-q", "--no-deps", "-w", str(base / "dist"), str(source)], check=True, env=env)
    [wheel] = (base / "dist").glob("podbot-*.whl")
    env_dir = base / "venv"
    venv.create(env_dir, with_pip=False)
    python = env_dir / "bin" / "python"
    subprocess.run([*pip, "--python", str(python), "install", "-q", "--no-deps", str(wheel)], check=True, env=env)
    purelib = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], capture_output=True, text=True, env=env
    )
    (Path(purelib.stdout.strip()) / "podbot-test-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return env_dir / "bin"


def clean_env() -> dict[str, str]:
    """This environment without what points Python or podbot at the clone."""
    return {k: v for k, v in os.environ.items() if not k.startswith("PODBOT_") and k != "PYTHONPATH"}


def run(bin_dir: Path, tmp_path: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess:
    env = {**clean_env(), "PODBOT_DATA_DIR": str(tmp_path / "data")}
    return subprocess.run([bin_dir / args[0], *args[1:]], input=stdin, capture_output=True, text=True, cwd=tmp_path, env=env, timeout=600)


def test_the_wheel_carries_every_shipped_manifest_and_skill_file(installed: Path, tmp_path: Path) -> None:
    where = run(installed, tmp_path, "python", "-c", "import bot.shipped as s; print(s.MANIFESTS); print(s.SKILLS)")
    manifests, skills = map(Path, where.stdout.split())
    assert installed.parent in manifests.parents and installed.parent in skills.parents, where.stdout
    for shipped, clone in ((manifests, REPO / "manifests"), (skills, REPO / "skills")):
        expected = {p.relative_to(clone) for p in clone.rglob("*") if p.is_file() and "__pycache__" not in p.parts}
        assert {p.relative_to(shipped) for p in shipped.rglob("*") if p.is_file()} == expected
        for name in expected:
            assert (shipped / name).stat().st_mode == (clone / name).stat().st_mode, name  # scripts stay executable


def test_installed_podbot_validates_builds_and_answers_on_the_console(podman_ready, installed: Path, tmp_path: Path) -> None:
    validate = run(installed, tmp_path, "podbot", "manifests", "validate")
    shipped = len(list((REPO / "manifests").glob("*.yaml")))
    assert validate.returncode == 0 and f"{shipped} skills valid, 0 errors" in validate.stderr, validate.stderr

    build = run(installed, tmp_path, "podbot", "images", "build")  # from the Containerfile and scripts inside the wheel
    # Up to date when this machine already built the same recipe: the labels' digests were computed from the wheel's files.
    built = "built localhost/podbot-base:latest" in build.stderr or "every image is up to date" in build.stderr
    assert build.returncode == 0 and built, build.stderr

    chat = run(installed, tmp_path, "podbot", "chat", "--user", "alice", stdin="/skills\nsay hello from the wheel\n")
    assert chat.returncode == 0, chat.stderr
    assert "/say" in chat.stdout and "job 1 say done in" in chat.stdout and "hello from the wheel" in chat.stdout
    # A new data dir has no models: the start says so once, with the command that installs them.
    assert "podbot models install" in chat.stderr
