"""A real PostgreSQL server for tests: initdb and pg_ctl in a temporary directory, as an unprivileged user.

Debian's `postgresql` package provides the binaries (setup.sh --dev installs it). The server
listens on 127.0.0.1 on a port the kernel picked free, and on a unix socket in its own
directory; a `reader` role may only SELECT from the `orders` table of database `app`.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

OWNER = "nobody"  # initdb refuses to run as root
OWNER_PASSWORD = "podbot-pw-3f9a"  # of the role `podbot`, which owns the databases podbot's own tests use


@dataclass(frozen=True)
class Postgres:
    port: int
    reader_password: str
    socket_dir: Path

    def dsn(self, host: str = "127.0.0.1") -> str:
        return f"host={host} port={self.port} dbname=app user=reader"

    def database(self, name: str) -> str:
        """A new empty database owned by the role `podbot`, as the URL podbot's `database:` setting takes."""
        self.sql(f"CREATE DATABASE {name} OWNER podbot")
        return f"postgresql://podbot:{OWNER_PASSWORD}@127.0.0.1:{self.port}/{name}"

    def sql(self, statement: str) -> str:
        """Run SQL as the superuser, over the unix socket."""
        return _run(
            ["psql", "-X", "-q", "-A", "-t", "-h", str(self.socket_dir), "-p", str(self.port), "-U", "postgres", "-d", "app"], statement
        )


def _bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not found:
        raise RuntimeError(f"PostgreSQL's {name} is missing: apt-get install postgresql (./setup.sh --dev does)")
    return found[-1]


def _as_owner(argv: list[str]) -> list[str]:
    return ["runuser", "-u", OWNER, "--", *argv] if os.geteuid() == 0 else argv


def _run(argv: list[str], stdin: str = "") -> str:
    argv = [_bin(argv[0]), *argv[1:]] if not argv[0].startswith("/") else argv
    done = subprocess.run(_as_owner(argv), input=stdin, capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:2])} failed: {done.stderr or done.stdout}")
    return done.stdout


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def postgres(reader_password: str = "reader-pw-7c1e") -> Iterator[Postgres]:
    base = Path(tempfile.mkdtemp(prefix="podbot-pg-"))
    if os.geteuid() == 0:
        entry = pwd.getpwnam(OWNER)
        os.chown(base, entry.pw_uid, entry.pw_gid)
    data, sockets = base / "data", base / "sock"
    _run(["initdb", "-D", str(data), "-U", "postgres", "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8"])
    _run(["/bin/mkdir", str(sockets)])
    port = _free_port()
    options = f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={sockets} -c fsync=off -c max_connections=400"
    _run(["pg_ctl", "-D", str(data), "-l", str(base / "log"), "-o", options, "-w", "start"])
    server = Postgres(port, reader_password, sockets)
    try:
        _run(["psql", "-X", "-q", "-h", str(sockets), "-p", str(port), "-U", "postgres", "-d", "postgres", "-c", "CREATE DATABASE app"])
        server.sql(
            f"CREATE ROLE reader LOGIN PASSWORD '{reader_password}';"
            "CREATE TABLE orders (id int PRIMARY KEY, item text);"
            "INSERT INTO orders VALUES (1, 'disk'), (2, 'cpu'), (3, 'memory');"
            # The role may write: the read-only transaction pg_query uses is what must stop it.
            "GRANT SELECT, INSERT, UPDATE, DELETE ON orders TO reader;"
            f"CREATE ROLE podbot LOGIN CREATEDB PASSWORD '{OWNER_PASSWORD}';"
        )
        yield server
    finally:
        _run(["pg_ctl", "-D", str(data), "-m", "immediate", "-w", "stop"])
        shutil.rmtree(base, ignore_errors=True)
