"""The console: a local chat with podbot in a terminal, or line-by-line from a pipe.

Interactive (a terminal): a prompt; replies print as they arrive.
Piped: one message per line, each reply printed, and exit once every job
those lines started has replied — so scripts and tests can drive the bot:
    printf '/skills\\ndf /\\n' | podbot chat --user alice
"""

from __future__ import annotations

import getpass
import sys
import threading
import time
from itertools import count
from typing import TextIO

from adapters.contract import BotPort, SimpleAdapter
from bot.flow import Message, Reply

CONVERSATION = "console"
PROMPT = "> "


class ConsoleAdapter(SimpleAdapter):
    platform = "console"

    def __init__(self, user: str | None = None, out: TextIO = sys.stdout):
        self.user = user or getpass.getuser()
        self.out = out
        self._lock = threading.Lock()
        self._ids = count(1)
        self._session = f"{int(time.time() * 1000)}"
        self._prompting = False

    def send(self, reply: Reply) -> None:
        with self._lock:
            if self._prompting:
                self.out.write("\r\033[K")  # a job's result arrived while the prompt waits: print above it
            self.out.write(reply.text + "\n")
            if reply.code:
                self.out.write(reply.code.rstrip("\n") + "\n")
            if self._prompting:
                self.out.write(PROMPT)
            self.out.flush()

    def message(self, text: str) -> Message:
        return Message(
            platform=self.platform,
            conversation=CONVERSATION,
            user=f"console:{self.user}",
            text=text,
            user_name=self.user,
            is_direct=True,
            message_id=f"{self._session}-{next(self._ids)}",
        )

    def run(self, bot: BotPort, stdin: TextIO = sys.stdin) -> None:
        """Read messages until end of input; when piped, wait for every job to reply."""
        interactive = stdin.isatty()
        jobs: list[int] = []
        if interactive:
            self.send(Reply(CONVERSATION, f"podbot: hello {self.user}. Type /help, /skills, or e.g. `df /`. Ctrl-D quits."))
        while True:
            if interactive:
                try:
                    with self._lock:
                        self._prompting = True
                    text = input(PROMPT)
                except (EOFError, KeyboardInterrupt):
                    break
                finally:
                    with self._lock:
                        self._prompting = False
            else:
                text = stdin.readline()
                if not text:
                    break
            replies = bot.receive(self.message(text.rstrip("\n")))
            jobs.extend(r.job_id for r in replies if r.job_id is not None)
            # Each line's immediate answer is shown before the next prompt or line.
            self._drain(bot, [])
        if not interactive:
            self._drain(bot, jobs)

    def _drain(self, bot: BotPort, jobs: list[int]) -> None:
        while not bot.idle(jobs):
            time.sleep(0.02)
