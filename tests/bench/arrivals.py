"""What the emulator's request log says about one run: arrivals, 429s, and where the rate went.

amoCRM counts requests by ARRIVAL, so every figure here uses the log's ``arrival_time``
(the gateway's clock, after the inbound network delay), never the client's send times.
A run's entities/s is (requests/s) x (entities per request) minus the time nothing was
asked (start-up before the first request, the wait for the last answer), so a row that
misses its target is explained by those four numbers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Sequence

from tests.amocrm_emulator.requestlog import max_in_window

ENTITY_PATH = re.compile(r"^/api/v4/(contacts|companies|leads)/?$")
LINK_PATH = re.compile(r"^/api/v4/(contacts|companies|leads)/link/?$")
WRITES = ("POST", "PATCH")


@dataclass
class Arrivals:
    """One run's requests, from the emulator's log (entries after the run's first ``seq``)."""

    count: int = 0
    entity_writes: int = 0          # POST/PATCH of contacts, companies, leads (they carry entities)
    links: int = 0                  # POST .../link: needed, but they carry no new entity
    lookups: int = 0                # GET of an entity list (the settler's marker lookups)
    other: int = 0                  # anything else (catalog reads, ...)
    refused_429: int = 0
    dropped: int = 0                # answers the emulator's faults never sent (``drop``/``reset``)
    busiest_second: int = 0         # most arrivals in any sliding 1 s window
    first_arrival: float = 0.0      # wall clock
    last_arrival: float = 0.0
    items_sent: int = 0             # entities in the bodies of the entity writes
    calls: Dict[str, int] = field(default_factory=dict)
    per_second: List[int] = field(default_factory=list)   # arrivals in each whole second from the first
    times: List[float] = field(default_factory=list)      # every arrival (the gateway's clock), ascending

    @property
    def writes(self) -> int:
        """Write requests of any kind (entity writes and /link calls)."""
        return self.entity_writes + self.links

    @property
    def no_entity_share(self) -> float:
        """The share of requests that carry no entity: each takes a rate slot from the ceiling."""
        return 1 - self.entity_writes / self.count if self.count else 0.0


def analyse(entries: Sequence[Dict[str, Any]]) -> Arrivals:
    out = Arrivals(count=len(entries))
    times: List[float] = []
    for entry in entries:
        method, path = entry["method"], entry["path"]
        call = f"{method} {path.replace('/api/v4/', '')}"
        out.calls[call] = out.calls.get(call, 0) + 1
        times.append(float(entry["arrival_time"]))
        if entry.get("refused") == 429 or entry.get("status") == 429:
            out.refused_429 += 1
        if entry.get("status") in ("drop", "reset"):
            out.dropped += 1
        if method in WRITES and ENTITY_PATH.match(path):
            out.entity_writes += 1
            body = entry.get("body")
            out.items_sent += len(body) if isinstance(body, list) else 0
        elif method in WRITES and LINK_PATH.match(path):
            out.links += 1
        elif method == "GET" and ENTITY_PATH.match(path):
            out.lookups += 1
        else:
            out.other += 1
    out.busiest_second = max_in_window(times, 1.0) if times else 0
    out.times = sorted(times)
    if times:
        first = min(times)
        out.per_second = [0] * (int(max(times) - first) + 1)
        for stamp in times:
            out.per_second[int(stamp - first)] += 1
    if entries:
        out.first_arrival = min(float(e["wall_time"]) for e in entries)
        out.last_arrival = max(float(e["wall_time"]) for e in entries)
    return out


def fastest_seconds(requests: int, answer: float, rate: float = 7.0, margin: float = 0.0) -> float:
    """The least time ``requests`` can take from the first arrival to the last answer: with an
    empty window the first ``rate`` arrive at once; after that a slot is free again ``1 + margin``
    s after its request (the margin covers the network's jitter, so no client that keeps amoCRM's
    window on that network can do better), and the last answer takes ``answer``. No start-up,
    no request waiting for another's answer: a bound, not an estimate."""
    if requests <= 0:
        return 0.0
    return ((requests - 1) // int(rate)) * (1.0 + margin) + answer


def bound(arr: Arrivals, entities: int, batch: int, answer: float, rate: float = 7.0,
          margin: float = 0.0, without_links: bool = False) -> float:
    """The share of ``rate`` x ``batch`` that a run with these requests cannot exceed
    (:func:`fastest_seconds`); ``without_links``: as if its ``/link`` calls were not needed."""
    requests = arr.count - (arr.links if without_links else 0)
    seconds = fastest_seconds(requests, answer, rate, margin)
    return entities / seconds / (rate * batch) if seconds > 0 else 0.0


def rhythm(arr: Arrivals, rate: float = 7.0) -> float:
    """The median time ``rate`` arrivals take (arrival i to arrival i + rate): the period the
    limiter's slots cycle in while the lanes keep it busy. Its floor is ``1 + margin``."""
    n = int(rate)
    spans = sorted(b - a for a, b in zip(arr.times, arr.times[n:]))
    return spans[len(spans) // 2] if spans else 0.0


def explain(arr: Arrivals, started: float, ended: float, batch: int, rate: float = 7.0,
            margin: float = 0.0) -> str:
    """Where a run's entities/s went against ``rate`` x ``batch``: the four factors.

    ``started``/``ended`` are the wall clock at the start and end of the measured run. With
    answers slower than ``margin`` a rate slot is free again ``1 + margin`` s after its request
    was sent (amocrm/ratelimit.py), so the limiter's own ceiling is ``rate / (1 + margin)``,
    and the slots cycle in that period (:func:`rhythm`), not in whole seconds: slow periods
    are counted in periods of ``1 + margin`` s, or whole seconds would show the rhythm
    itself (a second with none of a period's burst, every 1 / margin periods) as stalls."""
    wall = max(ended - started, 1e-9)
    startup = max(0.0, arr.first_arrival - started) if arr.count else wall
    tail = max(0.0, ended - arr.last_arrival) if arr.count else 0.0
    sending = max(wall - startup - tail, 1e-9)
    per_write = arr.items_sent / arr.entity_writes if arr.entity_writes else 0.0
    per_second = arr.count / sending
    return (f"{arr.count} requests, {per_second:.2f}/s while sending ({per_second / rate:.0%} of {rate:g}; "
            f"the limiter's ceiling with margin {margin:g} s is {rate / (1 + margin):.2f}/s = "
            f"{1 / (1 + margin):.0%}); "
            f"{arr.no_entity_share:.0%} carry no entity ({_no_entity(arr)}); "
            f"{per_write:.0f} entities per entity write (of {batch}); start-up to the first arrival "
            f"{startup:.1f} s and the last arrival to the end {tail:.1f} s of {wall:.1f} s; "
            f"{int(rate)} arrivals took {rhythm(arr, rate):.3f} s (median; the floor 1 + margin is "
            f"{1 + margin:.3f} s); {_slow_periods(arr, rate, 1.0 + margin)}")


def _slow_periods(arr: Arrivals, rate: float, period: float) -> str:
    """Periods of ``period`` s (from the first arrival, the last one left out: it is partial)
    that saw fewer than ``rate`` - 1 arrivals: where lanes were waiting on each other rather
    than on the limit."""
    if not arr.times:
        return "no whole period"
    first = arr.times[0]
    counts = [0] * (int((arr.times[-1] - first) / period) + 1)
    for stamp in arr.times:
        counts[int((stamp - first) / period)] += 1
    whole = counts[:-1]
    slow = [i for i, n in enumerate(whole) if n < rate - 1]
    if not whole:
        return "no whole period"
    shown = ", ".join(f"p{i}:{whole[i]}" for i in slow[:12]) + (" ..." if len(slow) > 12 else "")
    said = f"{len(slow)} of {len(whole)} whole {period:g}-s periods had < {rate - 1:g} arrivals"
    return said + (f" ({shown})" if slow else "")


def _no_entity(arr: Arrivals) -> str:
    parts = [f"{n} {label}" for n, label in ((arr.links, "/link"), (arr.lookups, "lookups"),
                                             (arr.other, "other")) if n]
    return ", ".join(parts) or "none"
