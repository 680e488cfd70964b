"""Images per skill: a manifest's own Containerfile is built as the container owner, labelled with its
content digest and rebuilt only when that changes; a missing image is a FILE:LINE:COL error in
validation and a one-line answer at run time. Real Podman."""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

from bot import config
from bot.runtime import host, images
from bot.runtime.podman import PodmanRunner
from bot.skill import load_all
from tests.conftest import Recorder, cli, make_bot, probe_like, run_skill, write_config

IMAGE = "localhost/podbot-test-greeter:latest"


def _manifest(dir: Path, name: str, run: dict) -> Path:
    data = {**probe_like(name, ""), "parameters": {"type": "object", "properties": {}}, "run": {"timeout": "10s", **run}}
    path = dir / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _remove_image(cfg: config.Config, image: str) -> None:
    owner = host.owner(cfg)
    subprocess.run(owner.command(["podman", "rmi", "--force", image]), capture_output=True)


def test_a_skill_ships_its_own_image(podman_ready, tmp_path: Path, log_dir: Path) -> None:
    recipe = tmp_path / "extra-manifests" / "greeter"
    recipe.mkdir(parents=True)
    # /usr/bin is on the base image's PATH: a tool a recipe installs there is found.
    (recipe / "Containerfile").write_text("FROM localhost/podbot-base:latest\nCOPY greet /usr/bin/greet\n")
    (recipe / "greet").write_text("#!/bin/sh\necho 'hello from my own image'\n")
    (recipe / "greet").chmod(0o755)
    _manifest(tmp_path / "extra-manifests", "greeter", {"image": IMAGE, "build": "greeter", "command": ["greet"]})
    cfg = config.load(str(write_config(tmp_path, log_dir)), environ={})
    runner = PodmanRunner(cfg)
    skills, problems = load_all(list(cfg.manifest_dirs))
    assert not problems
    try:
        lines: list[str] = []
        assert IMAGE in images.ensure_all(runner, skills.values(), lines.append)
        assert any(f"building {IMAGE}" in line for line in lines)
        assert IMAGE not in images.ensure_all(runner, skills.values())  # unchanged: kept
        (recipe / "greet").write_text("#!/bin/sh\necho 'hello again'\n")
        assert IMAGE in images.ensure_all(runner, skills.values())  # changed: rebuilt
        bot = make_bot(cfg)
        recorder = Recorder()
        bot.add_adapter(recorder)
        bot.start(1, schedules=False)
        try:
            assert run_skill(bot, recorder, "olga", "/greeter").code == "hello again\n"
        finally:
            bot.stop()
    finally:
        _remove_image(cfg, IMAGE)


def test_a_missing_image_is_reported_not_a_traceback(podman_ready, tmp_path: Path, log_dir: Path) -> None:
    extra = tmp_path / "extra-manifests"
    extra.mkdir()
    path = _manifest(extra, "absent", {"image": "localhost/podbot-test-absent:latest", "command": ["true"]})
    config_path = write_config(tmp_path, log_dir)
    checked = cli("--config", str(config_path), "manifests", "validate", str(extra))
    assert checked.returncode == 1
    assert f"{path}:8:3: image localhost/podbot-test-absent:latest is not here: build it as the container owner" in checked.stdout

    pulled = _manifest(extra, "pulled", {"image": "registry.invalid/nothing:1", "command": ["true"], "pull": "missing"})
    assert str(pulled) not in cli("--config", str(config_path), "manifests", "validate", str(extra)).stdout  # pulled when run
    bot = make_bot(config.load(str(config_path), environ={}))
    recorder = Recorder()
    bot.add_adapter(recorder)
    bot.start(1, schedules=False)
    try:
        absent = run_skill(bot, recorder, "olga", "/absent")
        pull = run_skill(bot, recorder, "olga", "/pulled")
    finally:
        bot.stop()
    assert (
        absent.text.endswith(
            "failed: the image localhost/podbot-test-absent:latest is not here: run `podbot images build` "
            "(or give the manifest run.pull: missing)"
        )
        and absent.code is None
    )
    assert "failed: the image registry.invalid/nothing:1 is not here and pulling it failed: " in pull.text and pull.code is None
    assert "incident" not in absent.text + pull.text
