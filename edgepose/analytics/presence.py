"""Presence with hysteresis: is someone in view, without flapping on single-frame dropouts.

A person *enters* once the pose score has stayed at or above ``enter_score`` for ``enter_s``
seconds, and *leaves* once it has stayed below ``leave_score`` for ``leave_s`` seconds. Between
the two thresholds nothing changes. "Stays" allows glitches: frames back on the other side that add
up to less than ``dropout_s`` within the span do not break it, so a score that drops out (or flashes
up) for a frame now and then neither flaps the state nor holds up an entry or a departure.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from edgepose.config import PresenceConfig
from edgepose.events import EventType


class Presence:
    """The presence state machine; feed it every frame's pose score with the frame's time.

    Attributes:
        present: Whether a person is in view.
        entries: How many times a person entered.
        time_in_view_s: Total seconds a person has been in view.
    """

    def __init__(self, config: PresenceConfig) -> None:
        self.config = config
        self.present = False
        self.entries = 0
        self.time_in_view_s = 0.0
        self._entered_at = 0.0
        self._last_ts: float | None = None
        # recent frames: (time, across the threshold that applies now, time since the frame before)
        self._recent: deque[tuple[float, bool, float]] = deque()

    def across_since(self, ts: float) -> float | None:
        """Return since when the score has been across the threshold, glitches aside, or ``None``.

        Walking back from the newest frame, frames on the other side add up their durations; the
        walk stops once they reach ``dropout_s``. The answer is the earliest frame across on the way.
        """
        since = None
        back = 0.0
        for t, across, dt in reversed(self._recent):
            if across:
                since = t
                continue
            back += dt
            if back >= self.config.dropout_s:
                break
        return since

    def update(self, ts: float, score: float) -> list[dict[str, Any]]:
        """Advance to a frame at ``ts`` (seconds) whose best pose scored ``score``; return the events."""
        cfg = self.config
        dt = 0.0 if self._last_ts is None else max(0.0, ts - self._last_ts)
        self._last_ts = ts
        if self.present:
            self.time_in_view_s += dt
        need = cfg.leave_s if self.present else cfg.enter_s
        across = score < min(cfg.leave_score, cfg.enter_score) if self.present else score >= cfg.enter_score
        self._recent.append((ts, across, dt))
        while len(self._recent) > 1 and ts - self._recent[1][0] > need + cfg.dropout_s:
            self._recent.popleft()
        since = self.across_since(ts) if across else None
        if since is None or ts - since < need:
            return []
        self._recent.clear()  # the other threshold applies from now on
        if self.present:
            self.present = False
            visit = ts - self._entered_at
            return [{"type": EventType.PERSON_LEFT, "ts": ts, "visit_s": round(visit, 3),
                     "time_in_view_s": round(self.time_in_view_s, 3)}]  # fmt: skip
        self.present = True
        self.entries += 1
        self._entered_at = ts
        return [{"type": EventType.PERSON_ENTERED, "ts": ts, "entries": self.entries}]
