"""Where the skills that ship with podbot are: `manifests/` and `skills/`.

In a clone they are the top-level folders; a built wheel carries them as
package data under `bot/data/` (pyproject.toml maps them there), so an
installed podbot finds its own skills and image recipes without the clone.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGED = Path(__file__).resolve().parent / "data"
_CLONE = Path(__file__).resolve().parent.parent


def _find(name: str) -> Path:
    packaged = _PACKAGED / name
    return packaged if packaged.is_dir() else _CLONE / name


MANIFESTS = _find("manifests")
SKILLS = _find("skills")
