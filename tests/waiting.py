"""Waiting for something another process does: a bound, not a speed assertion."""

from __future__ import annotations

import time
from typing import Callable, Optional, TypeVar

T = TypeVar("T")


def wait_for(what: str, check: Callable[[], T], *, timeout: float = 60.0, every: float = 0.1,
             explain: Optional[Callable[[], str]] = None) -> T:
    """``check()``'s first truthy answer; AssertionError naming ``what`` (and ``explain()``) at the bound."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(every)
    raise AssertionError(f"not within {timeout:g} s: {what}" + (f"\n{explain()}" if explain else ""))
