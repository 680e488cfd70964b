"""`podbot service install`: systemd units for `podbot run`, `podbot worker` and the rootless Podman API they use.

The Podman API gets its own unit, run as the user who owns the containers, so
stopping or restarting podbot never takes the containers' service down with it,
and podbot starts only once its socket listens. Logs go to the journal
(`journalctl -u podbot`) as well as to `<data_dir>/podbot.log`.
"""

from __future__ import annotations

import getpass
import shutil
import sys
from pathlib import Path

import click

from bot.cli.common import Invocation, pass_invocation
from bot.config import Config
from bot.runtime.host import owner

PODMAN_UNIT = "podbot-podman.service"
SOCKET_WAIT = 150  # tenths of a second ExecStartPost waits for the Podman socket


def _podbot() -> str:
    """This podbot's own executable: the unit runs the installation that wrote it."""
    beside = Path(sys.executable).parent / "podbot"
    return str(beside) if beside.exists() else shutil.which("podbot") or f"{sys.executable} -m bot.cli"


def _podman_unit(cfg: Config) -> str:
    own = owner(cfg)
    socket = f"{own.runtime_dir}/podman/podman.sock"
    podman = shutil.which("podman") or "/usr/bin/podman"
    return f"""\
[Unit]
Description=Rootless Podman API for podbot's skill containers (user {own.name})
After=network.target

[Service]
User={own.name}
Environment=XDG_RUNTIME_DIR={own.runtime_dir} HOME={own.home}
# The runtime dir is made as root ("+"): without a login session nobody else creates it.
ExecStartPre=+/usr/bin/install -d -o {own.uid} -g {own.gid} -m 0700 {own.runtime_dir} {own.runtime_dir}/podman
ExecStart={podman} system service --time=0 unix://{socket}
# Started means listening: podbot's units come after this one.
ExecStartPost=/bin/sh -c 'for i in $(seq {SOCKET_WAIT}); do [ -S {socket} ] && exit 0; sleep 0.1; done; exit 1'
Restart=on-failure
RestartSec=5

[Install]
WantedBy=multi-user.target
"""


def _podbot_unit(cfg: Config, command: str, description: str, user: str, extra: str = "") -> str:
    own = owner(cfg)
    config = f"Environment=PODBOT_CONFIG={Path(cfg.source).resolve()}\n" if cfg.source != "defaults" else ""
    return f"""\
[Unit]
Description={description}
Requires={PODMAN_UNIT}
After={PODMAN_UNIT} network-online.target
Wants=network-online.target

[Service]
User={user}
WorkingDirectory={cfg.data_dir}
{config}Environment=PODBOT_DATA_DIR={cfg.data_dir}
Environment=PODBOT_PODMAN__SOCKET=unix://{own.runtime_dir}/podman/podman.sock
# Platform tokens (TELEGRAM_BOT_TOKEN=…), if not in the config's secrets_file; the file is optional.
EnvironmentFile=-/etc/podbot/podbot.env
ExecStart={_podbot()} {command}
StandardInput=null
StandardOutput=journal
StandardError=journal
Restart=on-failure
RestartSec=5
TimeoutStopSec=90
{extra}
[Install]
WantedBy=multi-user.target
"""


def units(cfg: Config, user: str) -> dict[str, str]:
    """File name -> text of the three units."""
    return {
        PODMAN_UNIT: _podman_unit(cfg),
        "podbot.service": _podbot_unit(cfg, "run", "podbot: the chat bot, its platforms and job workers (podbot run)", user),
        # Huey's consumer finishes running jobs on SIGINT and drops them on SIGTERM; recovery would re-run them, but need not.
        "podbot-worker.service": _podbot_unit(cfg, "worker", "podbot job workers (podbot worker)", user, "KillSignal=SIGINT\n"),
    }


@click.group()
def service() -> None:
    """Run podbot as a systemd service."""


@service.command("install")
@click.option(
    "--dir", "directory", default="/etc/systemd/system", type=click.Path(file_okay=False, path_type=Path), help="Where to write the units."
)
@click.option("--user", default=None, help="Who runs podbot (default: you); containers stay with podman.user when that is root.")
@pass_invocation
def install(inv: Invocation, directory: Path, user: str | None) -> None:
    """Write podbot.service, podbot-worker.service and podbot-podman.service (restart on failure, logs to the journal)."""
    cfg = inv.config()
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in units(cfg, user or getpass.getuser()).items():
        (directory / name).write_text(text)
        click.echo(f"wrote {directory / name}", err=True)
    click.echo("next: systemctl daemon-reload && systemctl enable --now podbot", err=True)
    click.echo("      (and podbot-worker for job workers in their own process; `journalctl -u podbot` shows the log)", err=True)
