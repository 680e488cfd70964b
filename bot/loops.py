"""The one way podbot runs background work: named threads that repeat a step until stopped.

A step that raises is logged and the loop goes on: no background thread dies
because one pass failed. A loop may have a wake-up event, so work that just
arrived (a reply for the outbox) does not wait for the next interval.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from bot.errors import incident

log = logging.getLogger(__name__)

Interval = float | Callable[[], float]


class Loops:
    def __init__(self) -> None:
        self.stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._wakes: list[threading.Event] = []  # the wakeable loops'
        self._all: list[threading.Event] = []

    def every(self, name: str, interval: Interval, step: Callable[[], object], wakeable: bool = False) -> None:
        """Run `step` now and then every `interval` seconds (a number, or a function giving the next pause)."""
        wake = threading.Event()
        self._all.append(wake)
        if wakeable:
            self._wakes.append(wake)

        def run() -> None:
            while not self.stopping.is_set():
                try:
                    step()
                except Exception:
                    incident(f"the {name} loop failed; it goes on")
                wake.wait(interval() if callable(interval) else interval)
                wake.clear()

        thread = threading.Thread(target=run, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def wake(self) -> None:
        """Run every wakeable loop's next step now."""
        for event in self._wakes:
            event.set()

    def stop(self, timeout: float = 5.0) -> None:
        self.stopping.set()
        for event in self._all:
            event.set()
        for thread in self._threads:
            thread.join(timeout)
