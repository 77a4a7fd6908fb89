"""A request-rate limit shared by every process of the module on the host.

amoCRM allows 7 requests per second per integration; the module defaults to 6.5.
The state file (``var/amocrm/ratelimit.state``) lists recent requests and a
shared pause set after a 429; a lock on the file itself serializes access, so
a panel action, the worker and a CLI run never add up to more than the limit.

Why a request holds its slot until its answer arrived plus one window: amoCRM
counts arrivals, and a request arrives somewhere between the moment we let it
go and the moment its answer is back (a busy host can delay the send by 100 ms
or more). Counting each request from its release *and* until its completion
keeps the count at the server at or under the limit in every 1-second window,
whatever the scheduling delays. A slot of a process that died mid-request is
freed when its pid is gone (or after ``INFLIGHT_TTL``).
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, List, Optional, Tuple

from ..foundation.locks import FileLock

DEFAULT_RATE = 6.5
MAX_SAFE_RATE = 7.0
INFLIGHT_TTL = 300.0
POLL = 0.02

# One request: [released_at, done_at or None while in flight, pid]
Entry = List[Optional[float]]


@dataclass(frozen=True)
class Budget:
    """``capacity`` requests per ``window`` seconds."""

    capacity: int
    window: float

    @classmethod
    def for_rate(cls, rate: float, slack: float = 0.0) -> Budget:
        if not rate > 0:
            raise ValueError(f"rate must be positive, got {rate}")
        if rate >= 1:
            # 6.5/s is 7 per 1.077 s: a fractional rate keeps its fraction instead of flooring
            # to 6, and the window never drops under 1 s, so no 1-second window sees more.
            capacity = int(math.ceil(rate))
            return cls(capacity=capacity, window=max(1.0 + slack, capacity / rate))
        return cls(capacity=1, window=1.0 / rate + slack)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def decide(entries: List[Entry], now: float, budget: Budget, pause_until: float = 0.0,
           alive: Callable[[int], bool] = _pid_alive) -> Tuple[List[Entry], float]:
    """Pure core: (entries still holding a slot, seconds to wait; 0 = go now)."""
    kept: List[Entry] = []
    ends: List[float] = []          # when each completed slot frees up
    inflight = 0
    for released, done, pid in entries:
        if released is None:
            continue
        if done is None and (now - released > INFLIGHT_TTL or (pid is not None and not alive(int(pid)))):
            done = released   # its process is gone
        if done is None:
            inflight += 1
            kept.append([released, None, pid])
        elif done > now - budget.window:
            ends.append(done + budget.window)
            kept.append([released, done, pid])
    if pause_until > now:
        return kept, pause_until - now
    if inflight + len(ends) < budget.capacity:
        return kept, 0.0
    if not ends:
        return kept, POLL
    return kept, max(min(ends) - now, 0.001)


class RateLimiter:
    """``acquire()`` blocks until one more request keeps the shared rate; ``release()`` after it."""

    def __init__(self, path: Path, rate: float = DEFAULT_RATE, *, slack: float = 0.0,
                 clock: Callable[[], float] = time.time, sleep: Callable[[float], None] = time.sleep) -> None:
        self.path = path
        self.budget = Budget.for_rate(rate, slack)
        self.clock = clock
        self.sleep = sleep

    def acquire(self) -> float:
        """Reserve a slot; returns its ticket (pass it to :meth:`release`)."""
        while True:
            with _LockedState(self.path) as state:
                now = self.clock()
                state.entries, wait = decide(state.entries, now, self.budget, state.pause_until)
                if wait <= 0:
                    state.entries.append([now, None, float(os.getpid())])
                    return now
            self.sleep(wait)

    def release(self, ticket: float) -> None:
        """The request that got ``ticket`` is answered (or failed)."""
        with _LockedState(self.path) as state:
            now = self.clock()
            me = float(os.getpid())
            for entry in state.entries:
                if entry[0] == ticket and entry[2] == me and entry[1] is None:
                    entry[1] = now
                    break

    def pause(self, seconds: float) -> None:
        """Make every process wait ``seconds`` (after a 429) before its next request."""
        until = self.clock() + seconds
        with _LockedState(self.path) as state:
            state.pause_until = max(state.pause_until, until)


class _LockedState:
    """The state file, locked and parsed on enter, written back on a clean exit."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.entries: List[Entry] = []
        self.pause_until = 0.0
        # the state file is its own lock: read, decided and written back while held
        self._lock = FileLock(path)

    def __enter__(self) -> _LockedState:
        self._lock.acquire()
        fd = self._lock.fd
        raw = b""
        while True:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            raw += chunk
        try:
            data = json.loads(raw or b"{}")
            self.entries = [[_num(e[0]), _num(e[1]), _num(e[2])] for e in data.get("requests", [])]
            self.pause_until = float(data.get("pause_until", 0.0))
        except (ValueError, TypeError, AttributeError, IndexError):
            self.entries, self.pause_until = [], 0.0  # damaged state costs one window of history
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            if exc[0] is None:
                payload = json.dumps({"requests": self.entries, "pause_until": self.pause_until},
                                     separators=(",", ":")).encode()
                # overwrite in place, then cut the tail: no truncate-to-zero (frees and
                # reallocates the file's block) on every acquire and release
                os.pwrite(self._lock.fd, payload, 0)
                os.ftruncate(self._lock.fd, len(payload))
        finally:
            self._lock.release()


def _num(value: object) -> Optional[float]:
    return None if value is None else float(value)  # type: ignore[arg-type]
