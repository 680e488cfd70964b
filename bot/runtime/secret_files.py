"""Secrets given to a container as files: written to a tmpfs, bind-mounted read-only, removed after the run.

The files live in /dev/shm (memory, never a disk) under a directory only the
container owner may enter (0700), so no other host user can read them. Inside
the container a file is mode 0444: root on the host is no one in the owner's user
namespace, so a file podbot writes as root shows as owned by nobody, and only
"readable by all" lets the unprivileged container user read it (the container
runs nothing else).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bot.errors import Unavailable
from bot.runtime.host import Owner

TMPFS = Path("/dev/shm")


def _private_dir(path: Path, owner: Owner) -> None:
    if os.geteuid() == 0:
        os.chown(path, owner.uid, owner.gid)
    path.chmod(0o700)


@contextmanager
def staged(owner: Owner, job_id: int, files: dict[str, str]) -> Iterator[list[tuple[str, str]]]:
    """(host path, container path) read-only binds for `files` (container path -> value), for the length of a run."""
    if not files:
        yield []
        return
    if not TMPFS.is_dir():
        raise Unavailable(f"secret files need a tmpfs at {TMPFS}, which this host lacks; give the secret as env instead")
    root = TMPFS / f"podbot-secrets-{owner.uid}"
    root.mkdir(mode=0o700, exist_ok=True)
    _private_dir(root, owner)
    job_dir = Path(tempfile.mkdtemp(prefix=f"job-{job_id}-", dir=root))
    try:
        _private_dir(job_dir, owner)
        binds = []
        for i, (target, value) in enumerate(sorted(files.items())):
            path = job_dir / f"{i}-{Path(target).name}"
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o444)
            with os.fdopen(fd, "w") as out:
                out.write(value)
            binds.append((str(path), target))
        yield binds
    finally:
        shutil.rmtree(job_dir, ignore_errors=True)
