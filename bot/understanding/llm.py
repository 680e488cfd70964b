"""The one place that talks to the local GPT4All model.

A call is a fixed `prefix` (instructions and few-shot turns), a `template`
around the person's text, and a bound on the answer. The prefix is decoded
once and kept in the model's context: each call rewinds the context to the end
of the prefix and decodes only what follows, which turns a multi-second
prompt into a fraction of a second on two cores.

The person's text is tokenized with special-token parsing off, so typing
`<|im_end|>` or `<|im_start|>system` yields plain text tokens: it cannot
close the turn it sits in or open a new one. The fixed parts are ours and
are parsed with special tokens on. gpt4all 2.8 does not apply the chat
template in the GGUF, so the turn markers are written here: ChatML (SmolLM2,
Qwen2) or Llama 3's, chosen by what the GGUF's template uses.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from bot.understanding.model_files import gguf_strings

N_BATCH = 128  # prompt tokens decoded per step; larger batches gained nothing on 2 cores
# gpt4all substitutes %1 and %2 in templates; fixed text must never contain them as placeholders.
_PLACEHOLDER = re.compile(r"%([12])(?![0-9])")


@dataclass(frozen=True)
class ChatFormat:
    start: str  # opens a turn; {role} is replaced
    end: str  # closes it

    def open(self, role: str) -> str:
        return self.start.format(role=role)

    def turn(self, role: str, text: str) -> str:
        return self.open(role) + text + self.end


CHATML = ChatFormat("<|im_start|>{role}\n", "<|im_end|>\n")
LLAMA3 = ChatFormat("<|start_header_id|>{role}<|end_header_id|>\n\n", "<|eot_id|>")


def chat_format(path: Path) -> ChatFormat:
    """The turn markers the GGUF's own chat template uses; ChatML when it has none we know."""
    try:
        template = gguf_strings(path, {"tokenizer.chat_template"}).get("tokenizer.chat_template", (0, ""))[1]
    except (OSError, ValueError):
        template = ""
    return LLAMA3 if "<|start_header_id|>" in template else CHATML


@contextmanager
def _quiet_stderr() -> Iterator[None]:
    """gpt4all's backend search prints a line for every CUDA library it cannot find; noise on a CPU host."""
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _escape(fixed: str) -> str:
    return _PLACEHOLDER.sub(r"% \1", fixed)


class TooLong(ValueError):
    """The text would not fit in the model's context next to the prompt."""


class LocalModel:
    """One loaded GGUF. Calls are serialized: a llama.cpp context serves one prompt at a time."""

    def __init__(self, path: Path, threads: int, context: int):
        from gpt4all import GPT4All  # imported here: loading its native library costs time nobody else should pay

        self.path = path
        self.context = context
        self.format = chat_format(path)
        with _quiet_stderr():
            self._gpt = GPT4All(
                path.name, model_path=str(path.parent), allow_download=False, n_threads=threads, n_ctx=context, device="cpu", verbose=False
            )
        self._llm = self._gpt.model
        self._lock = threading.Lock()
        self._prefix: str | None = None
        self._prefix_tokens = 0

    def _settings(self, max_tokens: int) -> dict:
        # Greedy and unpenalized: the same text always gets the same answer.
        return {"n_predict": max_tokens, "temp": 0.0, "top_k": 1, "repeat_penalty": 1.0, "n_batch": N_BATCH}

    def _load_prefix(self, prefix: str) -> None:
        """Make `prefix` the start of the context: rewind to its end when it is there, else decode it."""
        if prefix == self._prefix:
            self._llm.context.n_past = self._prefix_tokens
            return
        self._prefix = None  # a failure half-way must not leave a stale prefix marked as loaded
        self._llm.prompt_model("", prefix + "%1", lambda *_: True, reset_context=True, special=True, **self._settings(0))
        self._prefix, self._prefix_tokens = prefix, self._llm.context.n_past

    def complete(self, prefix: str, before: str, text: str, after: str, max_tokens: int, done: Callable[[str], bool] | None = None) -> str:
        """Decode prefix + before + text + after, then generate at most `max_tokens` tokens.

        `done` sees the answer so far after each token; True stops generation there.
        """
        template = _escape(before) + "%1" + _escape(after)
        pieces: list[str] = []

        def on_token(_token: int, piece: str) -> bool:
            pieces.append(piece)
            return not (done and done("".join(pieces)))

        with self._lock:
            self._load_prefix(_escape(prefix))
            # Every token covers at least one byte, so this bound is safe. Past it, gpt4all would
            # silently drop the start of the context (the cached prefix) to make room.
            room = self.context - self._prefix_tokens - len((template + text).encode()) - max_tokens
            if room < 0:
                raise TooLong(f"{len(text)} characters do not fit in a {self.context}-token context")
            self._llm.prompt_model(text, template, on_token, reset_context=False, special=False, **self._settings(max_tokens))
        return "".join(pieces)


_loaded: dict[tuple[Path, int, int], LocalModel] = {}
_lock = threading.Lock()


def load(path: Path, threads: int, context: int) -> LocalModel:
    """The process's one model for these settings, loaded on first use and kept warm."""
    key = (path, threads, context)
    with _lock:
        if key not in _loaded:
            _loaded[key] = LocalModel(path, threads, context)
        return _loaded[key]
