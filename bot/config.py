"""The one config loader: podbot.yaml, then PODBOT_* environment variables.

Nested keys use a double underscore in the environment, e.g.
PODBOT_PODMAN__USER=ops or PODBOT_LIMITS__MEMORY=512m. Values are read as
YAML, so PODBOT_ALLOW_NETWORK=false and PODBOT_MANIFEST_DIRS='[/a, /b]' work.
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from bot.errors import Problems
from bot.schema import Document, Problem, YamlError, bundled_schema, parse_duration, read_yaml, validate

ROOT = Path(__file__).resolve().parent.parent
ENV_PREFIX = "PODBOT_"


def _default_data_dir() -> str:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return str(Path(base) / "podbot")


# Every setting's default, in this one place; the schema (bot/schemas/config.schema.json) says what is valid.
DEFAULTS: dict[str, Any] = {
    "data_dir": None,
    "manifest_dirs": [str(ROOT / "manifests")],
    # The console is local: whoever can type into it can already run podman.
    "roles": {"admin": ["console:*"]},
    "default_role": "user",
    "admin_roles": ["admin"],
    "mounts": {"logs": "/var/log"},
    "alert_conversation": "console",
    "allow_network": True,
    "network_mode": "slirp4netns",
    "workers": 2,
    "answer_timeout": 120,
    "rate_limit": {"jobs": 30, "per": 60},
    "log_level": "info",
    "podman": {"user": "podbot", "socket": None, "runtime": "runc"},
    "platforms": {},
    # The understanding stages (README: "Understanding plain requests").
    "model": {
        "enabled": True,
        "dir": None,
        "file": "SmolLM2-135M-Instruct.Q4_1.gguf",
        "embeddings": "all-MiniLM-L6-v2",
        "threads": 2,
        "context": 2048,
        "choose": False,
        "max_input": 500,
        "max_tokens": 48,
        "shortlist": 3,
        "none_below": 0.40,
        "lead_below": 0.05,
        "confident": 0.10,
        "margin": 0.04,
    },
    "limits": {
        "memory": "256m",
        "cpus": 1.0,
        "pids": 128,
        "nofile": 1024,
        "nproc": 256,
        "output_bytes": 65536,
        # The longest a manifest may set its run.timeout, retry_delay or cache to.
        "max_timeout": "1h",
    },
}


@dataclass(frozen=True)
class PodmanConfig:
    user: str
    socket: str | None
    runtime: str


@dataclass(frozen=True)
class RateLimit:
    jobs: int
    per: float


@dataclass(frozen=True)
class Limits:
    memory: str
    cpus: float
    pids: int
    nofile: int
    nproc: int
    output_bytes: int
    max_timeout: float  # seconds


@dataclass(frozen=True)
class ModelConfig:
    enabled: bool  # the GPT4All stage; off: embeddings choose, and missing arguments become questions
    dir: Path  # where `podbot models install` puts files; default <data_dir>/models
    file: str  # a GGUF in dir, or an absolute path
    embeddings: str  # a sentence-embedding model directory in dir
    threads: int
    context: int  # the model's context window in tokens
    choose: bool  # let the model pick among close candidates; worth it only with a 1B+ model
    max_input: int  # longer messages are not interpreted (characters)
    max_tokens: int  # bound on what the model may write for one answer
    shortlist: int  # candidates the embeddings hand on
    none_below: float  # best score under this: nothing fits, answer with what the person can run
    lead_below: float  # best score ahead of background chatter by less than this (or the calibrated gap): nothing fits
    confident: float  # lead beyond that floor a choice needs before a missing argument is asked for
    margin: float  # the best is "clearly ahead" when it leads the next by at least this much

    @property
    def path(self) -> Path:
        return self.dir / self.file


@dataclass(frozen=True)
class Config:
    data_dir: Path
    manifest_dirs: tuple[Path, ...]
    roles: dict[str, tuple[str, ...]]
    default_role: str
    admin_roles: frozenset[str]
    mounts: dict[str, str]
    alert_conversation: str
    allow_network: bool
    network_mode: str
    workers: int
    answer_timeout: float
    rate_limit: RateLimit
    log_level: str
    podman: PodmanConfig
    limits: Limits
    platforms: dict[str, dict]
    model: ModelConfig
    source: str  # the file it came from, or "defaults"

    @property
    def db_path(self) -> Path:
        return self.data_dir / "podbot.db"

    @property
    def queue_path(self) -> Path:
        return self.data_dir / "queue.db"


def _merge(base: dict, override: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict) and key not in ("roles", "mounts", "platforms"):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _env_overrides(environ: dict[str, str]) -> dict:
    overrides: dict[str, Any] = {}
    for name, raw in sorted(environ.items()):
        if not name.startswith(ENV_PREFIX) or name == "PODBOT_CONFIG":
            continue
        keys = name[len(ENV_PREFIX) :].lower().split("__")
        try:
            value = yaml.safe_load(raw) if raw != "" else None
        except yaml.YAMLError:
            value = raw
        target = overrides
        for key in keys[:-1]:
            target = target.setdefault(key, {})
        target[keys[-1]] = value
    return overrides


def load(path: str | None = None, environ: dict[str, str] | None = None) -> Config:
    """Read config from `path` (or $PODBOT_CONFIG, or ./podbot.yaml if present)."""
    environ = dict(os.environ if environ is None else environ)
    path = path or environ.get("PODBOT_CONFIG") or ("podbot.yaml" if Path("podbot.yaml").exists() else None)
    if path:
        try:
            doc = read_yaml(Path(path))
        except FileNotFoundError:
            raise Problems([Problem(path, 1, 1, "config file not found")]) from None
        except YamlError as exc:
            raise Problems([exc.problem]) from None
        if doc.data is None:
            doc.data = {}
        if not isinstance(doc.data, dict):
            raise Problems([doc.at((), "config must be a YAML mapping")])
    else:
        doc = Document("(defaults)", {}, {(): (1, 1)})
    file_problems = validate(doc, bundled_schema("config"))
    env = _env_overrides(environ)
    env_doc = Document("PODBOT_* environment", env, {})
    problems = file_problems + validate(env_doc, bundled_schema("config"))
    if problems:
        raise Problems(problems)
    data = _merge(_merge(DEFAULTS, doc.data), env)
    base = Path(path).resolve().parent if path else Path.cwd()
    data_dir = (base / os.path.expanduser(data["data_dir"] or _default_data_dir())).resolve()
    model = data["model"]
    models_dir = (base / os.path.expanduser(model["dir"])).resolve() if model["dir"] else data_dir / "models"
    return Config(
        data_dir=data_dir,
        manifest_dirs=tuple((base / os.path.expanduser(d)).resolve() for d in data["manifest_dirs"]),
        roles={role: tuple(ids) for role, ids in data["roles"].items()},
        default_role=data["default_role"],
        admin_roles=frozenset(data["admin_roles"]),
        mounts=dict(data["mounts"]),
        alert_conversation=data["alert_conversation"],
        allow_network=bool(data["allow_network"]),
        network_mode=data["network_mode"],
        workers=int(data["workers"]),
        answer_timeout=float(data["answer_timeout"]),
        rate_limit=RateLimit(**data["rate_limit"]),
        log_level=data["log_level"],
        podman=PodmanConfig(**data["podman"]),
        limits=Limits(**{**data["limits"], "max_timeout": parse_duration(data["limits"]["max_timeout"])}),
        platforms=dict(data["platforms"]),
        model=ModelConfig(**{**model, "dir": models_dir, "file": os.path.expanduser(model["file"])}),
        source=str(path) if path else "defaults",
    )
