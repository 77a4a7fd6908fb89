"""Fault injection: rules matched by method and path regex, with count and probability.

Actions:

* ``status``         answer ``status`` (500/502/503/504/429/402/…) before touching state;
* ``after_commit``   apply the request, then answer ``status`` (default 504) instead;
* ``drop``           apply the request, then close the socket without answering;
* ``reset``          reset the connection before processing;
* ``delay``          sleep ``delay`` seconds, then process normally (a slow answer / read timeout).

Example: ``{"method": "POST", "path": "^/api/v4/contacts$", "action": "status", "status": 502,
"probability": 0.2}`` makes 20% of contact creates fail with 502. ``count`` limits how often a
rule fires (``null`` = unlimited). The RNG is seeded, so a run is repeatable.
"""

from __future__ import annotations

import random
import re
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, List, Optional

ACTIONS = ("status", "after_commit", "drop", "reset", "delay")


@dataclass
class FaultRule:
    action: str
    path: str = ".*"
    method: str = "*"
    status: int = 0
    delay: float = 0.0
    count: Optional[int] = None
    probability: float = 1.0
    fired: int = 0
    id: int = 0
    _regex: Any = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise ValueError(f"unknown fault action {self.action!r}; expected one of {ACTIONS}")
        if not 0.0 <= self.probability <= 1.0:
            raise ValueError("probability must be within [0, 1]")
        if self.action == "status" and not self.status:
            raise ValueError("a status fault needs 'status'")
        if self.action == "after_commit" and not self.status:
            self.status = 504
        self._regex = re.compile(self.path)

    def matches(self, method: str, path: str) -> bool:
        if self.count is not None and self.fired >= self.count:
            return False
        return (self.method in ("*", "", method.upper())) and bool(self._regex.search(path))

    def to_json(self) -> Dict[str, Any]:
        data = asdict(self)
        data.pop("_regex")
        return data


class Faults:
    def __init__(self, seed: int = 1) -> None:
        self.rules: List[FaultRule] = []
        self.rng = random.Random(seed)
        self._next_id = 1

    def add(self, spec: Dict[str, Any]) -> FaultRule:
        allowed = {"action", "path", "method", "status", "delay", "count", "probability"}
        unknown = set(spec) - allowed
        if unknown:
            raise ValueError(f"unknown fault keys: {sorted(unknown)}")
        rule = FaultRule(**spec)
        rule.method = rule.method.upper()
        rule.id = self._next_id
        self._next_id += 1
        self.rules.append(rule)
        return rule

    def clear(self) -> None:
        self.rules.clear()

    def seed(self, value: int) -> None:
        self.rng.seed(value)

    def pick(self, method: str, path: str) -> Optional[FaultRule]:
        """The first matching rule whose probability roll succeeds; it counts as fired."""
        for rule in self.rules:
            if not rule.matches(method, path):
                continue
            if rule.probability < 1.0 and self.rng.random() >= rule.probability:
                continue
            rule.fired += 1
            return rule
        return None

    def to_json(self) -> List[Dict[str, Any]]:
        return [r.to_json() for r in self.rules]
