"""Outbox senders, one per platform adapter; a platform every bot process can send to is sent from one at a time.

Telegram, Slack and Discord replies can go out from any process connected to the
platform. Where several are, the one holding the lease `outbox:<platform>` sends
them: each pass takes or renews it when due (a waiting process asks as often),
another process takes it over once the holder stops renewing, and a holder sends
only while its lease lasts on its own monotonic clock, counted from before the
write that took it and less MARGIN, so a holder paused between passes and the
process that took over never both send. A console's or the web's replies go to
connections of their own process, so their senders need no lease.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

from bot.flow import Reply
from bot.store import leases, outbox, workers
from bot.store.database import Database

log = logging.getLogger(__name__)

LEASE = 10.0  # seconds the sending lease lasts in the database
RENEW = 2.0  # seconds between takes or renewals of it
# How long before the database's end of the lease its holder stops: hosts' clocks a little apart, a slow write.
MARGIN = 3.0


class Sender:
    """One platform's outbox sender; with a `holder` (this process's lease holder name), only while it holds the lease."""

    def __init__(
        self,
        db: Database,
        platform: str,
        send: Callable[[Reply], None],
        conversations: Callable[[], Sequence[str] | None],
        holder: str | None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.db = db
        self.platform = platform
        self.send = send
        self.conversations = conversations
        self.holder = holder
        self.lease = f"outbox:{platform}"
        self.clock = clock
        self.holding = False
        self._valid_until = 0.0  # on `clock`
        self._next_try = 0.0

    def step(self) -> int:
        """One pass: send what is owed, if this process may; returns how many went out."""
        if not self._may_send():
            return 0
        return outbox.deliver(self.db, {self.platform: self.send}, conversations=self.conversations(), go_on=self._may_send)

    def release(self) -> None:
        """Give the sending up at once (a clean stop), so another process takes it without waiting for the lease to end."""
        if self.holder is not None and self.holding:
            leases.release(self.db, self.lease, self.holder)
            self.holding, self._valid_until = False, 0.0

    def _may_send(self) -> bool:
        if self.holder is None:
            return True
        if self.clock() >= self._next_try:
            self._renew(self.holder)
        return self.clock() < self._valid_until

    def _renew(self, holder: str) -> None:
        asked = self.clock()
        self._next_try = asked + RENEW
        won = leases.hold(self.db, self.lease, holder, LEASE) or self._take_from_dead(holder)
        self._valid_until = asked + LEASE - MARGIN if won else 0.0
        if won and not self.holding:
            log.info("%s: this process (%s) sends its replies now", self.platform, holder)
        elif self.holding and not won:
            taker = leases.current(self.db, self.lease)
            taken_by = taker.holder if taker else "nobody"
            log.warning("%s: this process (%s) no longer sends its replies; %s does", self.platform, holder, taken_by)
        self.holding = won

    def _take_from_dead(self, holder: str) -> bool:
        """The holder was a process on this host that is gone (restarted after a crash): no need to wait out its lease."""
        now = leases.current(self.db, self.lease)
        here = _process(holder).rpartition(":")[0]
        if now is None or not workers.dead_here(_process(now.holder), here):
            return False
        return leases.take_over(self.db, self.lease, holder, now.holder, LEASE)


def _process(holder: str) -> str:
    """The process (host:pid) a holder name (host:pid/bot) stands for."""
    return holder.partition("/")[0]
