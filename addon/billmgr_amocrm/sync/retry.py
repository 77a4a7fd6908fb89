"""Retry policy as data plus pure functions (jitter injected for tests)."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Callable, Optional

from ..foundation.clock import as_utc
from ..ports import QueueItem


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter.

    ``max_attempts`` bounds the retries of a record that keeps failing on its own
    (an unexpected error while syncing it); after that it is dead-lettered with the
    reason. Global outages (429, 5xx, timeouts: ``RetryLater``) must not dead-letter
    good records, so they only give up once the record has waited ``outage_give_up``.
    """

    base_seconds: float = 2.0
    cap_seconds: float = 600.0
    max_attempts: int = 8
    outage_give_up: timedelta = timedelta(days=7)
    # a lead waiting for its contact: short, it is usually synced in the same pass
    defer_seconds: float = 5.0

    def delay(self, attempts: int, jitter: Optional[Callable[[], float]] = None) -> float:
        """Full jitter: uniform in [base, min(cap, base * 2**attempts)]."""
        ceiling = min(self.cap_seconds, self.base_seconds * (2 ** min(attempts, 20)))
        draw = (jitter or random.random)()
        return self.base_seconds + (ceiling - self.base_seconds) * draw

    def exhausted(self, item: QueueItem) -> bool:
        return item.attempts + 1 >= self.max_attempts

    def outage_exhausted(self, item: QueueItem, now: datetime) -> bool:
        waited = as_utc(now) - as_utc(item.first_queued_at)
        return item.attempts + 1 >= self.max_attempts and waited >= self.outage_give_up
