"""docker-compose.yml and deploy/ read as files: the stack's shape, in seconds (issue 12).

Nothing is built or started here; deploy/compose-check brings the stack up for real.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot import config
from bot.runtime import secret_files
from tests.conftest import REPO

DEPLOY = REPO / "deploy"
SERVICES = {"postgres", "bot", "worker-1", "worker-2"}
PODBOT_SERVICES = ("bot", "worker-1", "worker-2")
# Interpolated from the shell of whoever runs podman-compose, not from the env file.
FROM_SHELL = {"XDG_RUNTIME_DIR"}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((REPO / "docker-compose.yml").read_text())


def _example() -> dict[str, str]:
    """The variables deploy/podbot.env.example sets, and those it names in comments (`# NAME=`)."""
    found = {}
    for line in (DEPLOY / "podbot.env.example").read_text().splitlines():
        if m := re.match(r"^#?\s*([A-Z][A-Z0-9_]*)=(.*)$", line):
            found[m[1]] = m[2]
    return found


def _volumes(service: dict[str, Any]) -> dict[str, str]:
    """target -> source of a service's short-syntax volumes (a source may hold `${VAR:-default}`)."""
    found = {}
    for volume in service.get("volumes", []):
        source, _, target = volume.removesuffix(":ro").rpartition(":")
        found[target] = source
    return found


def test_the_services_and_what_each_needs_to_run_unattended(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) == SERVICES
    for name, service in services.items():
        assert service["restart"] == "unless-stopped", name
        assert service["healthcheck"]["test"][0] == "CMD" and len(service["healthcheck"]["test"]) > 1, name
        assert service["env_file"] == "deploy/podbot.env", name
        # No registry is reachable: every image is local, and every local one is built from a recipe here.
        assert service["image"].startswith("localhost/"), name
    for name in ("postgres", "bot"):
        recipe = REPO / services[name]["build"]["dockerfile"]
        assert re.search(r"^FROM localhost/podbot-debian:latest$", recipe.read_text(), re.M), recipe
    assert {s["image"] for n, s in services.items() if n != "postgres"} == {services["bot"]["image"]}
    assert services["bot"]["command"] == ["run", "--workers", "0"]
    assert all(services[w]["command"] == ["worker"] for w in ("worker-1", "worker-2"))


def test_data_lives_in_named_volumes(compose: dict[str, Any]) -> None:
    declared = set(compose["volumes"])
    services = compose["services"]
    assert _volumes(services["postgres"])["/var/lib/postgresql/data"] in declared
    # The bot seals secret arguments with <data_dir>/secret.key and the workers unseal them with it.
    assert {_volumes(services[name])["/data"] for name in PODBOT_SERVICES} == {"podbot-data"} <= declared


def test_podbot_reaches_the_host_users_podman_socket_and_its_config(compose: dict[str, Any]) -> None:
    cfg = config.load(str(DEPLOY / "podbot.yaml"), environ={})
    assert cfg.podman.socket is not None
    socket = cfg.podman.socket.removeprefix("unix://")
    for name in PODBOT_SERVICES:
        service = compose["services"][name]
        volumes = _volumes(service)
        assert volumes[socket] == "${XDG_RUNTIME_DIR:-/run/user/1001}/podman/podman.sock", name
        assert volumes[service["environment"]["PODBOT_CONFIG"]] == "./deploy/podbot.yaml", name
    # The host's Podman mounts the secret files the workers write, so their directory (secret_files.staged's,
    # named by the owner's uid: root, 0, in the container) is the same path on both sides.
    assert cfg.podman.user == "root"
    staging = str(secret_files.TMPFS / "podbot-secrets-0")
    for name in ("worker-1", "worker-2"):
        assert _volumes(compose["services"][name])[staging] == staging, name


def test_the_gateway_is_published_on_loopback_only_and_speaks_tls(compose: dict[str, Any]) -> None:
    cfg = config.load(str(DEPLOY / "podbot.yaml"), environ={})
    host, port = cfg.gateway.address
    assert (host, port) == ("0.0.0.0", 8080)
    assert compose["services"]["bot"]["ports"] == [f"127.0.0.1:18080:{port}"]
    assert all("ports" not in s for n, s in compose["services"].items() if n != "bot")
    # podbot-entrypoint makes the certificate at these paths, and the health check trusts it.
    entrypoint = (DEPLOY / "podbot-entrypoint").read_text()
    assert cfg.gateway.tls_cert == "/data/tls/cert.pem" and cfg.gateway.tls_key == "/data/tls/key.pem"
    assert "tls=/data/tls" in entrypoint
    assert "/data/tls/cert.pem" in compose["services"]["bot"]["healthcheck"]["test"]


def test_the_env_example_names_every_variable_the_stack_reads(compose: dict[str, Any]) -> None:
    example = _example()
    text = (REPO / "docker-compose.yml").read_text()
    interpolated = set(re.findall(r"\$\{([A-Z_][A-Z0-9_]*)", text)) - FROM_SHELL
    assert interpolated <= set(example)
    entrypoint = (DEPLOY / "postgres-entrypoint").read_text()
    read = set(re.findall(r"\$\{([A-Z_][A-Z0-9_]*)", entrypoint)) - {"PGDATA"}  # PGDATA: the image's
    assert read and read <= set(example)
    # The health check asks for the user and database the example makes.
    test = compose["services"]["postgres"]["healthcheck"]["test"]
    assert test[test.index("-U") + 1] == example["POSTGRES_USER"] and test[test.index("-d") + 1] == example["POSTGRES_DB"]
    # podbot's database is the one the postgres service makes, reached by the service's name.
    user, password, db = example["POSTGRES_USER"], example["POSTGRES_PASSWORD"], example["POSTGRES_DB"]
    assert example["PODBOT_DATABASE"] == f"postgresql://{user}:{password}@postgres:5432/{db}"


def test_each_podbot_process_names_its_host_as_its_hostname(compose: dict[str, Any]) -> None:
    # The ledger's worker field and `podbot status` say HOST:PID; the pid is only meaningful on that host.
    for name in PODBOT_SERVICES:
        service = compose["services"][name]
        assert service["environment"]["PODBOT_HOST"] == service["hostname"] == name


def test_the_env_example_as_it_stands_is_a_valid_podbot_config() -> None:
    lines = (DEPLOY / "podbot.env.example").read_text().splitlines()
    environ = dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))
    cfg = config.load(str(DEPLOY / "podbot.yaml"), environ=environ)  # an unknown PODBOT_ setting would raise Problems
    assert cfg.database == environ["PODBOT_DATABASE"]


def test_compose_check_keeps_to_loopback_and_takes_the_stack_down() -> None:
    script = (DEPLOY / "compose-check").read_text()
    assert "GATEWAY=https://127.0.0.1:18080" in script
    assert re.search(r"^\s+compose down$", script, re.M)
    assert Path(DEPLOY / "compose-check").stat().st_mode & 0o111
