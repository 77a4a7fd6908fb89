"""How long to wait before trying amoCRM again: exponential backoff with jitter, or Retry-After."""

from __future__ import annotations

import email.utils
import random
from dataclasses import dataclass, field
from typing import Callable, Optional

MAX_RETRY_AFTER = 120.0


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with jitter: ``base * 2**attempt`` capped, times a random 0.5..1."""

    base: float = 0.5
    cap: float = 8.0
    rng: Callable[[], float] = field(default=random.random, compare=False)

    def delay(self, attempt: int, retry_after: Optional[float] = None) -> float:
        if retry_after is not None and retry_after >= 0:
            return min(retry_after, MAX_RETRY_AFTER) + self.rng() * self.base
        return min(self.cap, self.base * (2 ** attempt)) * (0.5 + self.rng() / 2)


def parse_retry_after(value: Optional[str], now: float) -> Optional[float]:
    """Seconds from a Retry-After header (delta-seconds or HTTP date); None if absent/unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - now, 0.0)
