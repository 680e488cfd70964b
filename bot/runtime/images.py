"""Build podbot's container images locally, with no registry.

Three kinds, each labelled with a digest of what it is made from and rebuilt only
when that changes:
- `localhost/podbot-base`: busybox plus the scripts in skills/bin (a second to build);
- `localhost/podbot-debian`: Debian minbase with python3, curl, jq, ca-certificates
  and psql, from the Debian mirror with debootstrap (about a minute, as root), built
  only when a loaded skill needs it;
- a skill's own image: the Containerfile in its manifest's `run.build` directory,
  built as `run.image` (its digest covers its parent's, so a new base rebuilds it).
Every build runs through the container owner's Podman API, so the owner sees the image.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from bot.errors import Unavailable
from bot.runtime.runner import Runner
from bot.schema import Problem
from bot.shipped import SKILLS
from bot.skill import Skill

BASE_IMAGE = "localhost/podbot-base:latest"
DEBIAN_IMAGE = "localhost/podbot-debian:latest"
BUSYBOX = Path("/bin/busybox")
CONTENT_LABEL = "podbot.content"
DEBIAN_SUITE = "bookworm"
DEBIAN_MIRROR = "http://deb.debian.org/debian"
DEBIAN_PACKAGES = ("python3-minimal", "curl", "jq", "ca-certificates", "postgresql-client-15")
# Kept between builds: a rebuild of the Debian base downloads nothing it already has.
DEBOOTSTRAP_CACHE = Path.home() / ".cache" / "podbot" / "debootstrap"
TRIMMED = ("usr/share/doc", "usr/share/man", "usr/share/info", "usr/share/locale", "var/cache/apt", "var/lib/apt/lists")
FROM = re.compile(r"^\s*FROM\s+(?:--\S+\s+)*(\S+)", re.IGNORECASE | re.MULTILINE)


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
    return _ensure(runner, BASE_IMAGE, content_hash(), lambda: build_base(runner), progress, False)


def _ensure(
    runner: Runner, image: str, digest: str, build: Callable[[], Iterator[str]], progress: Callable[[str], None], force: bool
) -> bool:
    if not force and runner.image_label(image, CONTENT_LABEL) == digest:
        return False
    for line in build():
        progress(line)
    return True


# --- the Debian base ---


def debian_hash() -> str:
    recipe = f"{DEBIAN_SUITE} {' '.join(DEBIAN_PACKAGES)} {' '.join(TRIMMED)}".encode()
    return hashlib.sha256(recipe + (SKILLS / "debian" / "Containerfile").read_bytes()).hexdigest()[:16]


def _no_devices(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
    # Device nodes cannot be made in the owner's user namespace; Podman gives every container its own /dev.
    return None if info.ischr() or info.isblk() else info


def build_debian(runner: Runner) -> Iterator[str]:
    """Build DEBIAN_IMAGE with debootstrap (needs root), yielding progress lines."""
    if os.geteuid() != 0:
        raise Unavailable(f"building {DEBIAN_IMAGE} needs root (debootstrap): run ./setup.sh or `podbot images build` as root")
    if shutil.which("debootstrap") is None:
        raise Unavailable(f"building {DEBIAN_IMAGE} needs debootstrap: apt-get install debootstrap")
    DEBOOTSTRAP_CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="podbot-debian-") as tmp:
        root, context = Path(tmp) / "root", Path(tmp) / "context"
        context.mkdir()
        command = [
            "debootstrap",
            "--variant=minbase",
            f"--cache-dir={DEBOOTSTRAP_CACHE}",
            f"--include={','.join(DEBIAN_PACKAGES)}",
            DEBIAN_SUITE,
            str(root),
            DEBIAN_MIRROR,
        ]
        yield f"debootstrap {DEBIAN_SUITE} from {DEBIAN_MIRROR} with {', '.join(DEBIAN_PACKAGES)}"
        with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as proc:
            assert proc.stdout is not None
            last = ""
            for line in proc.stdout:
                last = line.strip() or last
                yield last
        if proc.returncode != 0:
            raise Unavailable(f"debootstrap failed (exit {proc.returncode}): {last}")
        for part in TRIMMED:
            shutil.rmtree(root / part, ignore_errors=True)
        yield "packing the root filesystem"
        with tarfile.open(context / "rootfs.tar", "w") as tar:
            tar.add(root, arcname=".", filter=_no_devices)
        shutil.copy(SKILLS / "debian" / "Containerfile", context / "Containerfile")
        yield f"building {DEBIAN_IMAGE}"
        yield from runner.build_image(context, DEBIAN_IMAGE, {CONTENT_LABEL: debian_hash()})
    yield f"built {DEBIAN_IMAGE}"


# --- skills' own images ---


@dataclass(frozen=True)
class Recipe:
    """A Containerfile a manifest ships (`run.build`), built as the skill's `run.image`."""

    image: str
    context: Path
    skills: tuple[str, ...]

    @property
    def parent(self) -> str | None:
        found = FROM.search((self.context / "Containerfile").read_text())
        return found.group(1) if found else None

    def digest(self, runner: Runner) -> str:
        """Everything in the build directory, and the parent's own digest (a new base rebuilds the skill)."""
        digest = hashlib.sha256((runner.image_label(self.parent or "", CONTENT_LABEL) or "").encode())
        for path in sorted(p for p in self.context.rglob("*") if p.is_file()):
            digest.update(str(path.relative_to(self.context)).encode() + b"\0" + path.read_bytes())
        return digest.hexdigest()[:16]

    def build(self, runner: Runner) -> Iterator[str]:
        yield f"building {self.image} from {self.context / 'Containerfile'} (for {', '.join(self.skills)})"
        yield from runner.build_image(self.context, self.image, {CONTENT_LABEL: self.digest(runner)})
        yield f"built {self.image}"


def recipes(skills: Iterable[Skill]) -> list[Recipe]:
    """One recipe per image that a loaded skill builds; those built on another recipe's image come after it."""
    found: dict[str, Recipe] = {}
    for skill in skills:
        if skill.build is None:
            continue
        known = found.get(skill.run_image)
        found[skill.run_image] = Recipe(skill.run_image, skill.build, (known.skills if known else ()) + (skill.name,))
    return sorted(found.values(), key=lambda r: r.parent in found)


def needs_debian(skills: Iterable[Skill]) -> bool:
    skills = list(skills)
    return any(s.run_image == DEBIAN_IMAGE for s in skills) or any(r.parent == DEBIAN_IMAGE for r in recipes(skills))


def ensure_all(
    runner: Runner, skills: Iterable[Skill], progress: Callable[[str], None] = lambda line: None, force: bool = False
) -> list[str]:
    """Build every image the skills need that is missing or out of date (all of them with `force`); the images built."""
    skills = list(skills)
    built = []
    if _ensure(runner, BASE_IMAGE, content_hash(), lambda: build_base(runner), progress, force):
        built.append(BASE_IMAGE)
    if needs_debian(skills) and _ensure(runner, DEBIAN_IMAGE, debian_hash(), lambda: build_debian(runner), progress, force):
        built.append(DEBIAN_IMAGE)
    for recipe in recipes(skills):
        if _ensure(runner, recipe.image, recipe.digest(runner), functools.partial(recipe.build, runner), progress, force):
            built.append(recipe.image)
    return built


def missing(runner: Runner, skills: Iterable[Skill]) -> list[Problem]:
    """A FILE:LINE:COL problem for each skill whose image is not here, saying how to get it."""
    problems = []
    for skill in skills:
        if runner.has_image(skill.run_image):
            continue
        if skill.build is not None or skill.run_image in (BASE_IMAGE, DEBIAN_IMAGE):
            how = "run `podbot images build`"
        elif skill.pull:
            continue  # pulled on its first run
        else:
            how = "build it as the container owner (or ship a Containerfile: run.build), or allow run.pull: missing"
        problems.append(Problem(skill.file, *skill.image_at, f"image {skill.run_image} is not here: {how}"))
    return problems
