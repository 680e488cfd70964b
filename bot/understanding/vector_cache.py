"""Sentence vectors kept on disk, keyed by a hash of the text and of the encoder.

Encoding a catalogue's texts is the one start-up cost that grows with it
(~4 ms a text: 25 s for 1,000 skills of six examples). A text's vector only
changes with the text or the model, so vectors are stored in one file per
encoder and only texts not found there are encoded. When something was added
the file is rewritten atomically with the vectors of the current texts only
(so it does not grow with every edit); a damaged file is ignored and rebuilt.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)
CHUNK = 64


def text_key(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _read(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path) as data:
            keys, vectors = data["keys"], data["vectors"]
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
        if path.exists():
            log.warning("vector cache %s unreadable (%s): rebuilding it", path, exc)
        return {}
    return dict(zip(keys.tolist(), vectors, strict=True))


def _write(path: Path, known: dict[str, np.ndarray]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            np.savez(out, keys=np.array(list(known)), vectors=np.stack(list(known.values())))
        os.replace(tmp, path)
    except OSError as exc:  # a read-only models dir costs start-up time, nothing else
        log.warning("vector cache %s not written: %s", path, exc)
        Path(tmp).unlink(missing_ok=True)


def encode(path: Path, encode_texts: Callable[[list[str]], np.ndarray], texts: Sequence[str]) -> np.ndarray:
    """Vectors of `texts` (one row each), encoding only those `path` does not hold yet."""
    known = _read(path)
    keys = [text_key(t) for t in texts]
    todo = list(dict.fromkeys(k for k in keys if k not in known))
    if todo:
        by_key = dict(zip(keys, texts, strict=True))
        # In chunks of similar length: a batch is padded to its longest text, and attention grows with its square.
        todo.sort(key=lambda k: len(by_key[k]))
        for start in range(0, len(todo), CHUNK):
            chunk = todo[start : start + CHUNK]
            known.update(zip(chunk, encode_texts([by_key[k] for k in chunk]), strict=True))
        _write(path, {k: known[k] for k in dict.fromkeys(keys)})
    if not texts:
        return encode_texts([])
    return np.stack([known[k] for k in keys]).astype(np.float32)
