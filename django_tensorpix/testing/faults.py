"""Fault injection: make chosen routes fail the way real networks and servers do.

A rule matches a route template ("GET /api/jobs/{id}/"), a method wildcard ("POST *")
or everything ("*"), and fires for its next ``times`` matching calls, or on each
matching call with a seeded ``probability``.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, field

FAULT_KINDS: tuple[str, ...] = (
    "error",
    "rate_limit",
    "latency",
    "reset",
    "truncated",
    "lost_response",
)
ERROR_STATUSES = (500, 502, 503, 504)
UNLIMITED = -1


@dataclass
class FaultRule:
    """One injected fault. ``fired`` counts how often it has struck."""

    route: str
    kind: str
    remaining: int = 1
    probability: float | None = None
    status: int | None = None
    retry_after: int | float | str | None = None
    delay: float | None = None
    fired: int = field(default=0)

    def matches(self, method: str, route: str) -> bool:
        """``route`` is the matched route's name, e.g. "GET /api/jobs/{id}/"."""
        if self.route in ("*", route):
            return True
        wanted_method, _, wanted_path = self.route.partition(" ")
        return wanted_path == "*" and wanted_method.upper() == method

    @property
    def exhausted(self) -> bool:
        return self.remaining == 0

    def retry_after_header(self) -> str:
        """The ``Retry-After`` value: delta-seconds, or an HTTP-date passed as a string."""
        value = 1 if self.retry_after is None else self.retry_after
        if isinstance(value, str):
            return value
        return str(max(round(value), 0))


class FaultInjector:
    """The active rules; picks at most one to fire per request (first match wins)."""

    def __init__(self, seed: int) -> None:
        self._rules: list[FaultRule] = []
        self._rng = random.Random(seed)
        self._lock = threading.Lock()

    def add(self, rule: FaultRule) -> FaultRule:
        if rule.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {rule.kind!r}; choose from {FAULT_KINDS}")
        if rule.kind == "error" and rule.status is not None and rule.status < 500:
            raise ValueError("an 'error' fault needs a 5xx status")
        if rule.kind == "latency" and not rule.delay:
            raise ValueError("a 'latency' fault needs a delay in seconds")
        if rule.probability is not None and not 0 <= rule.probability <= 1:
            raise ValueError("probability must be between 0 and 1")
        with self._lock:
            self._rules.append(rule)
        return rule

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def pick(self, method: str, route: str) -> FaultRule | None:
        with self._lock:
            for rule in self._rules:
                if rule.exhausted or not rule.matches(method, route):
                    continue
                if rule.probability is not None and self._rng.random() >= rule.probability:
                    continue
                if rule.remaining > 0:
                    rule.remaining -= 1
                rule.fired += 1
                return rule
        return None
