"""Who owns the rootless containers, and making sure their Podman API is listening.

As root, podbot never runs containers as root: it prepares an unprivileged
user (subuid/subgid ranges, a runtime dir) and talks to that user's Podman API
socket. As any other user, it uses that user's own rootless Podman.
"""

from __future__ import annotations

import logging
import os
import pwd
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from bot.config import Config
from bot.errors import Unavailable

log = logging.getLogger(__name__)

SUBID_COUNT = 65536


@dataclass(frozen=True)
class Owner:
    name: str
    uid: int
    gid: int
    home: str

    @property
    def runtime_dir(self) -> str:
        if self.uid == os.getuid() and os.environ.get("XDG_RUNTIME_DIR"):
            return os.environ["XDG_RUNTIME_DIR"]
        return f"/run/user/{self.uid}"

    def env(self) -> dict[str, str]:
        return {
            "XDG_RUNTIME_DIR": self.runtime_dir,
            "HOME": self.home,
            "USER": self.name,
            "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        }

    def command(self, argv: list[str]) -> list[str]:
        """argv run as the owner: through runuser when podbot is root."""
        if os.geteuid() == 0 and self.uid != 0:
            env = [f"{k}={v}" for k, v in self.env().items()]
            return ["runuser", "-u", self.name, "--", "env", "-i", *env, *argv]
        return argv


def owner(cfg: Config) -> Owner:
    if os.geteuid() == 0:
        try:
            entry = pwd.getpwnam(cfg.podman.user)
        except KeyError:
            raise Unavailable(
                f"user '{cfg.podman.user}' who should own the rootless containers does not exist: run `podbot setup` as root"
            ) from None
    else:
        entry = pwd.getpwuid(os.getuid())
    return Owner(entry.pw_name, entry.pw_uid, entry.pw_gid, entry.pw_dir)


def _has_subids(user: str, path: str) -> bool:
    try:
        return any(line.split(":")[0] == user for line in Path(path).read_text().splitlines())
    except FileNotFoundError:
        return False


def _free_subid_start() -> int:
    end = 100000
    for path in ("/etc/subuid", "/etc/subgid"):
        if Path(path).exists():
            for line in Path(path).read_text().splitlines():
                parts = line.split(":")
                if len(parts) == 3:
                    end = max(end, int(parts[1]) + int(parts[2]))
    return end


def prepare_owner(cfg: Config) -> Owner:
    """As root: create the unprivileged owner, its subuid/subgid ranges and runtime dir."""
    if os.geteuid() != 0:
        own = owner(cfg)
        if not _has_subids(own.name, "/etc/subuid"):
            log.warning("%s has no range in /etc/subuid; rootless Podman may fail (ask root to add one)", own.name)
        return own
    name = cfg.podman.user
    try:
        pwd.getpwnam(name)
    except KeyError:
        log.info("creating unprivileged user %s to own the rootless containers", name)
        subprocess.run(["useradd", "--create-home", "--shell", "/usr/sbin/nologin", name], check=True)
    if not (_has_subids(name, "/etc/subuid") and _has_subids(name, "/etc/subgid")):
        start = _free_subid_start()
        span = f"{start}-{start + SUBID_COUNT - 1}"
        log.info("giving %s subordinate ids %s", name, span)
        subprocess.run(["usermod", "--add-subuids", span, "--add-subgids", span, name], check=True)
    own = owner(cfg)
    run_dir = Path(own.runtime_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    os.chown(run_dir, own.uid, own.gid)
    run_dir.chmod(0o700)
    return own


def _listening(url: str) -> bool:
    path = url.removeprefix("unix://")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(1)
        try:
            sock.connect(path)
        except OSError:
            return False
    return True


def ensure_service(cfg: Config) -> str:
    """Return the API socket URL, starting `podman system service` when nothing listens."""
    if cfg.podman.socket:
        if _listening(cfg.podman.socket):
            return cfg.podman.socket
        raise Unavailable(
            f"nothing answers at podman.socket {cfg.podman.socket}: start it with "
            f"`podman system service --time=0 {cfg.podman.socket}` as the user who owns the containers"
        )
    if shutil.which("podman") is None:
        raise Unavailable("podman is not installed: run ./setup.sh as root, or install podman runc uidmap slirp4netns fuse-overlayfs")
    own = prepare_owner(cfg) if os.geteuid() == 0 else owner(cfg)
    url = f"unix://{own.runtime_dir}/podman/podman.sock"
    if _listening(url):
        return url
    path = Path(url.removeprefix("unix://"))
    cfg.data_dir.mkdir(parents=True, exist_ok=True)
    log_path = cfg.data_dir / "podman-service.log"
    subprocess.run(own.command(["mkdir", "-p", str(path.parent)]), check=True)
    log.info("starting the Podman API service for %s at %s", own.name, url)
    with open(log_path, "ab") as out:
        subprocess.Popen(
            own.command(["podman", "system", "service", "--time=0", url]),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            start_new_session=True,
        )
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if _listening(url):
            return url
        time.sleep(0.05)
    tail = log_path.read_text(errors="replace")[-800:]
    raise Unavailable(f"the Podman API service did not start at {url}; its log ({log_path}) ends with:\n{tail}")
