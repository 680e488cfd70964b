"""The console: a local chat with podbot in a terminal, or line-by-line from a pipe.

Interactive (a terminal): a prompt with line editing, history (kept in a
file across chats) and Tab completion of commands and skill names (GNU
readline, from the standard library); replies print as they arrive.
Piped: one message per line, each reply printed, and exit once every job
those lines started has replied — so scripts and tests can drive the bot:
    printf '/skills\\ndf /\\n' | podbot chat --user alice

Each console person has their own conversation, `console:NAME`: several chats
(or a chat beside `podbot run`) on one data dir each show only their person's
replies. The shared conversation `console` (the default alert_conversation)
is shown by whichever console chat is open. A closed output (`podbot chat |
head -1`) ends the chat: nobody is left to read it, so this person's replies
still owed are given up, and the shared ones wait for another console.
"""

from __future__ import annotations

import getpass
import os
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, nullcontext, suppress
from itertools import count
from pathlib import Path
from types import ModuleType
from typing import TextIO

from adapters.contract import BotPort, SimpleAdapter, Undeliverable
from adapters.format import visible
from bot.errors import PodbotError
from bot.flow import Message, Reply

SHARED = "console"  # the conversation every console shows (alerts)
PROMPT = "> "
HISTORY_LINES = 1000


def completions(line: str, names: Iterable[str]) -> list[str]:
    """What Tab offers for the last word of `line`: command and skill `names` as the first word (`/sk` → `/skills `),
    and after `/help`; nothing elsewhere (arguments are the person's)."""
    words = line.split(" ")
    if len(words) == 1 and words[0].startswith("/"):
        return sorted(f"/{name} " for name in set(names) if f"/{name}".startswith(words[0]))
    if len(words) == 2 and words[0] == "/help":
        return sorted(f"{name} " for name in set(names) if name.startswith(words[1]))
    return []


class ConsoleAdapter(SimpleAdapter):
    platform = "console"

    def __init__(self, user: str | None = None, out: TextIO = sys.stdout, history: Path | None = None):
        """`history`: where an interactive chat keeps the lines typed (None: not kept)."""
        self.user = user or getpass.getuser()
        self.out = out
        self.history = history
        self._readline: ModuleType | None = None  # while an interactive chat edits lines
        self.closed = threading.Event()  # the output went away; the chat ends
        self._lock = threading.Lock()
        self._ids = count(1)
        self._session = f"{int(time.time() * 1000)}"
        self._prompting = False

    @property
    def conversation(self) -> str:
        return f"console:{self.user}"

    @property
    def conversations(self) -> tuple[str, ...]:
        """What this console shows: its person's conversation and the shared one."""
        return (self.conversation, SHARED)

    def send(self, reply: Reply) -> None:
        with self._lock:
            if not self.closed.is_set():
                try:
                    self._write(reply)
                    return
                except BrokenPipeError:
                    self._close()
        # Whoever closed the output did not want the rest; a shared reply waits for another console.
        if reply.conversation == SHARED:
            raise ConnectionError("this console's output is closed")
        raise Undeliverable("the console's output was closed")

    def _write(self, reply: Reply) -> None:
        if self._prompting:
            self.out.write("\r\033[K")  # a job's result arrived while the prompt waits: print above it
        self.out.write(visible(reply.text) + "\n")
        if reply.code:
            self.out.write(visible(reply.code).rstrip("\n") + "\n")
        if self._prompting:
            self.out.write(PROMPT + (self._readline.get_line_buffer() if self._readline else ""))
        self.out.flush()

    def _close(self) -> None:
        self.closed.set()
        try:
            target = self.out.fileno()
        except (OSError, ValueError):
            return  # not a file (a test's StringIO): nothing is flushed at exit
        # What is still buffered can never be written; the flush at exit must not fail on the closed pipe too.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, target)
        os.close(devnull)

    def message(self, text: str) -> Message:
        return Message(
            platform=self.platform,
            conversation=self.conversation,
            user=f"console:{self.user}",
            text=text,
            user_name=self.user,
            is_direct=True,
            message_id=f"{self._session}-{next(self._ids)}",
        )

    def run(self, bot: BotPort, stdin: TextIO = sys.stdin) -> list[int]:
        """Read messages until end of input or a closed output; when piped, wait for every job to reply.

        Returns the jobs the replies named once every one of them has replied (piped, output still open);
        otherwise nothing (interactive, or nobody left to tell).
        """
        interactive = stdin.isatty()
        jobs: list[int] = []
        if interactive:
            with suppress(PodbotError):
                self.send(Reply(self.conversation, f"podbot: hello {self.user}. Type /help, /skills, or e.g. `df /`. Ctrl-D quits."))
        with self._line_editing(bot) if interactive else nullcontext():
            while not self.closed.is_set():
                text = self._prompt() if interactive else stdin.readline()
                if not text:
                    break
                replies = bot.receive(self.message(text.rstrip("\n")))
                jobs.extend(r.job_id for r in replies if r.job_id is not None)
                # Each line's immediate answer is shown before the next prompt or line.
                self._drain(bot, [])
        if interactive:
            return []
        self._drain(bot, jobs)
        return [] if self.closed.is_set() else jobs

    @contextmanager
    def _line_editing(self, bot: BotPort) -> Iterator[None]:
        """GNU readline for input(): editing, history from and back to the history file, Tab completion."""
        import readline  # on a terminal only: importing it may write terminal control codes

        readline.set_completer_delims(" \t")
        readline.parse_and_bind("tab: complete")

        def complete(word: str, state: int) -> str | None:
            names = [c.name for c in bot.commands()] + [s.name for s in bot.skills(f"console:{self.user}")]
            options = completions(readline.get_line_buffer()[: readline.get_endidx()], names)
            return options[state] if state < len(options) else None

        readline.set_completer(complete)
        readline.set_history_length(HISTORY_LINES)
        if self.history is not None:
            with suppress(OSError):
                readline.read_history_file(self.history)
        self._readline = readline
        try:
            yield
        finally:
            self._readline = None
            if self.history is not None:
                with suppress(OSError):
                    # Only its person may read what they typed.
                    os.close(os.open(self.history, os.O_WRONLY | os.O_CREAT, 0o600))
                    readline.write_history_file(self.history)

    def _prompt(self) -> str:
        """The next line typed at the prompt ("" at Ctrl-D, or when the output closed)."""
        try:
            with self._lock:
                self._prompting = True
            return input(PROMPT) or "\n"
        except EOFError:
            return ""
        except BrokenPipeError:  # the prompt could not be written
            self._close()
            return ""
        finally:
            with self._lock:
                self._prompting = False

    def _drain(self, bot: BotPort, jobs: list[int]) -> None:
        while not self.closed.is_set() and not bot.idle(jobs):
            time.sleep(0.02)
