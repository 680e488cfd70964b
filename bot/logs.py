"""The log an operator reads: `<data_dir>/podbot.log`, rotated, as text or JSON lines, and what reaches stderr.

Job lines carry the podbot job id, skill, person and outcome (the worker passes
them as `extra`); Huey's own lines name its internal task ids, which mean
nothing to an operator, so only its warnings are kept. Warnings from Python
(`warnings.warn`) and exceptions escaping a thread go to the log too, so with
stderr quiet (the interactive chat) none of them reaches the terminal.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import os
import sys
import threading
import time

from bot.config import Config

FIELDS = ("job", "skill", "person", "outcome")  # a job line's own fields, in JSON lines
TEXT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
QUIET = logging.CRITICAL + 1  # a level no record reaches


class JsonLines(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update({name: getattr(record, name) for name in FIELDS if hasattr(record, name)})
        if record.exc_info:
            line["traceback"] = record.exc_text or self.formatException(record.exc_info)  # exc_text: scrubbed of secrets
        return json.dumps(line, ensure_ascii=False)


class SharedRotatingFile(logging.handlers.RotatingFileHandler):
    """A log file several podbot processes append to: whichever finds it full rotates it, the others reopen the new one."""

    def emit(self, record: logging.LogRecord) -> None:
        if self.stream is not None:
            try:
                moved = os.stat(self.baseFilename).st_ino != os.fstat(self.stream.fileno()).st_ino
            except FileNotFoundError:
                moved = True
            if moved:
                self.stream.close()
                self.stream = self._open()
        super().emit(record)


def setup(cfg: Config, verbose: bool, to_stderr: int) -> logging.Handler:
    """Log to the rotated file (and stderr from `to_stderr` up); returns the stderr handler, whose level may change later."""
    cfg.data_dir.mkdir(parents=True, exist_ok=True)
    root = logging.getLogger()
    root.setLevel(logging.DEBUG if verbose else getattr(logging, cfg.log_level.upper()))
    logging.getLogger("huey").setLevel(logging.DEBUG if verbose else logging.WARNING)
    formatter = JsonLines() if cfg.log_format == "json" else logging.Formatter(TEXT)
    file_handler = logging.handlers.RotatingFileHandler(
        cfg.data_dir / "podbot.log", maxBytes=cfg.log_max_bytes, backupCount=cfg.log_backups
    )
    file_handler.setFormatter(formatter)
    root.addHandler(file_handler)
    stream = logging.StreamHandler(sys.stderr)
    stream.setFormatter(logging.Formatter(TEXT))
    stream.setLevel(logging.DEBUG if verbose else to_stderr)
    root.addHandler(stream)
    logging.captureWarnings(True)
    threading.excepthook = _log_thread_exception
    return stream


def _log_thread_exception(args: threading.ExceptHookArgs) -> None:
    if args.exc_type is not SystemExit and args.exc_value is not None:
        name = args.thread.name if args.thread else "a thread"
        logging.getLogger(__name__).error("uncaught in %s", name, exc_info=args.exc_value)
