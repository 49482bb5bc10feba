"""Presence with hysteresis: is someone in view, without flapping on single-frame dropouts.

A person *enters* once every frame has shown entering evidence for ``enter_s`` seconds, and *leaves*
once every frame has shown leaving evidence for ``leave_s`` seconds; in between nothing changes. The
analytics give each person's frames the evidence of :mod:`edgepose.analytics.body` (entering: a body;
leaving: not even seen); :meth:`Presence.update` takes a pose score alone (entering at or above
``enter_score``, leaving below ``leave_score``). "Every frame" allows glitches: frames back on the other
side that add up to less than ``dropout_s`` within the span do not break it, so evidence that drops out
(or flashes up) for a frame now and then neither flaps the state nor holds up an entry or a departure.
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
        """Advance to a frame at ``ts`` (seconds) whose pose scored ``score``; return the events."""
        cfg = self.config
        return self.observe(ts, score >= cfg.enter_score, score >= min(cfg.leave_score, cfg.enter_score))

    def observe(self, ts: float, entering: bool, staying: bool) -> list[dict[str, Any]]:
        """Advance to a frame at ``ts`` (seconds) with this evidence; return the events.

        Args:
            ts: The frame's time.
            entering: The frame counts towards entering (while absent).
            staying: The frame does not count towards leaving (while present).
        """
        cfg = self.config
        dt = 0.0 if self._last_ts is None else max(0.0, ts - self._last_ts)
        self._last_ts = ts
        if self.present:
            self.time_in_view_s += dt
        need = cfg.leave_s if self.present else cfg.enter_s
        across = not staying if self.present else entering
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
