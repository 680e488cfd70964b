"""Secrets: named in podbot.yaml, read when a job needs them, sealed at rest, redacted before anything is written.

Two kinds of secret values pass through podbot:
- configured secrets (`secrets:` in podbot.yaml), each read from an environment
  variable or a file at the moment a job needs it, never stored by podbot;
- arguments of parameters a manifest marks `secret: true`, typed by a person.
  They are sealed (Fernet: AES-CBC + HMAC) as soon as they are checked, with a
  key kept in `<data_dir>/secret.key` (mode 0600), so the ledger, a pending
  confirmation and every text made from the arguments hold only the sealed
  form; the worker unseals them for the container alone.

Every value the vault has seen is replaced by `***` in a run's output before it is
recorded, and in podbot's log lines (`log_filter`).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken

from bot.errors import Unavailable
from bot.skill import SecretUse

MASK = "***"
# The prefix of a sealed argument value. It starts with a control character, which every message
# loses where it arrives (bot.flow.clean): no one can type a value podbot would take for sealed.
SEALED = "\x1fsealed:"
KEY_FILE = "secret.key"


@dataclass(frozen=True)
class Source:
    """Where a configured secret's value is read from: an environment variable or a file."""

    name: str
    env: str | None = None
    file: str | None = None

    def where(self) -> str:
        return f"environment variable {self.env}" if self.env else f"file {self.file}"


def is_sealed(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(SEALED)


def shown(value: Any) -> Any:
    """A value as replies, the audit and logs may show it: a sealed one is ***."""
    return MASK if is_sealed(value) else value


class Vault:
    """One per process: reads configured secrets, seals and unseals secret arguments, redacts what it has seen."""

    def __init__(self, config_secrets: dict[str, dict[str, str]], data_dir: Path, environ: dict[str, str] | None = None):
        """`config_secrets`: podbot.yaml `secrets` (name -> {env: VARIABLE} or {file: PATH})."""
        self.secrets = {name: Source(name, spec.get("env"), spec.get("file")) for name, spec in config_secrets.items()}
        self._key_path = data_dir / KEY_FILE
        self._environ = environ
        self._fernet: Fernet | None = None
        self._known: set[str] = set()
        self._lock = threading.Lock()

    # --- configured secrets ---

    def value(self, name: str) -> str:
        """The secret's current value; Unavailable (one line: what to set) when it is not configured or empty."""
        source = self.secrets.get(name)
        if source is None:
            raise Unavailable(f"secret {name} is not configured: add it under `secrets:` in podbot.yaml")
        if source.env:
            environ = os.environ if self._environ is None else self._environ
            value = environ.get(source.env, "")
        else:
            try:
                value = Path(source.file or "").read_text().rstrip("\r\n")
            except OSError as exc:
                raise Unavailable(f"secret {name} cannot be read from {source.where()}: {exc.strerror}") from None
        if not value:
            raise Unavailable(f"secret {name} is not set: its {source.where()} is empty")
        self.remember([value])
        return value

    def for_container(self, uses: Iterable[SecretUse]) -> tuple[dict[str, str], dict[str, str]]:
        """The secrets a skill names, as (environment variables, files by container path)."""
        env: dict[str, str] = {}
        files: dict[str, str] = {}
        for use in uses:
            if use.env:
                env[use.env] = self.value(use.name)
            else:
                files[use.file or ""] = self.value(use.name)
        return env, files

    # --- secret arguments ---

    def seal_args(self, secret_params: Iterable[str], args: dict[str, Any]) -> dict[str, Any]:
        """The arguments with every secret parameter's value sealed (those sealed already stay as they are)."""
        out = dict(args)
        for name in secret_params:
            value = out.get(name)
            if value is not None and not is_sealed(value):
                self.remember([str(value)])
                out[name] = SEALED + self._cipher().encrypt(str(value).encode()).decode()
        return out

    def unseal_args(self, args: dict[str, Any], secret_params: Iterable[str]) -> dict[str, Any]:
        """The arguments with the sealed values of secret parameters opened; remembered for redaction."""
        out = dict(args)
        for name in secret_params:
            value = args.get(name)
            if is_sealed(value):
                try:
                    plain = self._cipher().decrypt(str(value)[len(SEALED) :].encode()).decode()
                except InvalidToken:
                    raise Unavailable(f"the secret argument {name} cannot be opened: {self._key_path} changed since it was given") from None
                self.remember([plain])
                out[name] = plain
        return out

    def _cipher(self) -> Fernet:
        with self._lock:
            if self._fernet is None:
                self._fernet = Fernet(self._key())
            return self._fernet

    def _key(self) -> bytes:
        """The data dir's key, created once (mode 0600) by whichever process needs it first."""
        try:
            return self._key_path.read_bytes().strip()
        except FileNotFoundError:
            pass
        self._key_path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(self._key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return self._key_path.read_bytes().strip()
        with os.fdopen(fd, "wb") as out:
            out.write(Fernet.generate_key())
        return self._key_path.read_bytes().strip()

    # --- redaction ---

    def remember(self, values: Iterable[str]) -> None:
        with self._lock:
            self._known.update(v for v in values if v)

    def redact(self, text: str, values: Iterable[str] = ()) -> str:
        """`text` with every known secret value (and `values`) replaced by ***, longest first."""
        with self._lock:
            known = self._known | {v for v in values if v}
        for value in sorted(known, key=len, reverse=True):
            text = text.replace(value, MASK)
        return text

    def log_filter(self) -> logging.Filter:
        """A handler filter that redacts log lines (and their tracebacks) before they are written."""
        vault = self

        class Redact(logging.Filter):
            def filter(self, record: logging.LogRecord) -> bool:
                record.msg, record.args = vault.redact(record.getMessage()), None
                if record.exc_info and not record.exc_text:
                    record.exc_text = logging.Formatter().formatException(record.exc_info)
                if record.exc_text:
                    record.exc_text = vault.redact(record.exc_text)
                return True

        return Redact()

    def guard(self, logger: logging.Logger) -> None:
        """Redact every line `logger`'s handlers write."""
        for handler in logger.handlers:
            for old in [f for f in handler.filters if type(f).__name__ == "Redact"]:
                handler.removeFilter(old)  # an earlier Bot's vault in this process
            handler.addFilter(self.log_filter())
