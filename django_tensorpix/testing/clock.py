"""The emulator's clock: manual (tests move it) or real time sped up (demos).

Every lifecycle step is computed from this clock, never from a background thread, so a
test that calls :meth:`Clock.advance` sees a consistent world on its next request.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime


class Clock:
    """Simulated wall-clock time in epoch seconds.

    With ``speed=None`` time stands still until :meth:`advance` moves it; with
    ``speed=20.0`` one real second is twenty simulated seconds (a 10-minute job takes
    30 s). ``advance`` works in both modes.
    """

    def __init__(self, speed: float | None = None, *, start: float | None = None) -> None:
        if speed is not None and speed <= 0:
            raise ValueError("speed must be positive (or None for a manual clock)")
        self.speed = speed
        self._start = time.time() if start is None else start
        self._monotonic_start = time.monotonic()
        self._offset = 0.0

    def now(self) -> float:
        elapsed = 0.0
        if self.speed is not None:
            elapsed = (time.monotonic() - self._monotonic_start) * self.speed
        return self._start + elapsed + self._offset

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("the clock only moves forward")
        self._offset += seconds


def isoformat(epoch_seconds: float) -> str:
    """RFC 3339 timestamp the way Django REST framework renders an aware datetime."""
    return datetime.fromtimestamp(epoch_seconds, UTC).isoformat().replace("+00:00", "Z")
