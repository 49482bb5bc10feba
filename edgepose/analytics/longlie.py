"""The long lie: a person lying outside every ``falls = false`` zone for ``long_lie_s``, fall seen or not.

The timer starts when the person's posture becomes ``lying`` and runs while it stays ``lying`` or
``unknown`` (a person on the floor is often half hidden); ``standing``, ``sitting`` or a ``falls = false``
zone (a bed, a sofa, a mat) stops it. Once it reaches ``long_lie_s``, ``long_lie`` fires and the person is
fallen, until their posture is ``standing`` or ``sitting`` again (``recovered``). A lie during which a fall
was detected raises no ``long_lie``: the ``fall`` has raised the alarm already (and ``fallen`` stays true).

The ``confidence`` in [0, 1] is the mean of three terms over the lie: how close to horizontal the torso
was (the mean tilt, from ``upright_deg`` to 90°), the share of frames in which the torso was seen, and
the torso keypoints' mean score.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edgepose.analytics.falls import TorsoSample
from edgepose.analytics.posture import LYING, SITTING, STANDING
from edgepose.events import EventType


class LongLie:
    """One person's long-lie timer.

    Args:
        long_lie_s: Seconds lying before ``long_lie``.
        upright_deg: The tilt of an upright torso (``fall_upright_deg``), where the tilt term is 0.

    Attributes:
        active: A long lie was raised and the person is not up yet.
    """

    def __init__(self, long_lie_s: float, upright_deg: float) -> None:
        self.long_lie_s = long_lie_s
        self.upright_deg = upright_deg
        self.active = False
        self._since: float | None = None
        self._had_fall = False
        self._frames = 0
        self._tilts: list[float] = []
        self._scores: list[float] = []

    def _stop(self) -> None:
        self._since, self._had_fall, self._frames, self._tilts, self._scores = None, False, 0, [], []

    def update(
        self, ts: float, posture: str, safe: bool, fallen: bool, torso: TorsoSample | None
    ) -> list[dict[str, Any]]:
        """Advance to a frame at ``ts``; return ``long_lie`` or ``recovered``.

        Args:
            ts: The frame's time.
            posture: The person's posture now.
            safe: The person is in a ``falls = false`` zone.
            fallen: A detected fall has the person fallen now.
            torso: The torso this frame, if seen.
        """
        up = posture in (STANDING, SITTING)
        if self.active:
            if not up:
                return []
            self.active = False
            self._stop()
            return [{"type": EventType.RECOVERED, "ts": ts}]
        if up or safe or (self._since is None and posture != LYING):
            self._stop()
            return []
        if self._since is None:
            self._since = ts
        self._had_fall |= fallen
        self._frames += 1
        if torso is not None:
            self._tilts.append(torso.tilt)
            self._scores.append(torso.score)
        if self._had_fall or ts - self._since < self.long_lie_s:
            return []
        self.active = True
        return [{"type": EventType.LONG_LIE, "ts": ts, "confidence": round(self._confidence(), 3)}]

    def _confidence(self) -> float:
        """Return the confidence of the lie so far (see the module docstring)."""
        if not self._tilts:
            return 0.0
        tilt = (float(np.mean(self._tilts)) - self.upright_deg) / max(90.0 - self.upright_deg, 1e-6)
        seen = len(self._tilts) / max(self._frames, 1)
        return float(np.clip((min(1.0, max(0.0, tilt)) + seen + float(np.mean(self._scores))) / 3.0, 0.0, 1.0))
