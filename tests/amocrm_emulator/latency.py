"""Network and answer time: how long a request travels and how long amoCRM works on it.

Every amoCRM request (not the control API) goes through three waits, each drawn uniformly
from a range when the request has been received in full (the moment the client finished
writing it, "sent")::

    sent ──inbound──▶ arrival ──answer──▶ applied ──outbound──▶ answer written

* ``network_delay`` (one way, drawn separately for the way in and the way out);
* the answer delay, ``read_delay`` for GET and ``write_delay`` for every other method
  (``answer_delay`` sets both): the server working. A write is applied at its end, before
  the answer leaves, so an answer lost after that still means the write happened.

The gateway (rate limit, request log) sees a request at its *arrival*. Each request's three
waits are drawn together, in the order requests are received, from one RNG seeded with
``seed``: sequential requests get the same waits on every run. Nothing here sleeps; the
server does, outside every lock.
"""

from __future__ import annotations

import random
import threading
from typing import Any, Dict, NamedTuple, Optional, Sequence, Tuple

Range = Tuple[float, float]
ZERO: Range = (0.0, 0.0)


class Delays(NamedTuple):
    inbound: float
    answer: float
    outbound: float


NO_DELAYS = Delays(0.0, 0.0, 0.0)


def as_range(value: Any, name: str) -> Range:
    """``[min, max]`` (or a single number for a fixed wait) as a validated range in seconds."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        low = high = float(value)
    elif isinstance(value, Sequence) and not isinstance(value, str) and len(value) == 2:
        low, high = float(value[0]), float(value[1])
    else:
        raise ValueError(f"{name} must be [min, max] in seconds")
    if not 0.0 <= low <= high:
        raise ValueError(f"{name} must satisfy 0 <= min <= max")
    return (low, high)


class Latency:
    """The three ranges and the seeded RNG; thread-safe (requests draw concurrently)."""

    def __init__(
        self,
        network: Range = ZERO,
        read: Range = ZERO,
        write: Range = ZERO,
        seed: int = 1,
    ) -> None:
        self._lock = threading.Lock()
        self.network = as_range(network, "network_delay")
        self.read = as_range(read, "read_delay")
        self.write = as_range(write, "write_delay")
        self.seed = seed
        self._rng = random.Random(seed)

    @classmethod
    def from_options(
        cls,
        network: Any,
        answer: Any,
        read: Optional[Any],
        write: Optional[Any],
        seed: int,
    ) -> Latency:
        return cls(
            network,
            answer if read is None else read,
            answer if write is None else write,
            seed,
        )

    def draw(self, method: str) -> Delays:
        answer = self.read if method in ("GET", "HEAD") else self.write
        if self.network == ZERO and answer == ZERO:
            return NO_DELAYS  # the common case costs no lock and no RNG draw
        with self._lock:
            uniform = self._rng.uniform
            return Delays(uniform(*self.network), uniform(*answer), uniform(*self.network))

    def configure(self, settings: Dict[str, Any]) -> None:
        """Apply ``network_delay``, ``answer_delay`` (read and write), ``read_delay``,
        ``write_delay`` and ``delay_seed`` from a control body; all validated before any is set."""
        with self._lock:
            network, read, write = self.network, self.read, self.write
            if "network_delay" in settings:
                network = as_range(settings["network_delay"], "network_delay")
            if "answer_delay" in settings:
                read = write = as_range(settings["answer_delay"], "answer_delay")
            if "read_delay" in settings:
                read = as_range(settings["read_delay"], "read_delay")
            if "write_delay" in settings:
                write = as_range(settings["write_delay"], "write_delay")
            seed = int(settings["delay_seed"]) if "delay_seed" in settings else None
            self.network, self.read, self.write = network, read, write
            if seed is not None:
                self.seed = seed
                self._rng.seed(seed)

    def to_json(self) -> Dict[str, Any]:
        return {
            "network_delay": list(self.network),
            "read_delay": list(self.read),
            "write_delay": list(self.write),
            "delay_seed": self.seed,
        }
