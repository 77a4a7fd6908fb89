"""The amoCRM gateway limits: 7 requests per sliding second per integration, then a block.

Real time (``time.monotonic``), not the emulator clock: the limit is about traffic.
A rejected request does not count toward the window (nginx ``limit_req`` behaviour);
each 429 counts as a violation, and ``block_after`` violations within
``block_window`` seconds block the whole account (every request → 403 HTML) until
the control API lifts it — amoCRM unblocks only through support (#563).
"""

from __future__ import annotations

import bisect
import time
from collections import deque
from typing import Any, Deque, Dict, List, Optional


class RateLimiter:
    def __init__(
        self,
        limit: int = 7,
        enabled: bool = True,
        block_after: int = 10,
        block_window: float = 60.0,
        window: float = 1.0,
    ) -> None:
        self.limit = limit
        self.enabled = enabled
        self.block_after = block_after  # 0 disables blocking
        self.block_window = block_window
        self.window = window
        self.blocked = False
        self.blocked_reason: Optional[str] = None
        self._accepted: Dict[str, List[float]] = {}
        self._violations: Deque[float] = deque()
        self.total_429 = 0

    def check(self, key: str, now: Optional[float] = None) -> Optional[int]:
        """Return 403/429 when the request must be refused, else record it and return None."""
        if self.blocked:
            return 403
        if not self.enabled:
            return None
        now = time.monotonic() if now is None else now
        # Arrivals are the requests' modelled moments (sent + inbound delay), so one may come
        # a few milliseconds before one already counted: kept sorted, counted by position.
        window = self._accepted.setdefault(key, [])
        while window and window[0] <= window[-1] - 2 * self.window:
            del window[0]
        in_window = bisect.bisect_right(window, now) - bisect.bisect_right(window, now - self.window)
        if in_window >= self.limit:
            self.total_429 += 1
            self._violations.append(now)
            while self._violations and self._violations[0] <= now - self.block_window:
                self._violations.popleft()
            if self.block_after and len(self._violations) >= self.block_after:
                self.block("rate limit violations")
            return 429
        bisect.insort(window, now)
        return None

    def block(self, reason: str = "manual") -> None:
        self.blocked = True
        self.blocked_reason = reason

    def unblock(self) -> None:
        self.blocked = False
        self.blocked_reason = None
        self._violations.clear()

    def configure(self, settings: Dict[str, Any]) -> None:
        for key in ("limit", "enabled", "block_after", "block_window"):
            if key in settings:
                setattr(self, key, type(getattr(self, key))(settings[key]))

    def to_json(self) -> Dict[str, Any]:
        return {
            "limit": self.limit,
            "enabled": self.enabled,
            "block_after": self.block_after,
            "block_window": self.block_window,
            "blocked": self.blocked,
            "blocked_reason": self.blocked_reason,
            "total_429": self.total_429,
        }
