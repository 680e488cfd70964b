"""The one config loader: podbot.yaml, then PODBOT_* environment variables.

Nested keys use a double underscore in the environment, e.g.
PODBOT_PODMAN__USER=ops or PODBOT_LIMITS__MEMORY=512m. Values are read as
YAML, so PODBOT_ALLOW_NETWORK=false and PODBOT_MANIFEST_DIRS='[/a, /b]' work.
"""

from __future__ import annotations

import copy
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from bot.errors import Problems
from bot.schema import Document, Problem, YamlError, bundled_schema, parse_duration, read_yaml, validate
from bot.shipped import MANIFESTS

ENV_PREFIX = "PODBOT_"


def _default_data_dir() -> str:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return str(Path(base) / "podbot")


# Every setting's default, in this one place; the schema (bot/schemas/config.schema.json) says what is valid.
DEFAULTS: dict[str, Any] = {
    "data_dir": None,
    # None: SQLite files in data_dir. postgresql://…: one database shared by processes on several hosts.
    "database": None,
    "host": None,  # None: the machine's host name
    "manifest_dirs": [str(MANIFESTS)],
    # The console is local: whoever can type into it can already run podman.
    "roles": {"admin": ["console:*"]},
    "default_role": "user",
    "admin_roles": ["admin"],
    # Merged with podbot.yaml's (a name set there replaces the one here). host_root: the host's
    # filesystem tree, read-only, for skills that report on the host (disk_usage).
    "mounts": {"logs": "/var/log", "host_root": "/"},
    # name -> {env: VARIABLE} or {file: /path}: read when a job needs it, never stored (README "Secrets").
    # Merged with podbot.yaml's; these are the ones the shipped skills name.
    "secrets": {"pg_password": {"env": "PG_PASSWORD"}, "webhook_token": {"env": "WEBHOOK_TOKEN"}},
    # skill name -> environment variables for its container that are settings, not secrets (a DSN, webhook URLs).
    "skill_env": {},
    "alert_conversation": "console",
    "allow_network": True,
    "network_mode": "slirp4netns",
    "workers": 2,
    "retention": {"jobs": "90d", "audit": "365d", "outbox": "7d"},
    "answer_timeout": 120,
    "approval_timeout": "1h",
    "rate_limit": {"jobs": 30, "per": 60},
    "log_level": "info",
    "log_format": "text",
    "log_max_bytes": 10 * 1024 * 1024,
    "log_backups": 5,
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
    # The gateway (README: "Web, API and monitoring"): off until `listen` names an address.
    "gateway": {
        "listen": None,  # e.g. 127.0.0.1:8080 (8080 is the convention; port 0 takes a free one)
        "token_ttl": "24h",  # how long a token from `podbot token create` lives unless --ttl says otherwise
        "login_ttl": "10m",  # how long a one-time link from `podbot web login` may be used (once)
        "session_ttl": "12h",  # how long a browser stays logged in after using the link
        "public_url": None,  # the address people open, e.g. https://podbot.example.org (default: http://<listen>)
        # Off loopback the gateway needs TLS of its own, or a declared reverse proxy that terminates it (README).
        "tls_cert": None,
        "tls_key": None,
        "reverse_proxy": False,
        "max_frame": 65536,  # bytes in one WebSocket frame; a bigger one closes the connection (1009)
        "heartbeat": 20.0,  # seconds between WebSocket pings; a client that misses a pong is closed
        "auth_timeout": 10.0,  # seconds a new connection has to send its auth frame
        "max_unauthenticated": 8,  # connections per remote address still waiting to authenticate
        "audit_failures": 60,  # refused requests audited per minute; the rest are counted in the next entry
        "hooks": {},  # NAME -> {skill, as, args, body_arg, reply_to}: POST /api/v1/hooks/NAME (secret: HOOK_<NAME>_SECRET)
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
class Retention:
    """Seconds each kind of finished history is kept (None: forever)."""

    jobs: float | None
    audit: float | None
    outbox: float | None


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
class GatewayConfig:
    listen: str | None  # HOST:PORT, or None: no gateway
    token_ttl: float  # seconds
    login_ttl: float
    session_ttl: float
    public_url: str | None
    tls_cert: str | None  # PEM files; both set: the gateway speaks HTTPS and WSS itself
    tls_key: str | None
    reverse_proxy: bool  # a proxy in front terminates TLS (README "Web, API and monitoring")
    max_frame: int
    heartbeat: float
    auth_timeout: float
    max_unauthenticated: int
    audit_failures: int
    hooks: dict[str, dict[str, Any]]

    @property
    def address(self) -> tuple[str, int]:
        """`listen` split into host and port (an IPv6 host may be written in brackets)."""
        assert self.listen is not None
        host, _, port = self.listen.rpartition(":")
        return host.strip("[]"), int(port)


@dataclass(frozen=True)
class Config:
    data_dir: Path
    database: str | None
    host: str
    manifest_dirs: tuple[Path, ...]
    roles: dict[str, tuple[str, ...]]
    default_role: str
    admin_roles: frozenset[str]
    mounts: dict[str, str]
    secrets: dict[str, dict[str, str]]
    skill_env: dict[str, dict[str, str]]
    alert_conversation: str
    allow_network: bool
    network_mode: str
    workers: int
    retention: Retention
    answer_timeout: float
    approval_timeout: float  # seconds
    rate_limit: RateLimit
    log_level: str
    log_format: str
    log_max_bytes: int
    log_backups: int
    podman: PodmanConfig
    limits: Limits
    platforms: dict[str, dict]
    model: ModelConfig
    gateway: GatewayConfig
    source: str  # the file it came from, or "defaults"

    @property
    def queue_path(self) -> Path:
        """Huey's SQLite file, when `database` is not PostgreSQL (which then holds the queue too)."""
        return self.data_dir / "queue.db"


def _merge(base: dict, override: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in override.items():
        if key == "secrets" and isinstance(value, dict):
            out[key] = {**out.get(key, {}), **value}  # a name set again is replaced whole (env or file, never both)
        elif isinstance(value, dict) and isinstance(out.get(key), dict) and key not in ("roles", "platforms", "skill_env"):
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
        database=data["database"],
        host=data["host"] or socket.gethostname(),
        manifest_dirs=tuple((base / os.path.expanduser(d)).resolve() for d in data["manifest_dirs"]),
        roles={role: tuple(ids) for role, ids in data["roles"].items()},
        default_role=data["default_role"],
        admin_roles=frozenset(data["admin_roles"]),
        mounts=dict(data["mounts"]),
        secrets={name: dict(spec) for name, spec in data["secrets"].items()},
        skill_env={name: {k: str(v) for k, v in env.items()} for name, env in data["skill_env"].items()},
        alert_conversation=data["alert_conversation"],
        allow_network=bool(data["allow_network"]),
        network_mode=data["network_mode"],
        workers=int(data["workers"]),
        retention=Retention(**{kind: parse_duration(keep) if keep else None for kind, keep in data["retention"].items()}),
        answer_timeout=float(data["answer_timeout"]),
        approval_timeout=parse_duration(data["approval_timeout"]),
        rate_limit=RateLimit(**data["rate_limit"]),
        log_level=data["log_level"],
        log_format=data["log_format"],
        log_max_bytes=int(data["log_max_bytes"]),
        log_backups=int(data["log_backups"]),
        podman=PodmanConfig(**data["podman"]),
        limits=Limits(**{**data["limits"], "max_timeout": parse_duration(data["limits"]["max_timeout"])}),
        platforms=dict(data["platforms"]),
        model=ModelConfig(**{**model, "dir": models_dir, "file": os.path.expanduser(model["file"])}),
        gateway=GatewayConfig(
            **{
                **data["gateway"],
                **{key: parse_duration(data["gateway"][key]) for key in ("token_ttl", "login_ttl", "session_ttl")},
                **{key: str(base / os.path.expanduser(data["gateway"][key])) for key in ("tls_cert", "tls_key") if data["gateway"][key]},
            }
        ),
        source=str(path) if path else "defaults",
    )
