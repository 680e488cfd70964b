"""Which understanding stages the configured model files allow, said the same way at start, in `--version`, status and eval.

Models are looked up under the models dir (by default `<data_dir>/models`), so a
new data dir has none: that must be said, never reported as a stage that is on.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bot.config import ModelConfig

INSTALL = "podbot models install"


@dataclass(frozen=True)
class Stage:
    name: str  # "embeddings" (choosing a skill for plain text) or "model" (filling its arguments)
    path: Path
    present: bool
    enabled: bool

    @property
    def on(self) -> bool:
        return self.present and self.enabled

    @property
    def state(self) -> str:
        if not self.enabled:
            return "off (disabled)"
        return "on" if self.present else f"off: {self.path} is missing (`{INSTALL}`)"


def stages(cfg: ModelConfig) -> tuple[Stage, Stage]:
    embeddings = cfg.dir / cfg.embeddings
    return (
        Stage("embeddings", embeddings, (embeddings / "model.safetensors").exists(), True),
        Stage("model", cfg.path, cfg.path.is_file(), cfg.enabled),
    )


def warning(cfg: ModelConfig) -> str | None:
    """One line when a configured model file is missing, with the command that installs it; None when all are there."""
    missing = [s for s in stages(cfg) if s.enabled and not s.present]
    if not missing:
        return None
    what = (
        "plain-language understanding is off"
        if missing[0].name == "embeddings"
        else "the model stage is off (no arguments from plain text)"
    )
    files = ", ".join(str(s.path) for s in missing)
    return f"{what}: missing {files}; `{INSTALL}` (with this config) installs the bundled models there"
