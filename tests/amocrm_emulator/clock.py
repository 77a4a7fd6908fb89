"""The emulator clock: wall time plus a settable offset.

Every lifetime (auth codes, access and refresh tokens), every ``created_at`` /
``updated_at`` and the search-index lag read this clock, so a test can jump a day
ahead without waiting. Rate limiting deliberately does NOT use it: the 7 req/s
window is about real traffic, so it runs on ``time.monotonic()``.
"""

from __future__ import annotations

import time


class Clock:
    """Emulator time in Unix seconds; flows with the wall clock, can be moved."""

    def __init__(self, offset: float = 0.0) -> None:
        self.offset = offset

    def now(self) -> float:
        return time.time() + self.offset

    def now_int(self) -> int:
        return int(self.now())

    def advance(self, seconds: float) -> float:
        self.offset += seconds
        return self.now()

    def set(self, timestamp: float) -> float:
        self.offset = timestamp - time.time()
        return self.now()
