"""Whether the state topics tell the truth now: ``<base>/analysis``, and the camera's state (no paho here).

``person``, ``people`` and ``state`` are only as good as the frames behind them. ``<base>/analysis`` says
whether they are current: ``online`` while frames are being analysed and the presence hysteresis has
decided on them; ``offline`` before that, while detection is off, once no frame came for
``source.stale_after_s`` or the source is lost. Home Assistant's entities list it as a second
availability topic (``availability_mode: all``), so they turn unavailable instead of showing a stale
"Person: Detected", and a restart shows no ``off`` the new process only assumed.

Two halves on two threads:

- :class:`Settling`, in the loop (``MqttSink.publish``): after each start of analysis (the first frame,
  and again after every time :class:`Liveness` went offline) the presence carries a state over from
  before (a default at start, the last one before a pause or a lost camera). Its changes are held back
  until the frames since have covered ``AnalyticsConfig.decided_after_s()``, or the presence changed and the
  person's posture and zones had ``AnalyticsConfig.person_decided_s()`` to follow; then the sink sends them,
  followed by a :class:`Live` marker.
- :class:`Liveness`, in the sink's worker: ``online`` once a marker of the current generation came
  through the inbox (so after the state it vouches for) and while nothing blocks; anything blocking
  starts a new generation, whose marker the loop has to earn afresh.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from edgepose.events import EventType
from edgepose.health import PipelineStats

#: The source's state while it says ``ok`` but no frame came for ``stale_after_s``.
STALE = "stale"
#: Presence changes: a decision on the frames since, whatever the state carried over.
DECISIONS = (EventType.PERSON_ENTERED, EventType.PERSON_LEFT)


@dataclass(frozen=True)
class Live:
    """The loop's word that the state it sent so far reflects the frames of ``generation``."""

    generation: int


class Settling:
    """When the loop may publish presence again, after a (re)start of analysis (the loop's thread).

    Args:
        settle_s: Seconds of frames after which the presence, posture and zones reflect them
            (:meth:`~edgepose.config.AnalyticsConfig.decided_after_s`; 0 without hysteresis).
        follow_s: Seconds after a presence change by which the person's posture and zones have followed it
            (:meth:`~edgepose.config.AnalyticsConfig.person_decided_s`).
    """

    def __init__(self, settle_s: float, follow_s: float = 0.0) -> None:
        self._settle_s = settle_s
        self._follow_s = follow_s
        self._generation = -1
        self._since = 0.0
        self._decided_at: float | None = None
        self.settled = False

    @property
    def since(self) -> float | None:
        """Media time of the first frame of the current start of analysis (``None`` before any frame)."""
        return None if self._generation < 0 else self._since

    def observe(self, generation: int, t: float, events: Iterable[dict[str, Any]]) -> bool:
        """Account for a frame at media time ``t`` with its events; return whether the state may be published.

        Args:
            generation: :attr:`Liveness.generation` now: a new one starts the wait again.
            t: The frame's media time in seconds.
            events: The frame's analytics events.
        """
        if generation != self._generation:
            self._generation, self._since, self._decided_at, self.settled = generation, t, None, False
        if not self.settled:
            if self._decided_at is None and any(event.get("type") in DECISIONS for event in events):
                self._decided_at = t
            followed = self._decided_at is not None and t - self._decided_at >= self._follow_s
            self.settled = followed or t - self._since >= self._settle_s
        return self.settled


class Liveness:
    """Whether ``<base>/analysis`` is ``online``, and the camera's state (the worker's thread).

    Args:
        stats: Pipeline health: ``paused``, the frame age and the source's state.
        stale_after_s: No frame for this long blocks (``source.stale_after_s``, as ``/healthz``).
    """

    def __init__(self, stats: PipelineStats, stale_after_s: float) -> None:
        self._stats = stats
        self._stale_after_s = stale_after_s
        #: Starts at 0 and grows each time something blocks; read by the loop (an int: no lock needed).
        self.generation = 0
        self._confirmed = -1
        self._blocked = True

    def confirm(self, marker: Live) -> None:
        """Take the loop's marker; one of an older generation is stale and ignored."""
        if marker.generation == self.generation:
            self._confirmed = marker.generation

    def blocked(self) -> str:
        """Return why the state topics are not current (``""``: nothing blocks)."""
        stats = self._stats
        if stats.paused:
            return "detection is off"
        age = stats.frame_age()
        if age is None:
            return "no frame yet"
        if stats.source.state not in ("ok", "ended"):
            return f"the source is {stats.source.state}"
        if age > self._stale_after_s:
            return f"no frame for {age:.1f} s"
        return ""

    def online(self) -> bool:
        """Return whether the state topics are current; anything blocking starts a new generation."""
        blocked = bool(self.blocked())
        if blocked and not self._blocked:
            self.generation += 1
        self._blocked = blocked
        return not blocked and self._confirmed == self.generation

    def camera(self) -> tuple[str, str]:
        """Return the source's ``(state, reason)``; ``stale`` while it says ``ok`` but no frame came."""
        source = self._stats.source
        state = source.state
        age = self._stats.frame_age()
        if state == "ok" and (age is None or age > self._stale_after_s):
            state = STALE
        return state, source.reason
