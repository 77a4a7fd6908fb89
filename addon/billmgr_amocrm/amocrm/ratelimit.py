"""A request-rate limit shared by every process of the module on the host, counted as
amoCRM counts: by arrival.

amoCRM allows 7 requests per second per integration and counts a request when it
arrives. A request arrives after its last byte left the host (``sent``), no later than
the moment its answer begins (``answered``), and no later than one network delay after
it was sent (``sent + margin``, recorded by the process that sent it). The limiter
keeps ``capacity`` slots; a slot taken for a request is free again one window after the
latest moment that request can have arrived::

    free_at = min(answered, sent + margin) + window

So two requests that used the same slot arrive more than a window apart, and with
``capacity`` slots no window of that length ever sees more than ``capacity`` arrivals
(pigeonhole), whatever the answer time: a slow answer holds no slot once ``sent +
margin`` has passed, and a fast one frees it as soon as it begins. ``margin`` must
cover the worst one-way network delay to amoCRM (``sync.network_margin``); the
transport raises it to the slowest TCP handshake it has seen, an upper bound of a
one-way delay on the route in use. A slot taken by a request that is still being sent
stays busy: its arrival is not bounded yet.

Within one process, requests waiting for a slot take the free ones in rank order (then in
the order they asked, :func:`requests_ranked`): the engine ranks each batch's requests by
the batch's place in the pass, so a batch that later ones wait for is never starved by
them. Without an order, whichever waiting thread won the lock race when a slot freed
went first, and an early contact batch could wait seconds while the company batches
that depend on it waited with it.

Times are ``CLOCK_MONOTONIC`` (``time.monotonic``): system-wide on Linux, so every process
of the host shares it, and immune to NTP steps. The state file
(``var/amocrm/ratelimit.state``) records the boot id; state from another boot is
discarded (monotonic time restarts at boot). A slot of a process that died mid-request is
treated as sent when its death is noticed.

Several hosts on one database, one integration: each host's limiter counts only that
host, so the integration's 7 are shared out (``hosts.py`` publishes this host's share into
the state file): the host that runs the sync engine gets 7 minus one per other live host,
every other host 1. A share lapses after ``ttl`` unless renewed; a lapsed share of a host
that knew of others falls back to 1, so a host whose worker stopped cannot keep a big one.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, List, Optional, Tuple

from ..foundation.locks import FileLock

DEFAULT_RATE = 7.0
MAX_SAFE_RATE = 7.0
DEFAULT_MARGIN = 0.025
INFLIGHT_TTL = 300.0
POLL = 0.01
# a request asked for outside any ranking waits as the first batch of a pass does
DEFAULT_RANK = 0.0
# a waiting request that is not first looks again at least this often (it is also woken at once)
TURN_POLL = 0.5
QUIET_POLL = 0.5
BOOT_ID = Path("/proc/sys/kernel/random/boot_id")

# One request: [acquired, arrived_by (sent + margin) or None, answered or None, pid]
Entry = List[Optional[float]]


@dataclass(frozen=True)
class Budget:
    """``capacity`` requests arriving per ``window`` seconds."""

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


_rank = threading.local()


@contextmanager
def requests_ranked(rank: float) -> Iterator[None]:
    """On this thread, requests wait for a slot behind this process's requests of a lower
    ``rank`` (the module docstring)."""
    previous = getattr(_rank, "value", None)
    _rank.value = float(rank)
    try:
        yield
    finally:
        _rank.value = previous


def current_rank() -> float:
    value: Optional[float] = getattr(_rank, "value", None)
    return DEFAULT_RANK if value is None else value


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def free_at(entry: Entry, window: float) -> Optional[float]:
    """When the slot of ``entry`` is free again; None while the request is still being sent."""
    _, arrived_by, answered, _ = entry
    if arrived_by is None:
        return None if answered is None else answered + window
    latest_arrival = arrived_by if answered is None else min(answered, arrived_by)
    return latest_arrival + window


def decide(entries: List[Entry], now: float, budget: Budget, pause_until: float = 0.0,
           margin: float = DEFAULT_MARGIN,
           alive: Callable[[int], bool] = _pid_alive) -> Tuple[List[Entry], float]:
    """Pure core: (entries still holding a slot, seconds to wait; 0 = go now)."""
    kept: List[Entry] = []
    frees: List[float] = []       # when each slot that will free on its own frees up
    sending = 0
    for entry in entries:
        acquired, arrived_by, answered, pid = entry
        if acquired is None:
            continue
        if arrived_by is None and answered is None and (
                now - acquired > INFLIGHT_TTL or (pid is not None and not alive(int(pid)))):
            # its process is gone: it may have arrived until now
            entry = [acquired, now + margin, None, pid]
        until = free_at(entry, budget.window)
        if until is None:
            sending += 1
            kept.append(entry)
        elif until > now:
            frees.append(until)
            kept.append(entry)
    if pause_until > now:
        return kept, pause_until - now
    if sending + len(frees) < budget.capacity:
        return kept, 0.0
    if not frees:
        return kept, POLL
    return kept, max(min(frees) - now, 0.001)


def shared_capacity(capacity: int, share: Optional[dict], now: float) -> int:
    """This host's capacity under its published share (see the module docstring)."""
    if not share:
        return capacity
    if float(share.get("until", 0.0)) > now:
        return max(0, min(capacity, int(share.get("capacity", capacity))))
    return 1 if int(share.get("hosts", 1)) > 1 else capacity


def boot_id() -> str:
    try:
        return BOOT_ID.read_text(encoding="ascii").strip()
    except OSError:
        return ""


class RateLimiter:
    """``acquire()`` blocks until one more request keeps the shared rate; then report
    ``sent()`` and ``answered()`` (or ``release()`` when it ends in any other way)."""

    def __init__(self, path: Path, rate: float = DEFAULT_RATE, *, margin: float = DEFAULT_MARGIN,
                 slack: float = 0.0, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.path = path
        self.budget = Budget.for_rate(rate, slack)
        self.margin = max(0.0, margin)
        self.clock = clock
        self.sleep = sleep
        self._boot = boot_id()
        # this process's requests waiting for a slot, (rank, arrival); the least may take one
        # (a list: no more wait at once than there are lanes)
        self._waiting: List[Tuple[float, int]] = []
        self._turn = threading.Condition()
        self._arrivals = itertools.count()

    def raise_margin(self, seconds: float) -> None:
        """The route to amoCRM can delay a request at least this long one way."""
        self.margin = max(self.margin, seconds)

    def set_share(self, capacity: int, hosts: int, ttl: float) -> None:
        """This host may have ``capacity`` requests per window for ``ttl`` seconds (``hosts`` live)."""
        with self._state() as state:
            state.share = {"capacity": max(0, int(capacity)), "hosts": int(hosts),
                           "until": self.clock() + ttl}

    def acquire(self) -> float:
        """Reserve a slot, after this process's requests that rank before this thread's
        (:func:`requests_ranked`); returns its ticket (pass it to the other methods)."""
        place = (current_rank(), next(self._arrivals))
        with self._turn:
            self._waiting.append(place)
        try:
            while True:
                self._await_turn(place)
                ticket, wait = self._take_slot(place)
                if ticket is not None:
                    return ticket
                if wait > 0:
                    self.sleep(wait)
        finally:
            with self._turn:
                self._waiting.remove(place)
                self._turn.notify_all()

    def _await_turn(self, place: Tuple[float, int]) -> None:
        with self._turn:
            while min(self._waiting) != place:
                self._turn.wait(TURN_POLL)

    def _take_slot(self, place: Tuple[float, int]) -> Tuple[Optional[float], float]:
        """(the ticket of a slot taken now, 0), or (None, seconds until one may be free), or
        (None, 0) when a request ranked before ``place`` came meanwhile: its turn first."""
        with self._state() as state:
            now = self.clock()
            capacity = shared_capacity(self.budget.capacity, state.share, now)
            budget = Budget(capacity, self.budget.window)
            state.entries, wait = decide(state.entries, now, budget, state.pause_until, self.margin)
            if capacity == 0:     # this host just joined others: it waits until they know of it
                wait = max(wait, QUIET_POLL)
            if wait <= 0:
                # the turn is checked again here, with the slot: a thread that passed its turn
                # and was descheduled before this point must not take the slot from a request
                # ranked before it that asked meanwhile (seen: rank 5 served before rank 1)
                with self._turn:
                    if min(self._waiting) != place:
                        return None, 0.0
                state.entries.append([now, None, None, float(os.getpid())])
                return now, 0.0
        return None, wait

    def sent(self, ticket: float) -> None:
        """The request that got ``ticket`` has been written out completely."""
        self._mark(ticket, 1, self.clock() + self.margin)

    def answered(self, ticket: float) -> None:
        """The answer to ``ticket``'s request began to arrive."""
        self._mark(ticket, 2, self.clock())

    def release(self, ticket: float, *, left_host: bool = True) -> None:
        """The request ended without an answer (or its answer was already reported).

        ``left_host=False``: it provably never reached amoCRM (connection refused), so its
        slot is free at once; otherwise it counts as sent now if that was not reported."""
        with self._state() as state:
            for entry in self._mine(state.entries, ticket):
                if not left_host and entry[1] is None:
                    state.entries.remove(entry)
                elif entry[1] is None and entry[2] is None:
                    entry[1] = self.clock() + self.margin

    def pause(self, seconds: float) -> None:
        """Make every process wait ``seconds`` (after a 429) before its next request."""
        until = self.clock() + seconds
        with self._state() as state:
            state.pause_until = max(state.pause_until, until)

    def _mark(self, ticket: float, index: int, value: float) -> None:
        with self._state() as state:
            for entry in self._mine(state.entries, ticket):
                if entry[index] is None:
                    entry[index] = value

    @staticmethod
    def _mine(entries: List[Entry], ticket: float) -> List[Entry]:
        me = float(os.getpid())
        return [e for e in entries if e[0] == ticket and e[3] == me]

    def _state(self) -> _LockedState:
        return _LockedState(self.path, self._boot)


class _LockedState:
    """The state file, locked and parsed on enter, written back on a clean exit."""

    def __init__(self, path: Path, boot: str) -> None:
        self.path = path
        self.boot = boot
        self.entries: List[Entry] = []
        self.pause_until = 0.0
        self.share: Optional[dict] = None
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
            if data.get("boot", self.boot) == self.boot:
                self.entries = [[_num(e[0]), _num(e[1]), _num(e[2]), _num(e[3])]
                                for e in data.get("requests", [])]
                self.pause_until = float(data.get("pause_until", 0.0))
                share = data.get("share")
                self.share = share if isinstance(share, dict) else None
        except (ValueError, TypeError, AttributeError, IndexError):
            self.entries, self.pause_until = [], 0.0  # damaged state costs one window of history
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            if exc[0] is None:
                payload = json.dumps({"boot": self.boot, "requests": self.entries,
                                      "pause_until": self.pause_until, "share": self.share},
                                     separators=(",", ":")).encode()
                # overwrite in place, then cut the tail: no truncate-to-zero (frees and
                # reallocates the file's block) on every acquire and release
                os.pwrite(self._lock.fd, payload, 0)
                os.ftruncate(self._lock.fd, len(payload))
        finally:
            self._lock.release()


def _num(value: object) -> Optional[float]:
    return None if value is None else float(value)  # type: ignore[arg-type]
