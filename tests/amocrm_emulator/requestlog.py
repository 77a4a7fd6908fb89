"""The request log and what is computed from it (``GET requests``, ``GET rate_stats``).

One entry per amoCRM request, appended when the request ARRIVES (after its inbound network
delay, see ``latency.py``), in arrival order::

    seq, method, path, query, status, emulator_time, wall_time, sent_time, arrival_time,
    delays{inbound, answer, outbound}, refused, integration, request_id, body, fault

``sent_time`` and ``arrival_time`` are ``time.monotonic()`` seconds (same clock as the rate
limiter); ``wall_time`` is the wall clock at arrival. ``refused`` is the gateway's answer
(``429``/``403``) or ``None`` when the request got through. ``status`` is filled in when
the answer is ready (``"drop"``/``"reset"`` for a closed connection; ``None`` while in
flight). The owner serialises access (the emulator's gateway lock); nothing here locks.
"""

from __future__ import annotations

import json
from collections import deque
from typing import Any, Deque, Dict, List
from urllib.parse import parse_qs


class RawBody:
    """A request body as received; parsed (once) when the request log is read."""

    __slots__ = ("raw", "content_type")

    def __init__(self, raw: bytes, content_type: str) -> None:
        self.raw = raw
        self.content_type = content_type


class RequestLog:
    def __init__(self, limit: int) -> None:
        self.entries: Deque[Dict[str, Any]] = deque(maxlen=limit)
        self.seq = 0

    def add(self, entry: Dict[str, Any]) -> Dict[str, Any]:
        self.seq += 1
        entry["seq"] = self.seq
        self.entries.append(entry)
        return entry

    def clear(self) -> None:
        self.entries.clear()

    def since(self, seq: int) -> List[Dict[str, Any]]:
        return [_parsed(e) for e in self.entries if e["seq"] > seq]

    def rate_stats(self, window: float, total_429: int) -> Dict[str, Any]:
        """Per integration: the most requests ARRIVING within any ``window`` seconds (``all``,
        and ``accepted`` by the gateway) and the number answered 429 by the rate limit."""
        per: Dict[str, Dict[str, Any]] = {}
        for entry in self.entries:
            bucket = per.setdefault(entry["integration"], {"all": [], "accepted": [], "429": 0})
            bucket["all"].append(entry["arrival_time"])
            if entry["refused"] is None:
                bucket["accepted"].append(entry["arrival_time"])
            elif entry["refused"] == 429:
                bucket["429"] += 1
        out = {
            key: {
                "all": max_in_window(b["all"], window),
                "accepted": max_in_window(b["accepted"], window),
                "total_429": b["429"],
            }
            for key, b in per.items()
        }
        return {
            "window": window,
            "per_integration": out,
            "max_all": max((v["all"] for v in out.values()), default=0),
            "max_accepted": max((v["accepted"] for v in out.values()), default=0),
            "total_429": total_429,
        }


def max_in_window(times: List[float], window: float) -> int:
    """Largest number of timestamps inside any half-open span of ``window`` seconds (two pointers)."""
    ordered = sorted(times)
    best = start = 0
    for end, stamp in enumerate(ordered):
        while ordered[start] <= stamp - window:
            start += 1
        best = max(best, end - start + 1)
    return best


def _parsed(entry: Dict[str, Any]) -> Dict[str, Any]:
    body = entry["body"]
    if isinstance(body, RawBody):
        entry["body"] = loggable_body(body.raw, body.content_type)
    return entry


def loggable_body(raw: bytes, content_type: str) -> Any:
    if not raw:
        return None
    try:
        if "x-www-form-urlencoded" in content_type:
            return {k: v[0] if len(v) == 1 else v for k, v in parse_qs(raw.decode()).items()}
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return {"_unparsed": raw[:2000].decode("utf-8", "replace")}
