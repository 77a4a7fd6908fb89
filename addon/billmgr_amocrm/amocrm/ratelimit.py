"""A request-rate limit shared by every process of the module on the host.

amoCRM allows 7 requests per second per integration; the module defaults to 6.
The state file (``var/amocrm/ratelimit.state``: recent send times and a shared
pause set after a 429) is guarded by ``flock`` on the file itself, so a panel
action, the worker and a CLI run never add up to more than the limit.

The window is a sliding one of ``1 s + slack`` (default 50 ms): network jitter
can move a send by a few milliseconds, and amoCRM counts arrivals, not sends.
"""

from __future__ import annotations

import fcntl
import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, List, Tuple

DEFAULT_RATE = 6.0
MAX_SAFE_RATE = 7.0


@dataclass(frozen=True)
class Budget:
    """``capacity`` sends per ``window`` seconds."""

    capacity: int
    window: float

    @classmethod
    def for_rate(cls, rate: float, slack: float = 0.05) -> Budget:
        if not rate > 0:
            raise ValueError(f"rate must be positive, got {rate}")
        if rate >= 1:
            return cls(capacity=int(math.floor(rate)), window=1.0 + slack)
        return cls(capacity=1, window=1.0 / rate + slack)


def decide(sent: List[float], now: float, budget: Budget,
           pause_until: float = 0.0) -> Tuple[List[float], float]:
    """Pure core: (send times still inside the window, seconds to wait; 0 = go now)."""
    recent = sorted(t for t in sent if t > now - budget.window)
    if pause_until > now:
        return recent, pause_until - now
    if len(recent) < budget.capacity:
        return recent, 0.0
    # wait until enough of the oldest sends leave the window to free one slot
    oldest_blocking = recent[len(recent) - budget.capacity]
    return recent, max(oldest_blocking + budget.window - now, 0.001)


class RateLimiter:
    """Blocks in :meth:`acquire` until sending one more request keeps the shared rate."""

    def __init__(self, path: Path, rate: float = DEFAULT_RATE, *, slack: float = 0.05,
                 clock: Callable[[], float] = time.time, sleep: Callable[[float], None] = time.sleep) -> None:
        self.path = path
        self.budget = Budget.for_rate(rate, slack)
        self.clock = clock
        self.sleep = sleep

    def acquire(self) -> float:
        """Reserve a send slot now; returns the seconds spent waiting."""
        waited = 0.0
        while True:
            wait = self._try_reserve()
            if wait <= 0:
                return waited
            self.sleep(wait)
            waited += wait

    def pause(self, seconds: float) -> None:
        """Make every process wait ``seconds`` (after a 429) before its next send."""
        until = self.clock() + seconds
        with self._open() as state:
            state.pause_until = max(state.pause_until, until)

    def _try_reserve(self) -> float:
        with self._open() as state:
            now = self.clock()
            state.sent, wait = decide(state.sent, now, self.budget, state.pause_until)
            if wait <= 0:
                state.sent.append(now)
            return wait

    def _open(self) -> _LockedState:
        return _LockedState(self.path)


class _LockedState:
    """The state file, locked and parsed on enter, written back on exit."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sent: List[float] = []
        self.pause_until = 0.0
        self._fd = -1

    def __enter__(self) -> _LockedState:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        raw = b""
        while True:
            chunk = os.read(self._fd, 65536)
            if not chunk:
                break
            raw += chunk
        try:
            data = json.loads(raw or b"{}")
            self.sent = [float(t) for t in data.get("sent", [])]
            self.pause_until = float(data.get("pause_until", 0.0))
        except (ValueError, TypeError, AttributeError):
            self.sent, self.pause_until = [], 0.0  # damaged state only costs one window of history
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            if exc[0] is None:
                payload = json.dumps({"sent": self.sent, "pause_until": self.pause_until}).encode()
                os.lseek(self._fd, 0, os.SEEK_SET)
                os.ftruncate(self._fd, 0)
                os.write(self._fd, payload)
        finally:
            os.close(self._fd)  # closing releases the flock
