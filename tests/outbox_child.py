"""A bot process whose only platform writes replies to a file; it can be told to die right after a send.

Used by the outbox crash test: `python -m tests.outbox_child CONFIG FILE [DIE_AFTER]`.
"""

from __future__ import annotations

import os
import sys
import time

from adapters.contract import SimpleAdapter
from bot import config
from bot.app import Bot
from bot.flow import Reply


class FileAdapter(SimpleAdapter):
    platform = "console"

    def __init__(self, path: str, die_after: int | None):
        self.path = path
        self.die_after = die_after
        self.sent = 0

    def send(self, reply: Reply) -> None:
        with open(self.path, "a") as out:
            out.write(reply.text + "\n")
            out.flush()
            os.fsync(out.fileno())
        self.sent += 1
        if self.sent == self.die_after:
            os._exit(9)  # accepted by the "platform", not yet marked sent


def main() -> None:
    cfg = config.load(sys.argv[1], environ={})
    bot = Bot(cfg)
    bot.add_adapter(FileAdapter(sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else None))
    bot.start(0, schedules=False, watch=False)
    while not bot.idle([]):
        time.sleep(0.02)
    bot.stop()


if __name__ == "__main__":
    main()
