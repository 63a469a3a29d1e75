"""Time for the gatherer, injectable: the real monotonic clock, or a fake one tests drive by hand.

Every wait a monitor makes (its interval, its backoff, its timeout) goes through a :class:`Clock`,
so a test can run an hour of monitor schedules in milliseconds and measure rates in virtual
seconds, without sleeping and without asserting on wall-clock speed.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from typing import Protocol

import anyio
import anyio.lowlevel

__all__ = ["Clock", "FakeClock", "SystemClock"]


class Clock(Protocol):
    """Monotonic time, sleeping, and timeouts measured in the same time."""

    def now(self) -> float:
        """Seconds on a monotonic clock (the origin is arbitrary)."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` (0 or less: just yield to other tasks)."""
        ...

    def timeout(self, seconds: float) -> AbstractContextManager[None]:
        """A scope cancelled after ``seconds``; leaving it that way raises :class:`TimeoutError`."""
        ...


class SystemClock:
    """The event loop's monotonic clock (``anyio.current_time``)."""

    def now(self) -> float:
        return anyio.current_time()

    async def sleep(self, seconds: float) -> None:
        await anyio.sleep(max(0.0, seconds))

    @contextmanager
    def timeout(self, seconds: float) -> Iterator[None]:
        with anyio.fail_after(seconds):
            yield


@dataclass(order=True)
class _Timer:
    deadline: float
    seq: int
    fire: Callable[[], None] = field(compare=False)
    cancelled: bool = field(default=False, compare=False)


class FakeClock:
    """A virtual clock: time moves only when :meth:`advance` is awaited.

    ``advance`` fires the timers (sleeps and timeouts) that fall due, in deadline order, and after
    each one lets the woken tasks run until they wait again. "Until they wait again" is a fixed
    number of event-loop turns (``settle_turns``): enough for code that only awaits the clock,
    memory streams and other async code, which is what tests drive with it. Work in threads or
    subprocesses is not waited for; use the real clock for those.
    """

    def __init__(self, start: float = 0.0, settle_turns: int = 64) -> None:
        self._now = start
        self._timers: list[_Timer] = []
        self._seq = itertools.count()
        self.settle_turns = settle_turns

    def now(self) -> float:
        return self._now

    def _schedule(self, delay: float, fire: Callable[[], None]) -> _Timer:
        timer = _Timer(self._now + max(0.0, delay), next(self._seq), fire)
        heapq.heappush(self._timers, timer)
        return timer

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await anyio.lowlevel.checkpoint()
            return
        woken = anyio.Event()
        timer = self._schedule(seconds, woken.set)
        try:
            await woken.wait()
        finally:
            timer.cancelled = True

    @contextmanager
    def timeout(self, seconds: float) -> Iterator[None]:
        with anyio.CancelScope() as scope:
            timer = self._schedule(seconds, scope.cancel)
            try:
                yield
            finally:
                timer.cancelled = True
        if scope.cancelled_caught:
            raise TimeoutError

    async def settle(self) -> None:
        """Let runnable tasks run until they block again (see the class docstring)."""
        for _ in range(self.settle_turns):
            await anyio.lowlevel.checkpoint()

    async def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds``, firing every timer that falls due on the way."""
        target = self._now + seconds
        await self.settle()
        while self._timers and self._timers[0].deadline <= target:
            timer = heapq.heappop(self._timers)
            if timer.cancelled:
                continue
            self._now = max(self._now, timer.deadline)
            timer.fire()
            await self.settle()
        self._now = target
