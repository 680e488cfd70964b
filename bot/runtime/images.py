"""Build podbot's container images locally, with no registry: busybox plus the skill scripts."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from bot.errors import Unavailable
from bot.runtime.runner import Runner
from bot.shipped import SKILLS

BASE_IMAGE = "localhost/podbot-base:latest"
BUSYBOX = Path("/bin/busybox")
CONTENT_LABEL = "podbot.content"


def _applets() -> list[str]:
    out = subprocess.run([str(BUSYBOX), "--list"], capture_output=True, text=True, check=True).stdout
    return [name for name in out.split() if name != "busybox"]


def _dynamic(binary: Path) -> bool:
    # A dynamic ELF names its loader (PT_INTERP) within its first page.
    head = binary.read_bytes()[:4096]
    return b"ld-linux" in head or b"ld-musl" in head


def _rootfs(target: Path) -> int:
    """Write a busybox root filesystem tar; return how many applets it links."""
    if not BUSYBOX.exists() or _dynamic(BUSYBOX):
        raise Unavailable("a static busybox is needed at /bin/busybox: apt-get install busybox-static")
    applets = _applets()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for sub in ("bin", "etc", "tmp", "usr/local/bin"):
            (root / sub).mkdir(parents=True)
        shutil.copy2(BUSYBOX, root / "bin" / "busybox")
        for name in applets:
            (root / "bin" / name).symlink_to("busybox")
        (root / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/tmp:/bin/sh\n")
        (root / "etc" / "group").write_text("root:x:0:\nnobody:x:65534:\n")
        (root / "tmp").chmod(0o1777)
        with tarfile.open(target, "w") as tar:
            tar.add(root, arcname=".")
    return len(applets)


def content_hash() -> str:
    """A digest of everything the base image is made from, kept as an image label."""
    digest = hashlib.sha256(BUSYBOX.read_bytes() if BUSYBOX.exists() else b"")
    for path in sorted([SKILLS / "base" / "Containerfile", *(SKILLS / "bin").iterdir()]):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def build_base(runner: Runner) -> Iterator[str]:
    """Build BASE_IMAGE, yielding progress lines."""
    with tempfile.TemporaryDirectory(prefix="podbot-image-") as tmp:
        context = Path(tmp)
        yield "assembling busybox root filesystem"
        count = _rootfs(context / "rootfs.tar")
        yield f"root filesystem has {count} busybox applets"
        shutil.copy(SKILLS / "base" / "Containerfile", context / "Containerfile")
        shutil.copytree(SKILLS / "bin", context / "bin")
        yield f"building {BASE_IMAGE} with {len(list((context / 'bin').iterdir()))} skill scripts"
        yield from runner.build_image(context, BASE_IMAGE, {CONTENT_LABEL: content_hash()})
    yield f"built {BASE_IMAGE}"


def ensure_base(runner: Runner, progress: Callable[[str], None] = lambda line: None) -> bool:
    """Build BASE_IMAGE if it is missing or older than skills/; True if it was built."""
    if runner.image_label(BASE_IMAGE, CONTENT_LABEL) == content_hash():
        return False
    for line in build_base(runner):
        progress(line)
    return True
