"""Fall detection: a documented rule on the torso's trajectory.

Per frame, from the confident shoulders and hips (score >= ``keypoint_score``): the shoulder centre,
the hip centre, the torso *tilt* (angle of hip→shoulder from straight up: 0° upright, 90° lying) and
the torso length, from which the body height is estimated as torso length / 0.3.

A **fall** is flagged when all of these hold:

1. the torso tilt reaches ``lying_deg`` (60°);
2. it was upright (tilt <= ``upright_deg``, 30°) at most ``window_s`` (1 s) before: the torso turned
   towards horizontal quickly;
3. between that upright frame and now, both the hip centre and the shoulder centre moved down the
   picture by at least ``drop`` (0.25) body heights;
4. the torso then stays down (tilt >= ``down_deg``, 45°) for ``down_s`` (2 s). Frames where the torso
   is not seen do not cancel it (a person on the floor is often half hidden).

The ``fall`` event fires at the end of step 4, once; ``fallen`` stays true until the torso has been
upright for ``recover_s`` (1 s), which fires ``recovered``.

Sitting down drops the hips but keeps the torso upright (rule 1 fails); bending over tilts the torso
but keeps the hips up (rule 3 fails); lying down slowly takes longer than ``window_s`` to go from
upright to lying (rule 2 fails). The confidence in [0, 1] is the mean of four terms, taken over the
time from the turn to the event: how close to horizontal the torso got (from ``upright_deg`` to 90°),
how far the body dropped (relative to twice ``drop``), how quick the turn was (1 for instant, 0.5 for
``window_s``) and the mean score of the torso keypoints.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from edgepose.analytics.geometry import centre, tilt_from_down
from edgepose.config import FallConfig
from edgepose.events import EventType
from edgepose.pose import KEYPOINT_INDEX

#: Shoulder-to-hip length as a fraction of standing body height (adult proportions).
TORSO_PER_HEIGHT = 0.3
_TORSO = [KEYPOINT_INDEX[f"{side}_{part}"] for side in ("left", "right") for part in ("shoulder", "hip")]


class TorsoSample(NamedTuple):
    """The torso in one frame."""

    ts: float
    tilt: float
    shoulder_y: float
    hip_y: float
    length: float
    score: float


def _drop(upright: TorsoSample, now: TorsoSample) -> float:
    """Return how far both hips and shoulders moved down since ``upright``, in body heights."""
    height = upright.length / TORSO_PER_HEIGHT
    return min(now.hip_y - upright.hip_y, now.shoulder_y - upright.shoulder_y) / height


def torso_sample(ts: float, keypoints: np.ndarray, min_score: float) -> TorsoSample | None:
    """Measure the torso from the confident shoulders and hips, or ``None`` if either pair is unseen."""
    shoulder = centre(keypoints, "shoulder", min_score)
    hip = centre(keypoints, "hip", min_score)
    if shoulder is None or hip is None:
        return None
    tilt = tilt_from_down(shoulder, hip)
    if tilt is None:
        return None
    scores = keypoints[_TORSO, 2]
    score = float(scores[scores >= min_score].mean())
    length = float(np.hypot(*(hip - shoulder)))
    return TorsoSample(ts, tilt, float(shoulder[1]), float(hip[1]), length, score)


@dataclass
class _Candidate:
    """A fall being confirmed: when it turned, from which upright frame, and the extremes since."""

    ts: float
    upright: TorsoSample
    turn_s: float
    tilt: float
    drop: float
    scores: list[float]


class FallDetector:
    """The fall state machine; feed it every frame's keypoints with the frame's time.

    Attributes:
        fallen: Whether a fall was detected and the person has not recovered yet.
        falls: How many falls were detected.
    """

    def __init__(self, config: FallConfig) -> None:
        self.config = config
        self.fallen = False
        self.falls = 0
        self._history: deque[TorsoSample] = deque()
        self._candidate: _Candidate | None = None
        self._upright_since: float | None = None

    def update(self, ts: float, keypoints: np.ndarray) -> list[dict[str, Any]]:
        """Advance to a frame at ``ts`` with these ``(17, 3)`` keypoints; return ``fall``/``recovered`` events."""
        cfg = self.config
        sample = torso_sample(ts, keypoints, cfg.keypoint_score)
        if self.fallen:
            return self._recovery(ts, sample)
        candidate = self._candidate
        if candidate is not None:
            if sample is not None and sample.tilt < cfg.down_deg:
                self._candidate = None  # got up again at once: a stumble, not a fall
            else:
                if sample is not None:
                    candidate.tilt = max(candidate.tilt, sample.tilt)
                    candidate.drop = max(candidate.drop, _drop(candidate.upright, sample))
                    candidate.scores.append(sample.score)
                if ts - candidate.ts >= cfg.down_s:
                    self._candidate, self.fallen, self._upright_since = None, True, None
                    self.falls += 1
                    self._history.clear()
                    return [{"type": EventType.FALL, "ts": ts, "confidence": round(self._confidence(candidate), 3)}]
        if sample is None:
            return []
        self._history.append(sample)
        while self._history and self._history[0].ts < ts - cfg.window_s:
            self._history.popleft()
        if self._candidate is None and sample.tilt >= cfg.lying_deg:
            self._candidate = self._turned(sample)
        return []

    def _turned(self, now: TorsoSample) -> _Candidate | None:
        """Return a fall candidate if rules 2 and 3 hold for a torso at ``lying_deg`` now, else ``None``."""
        cfg = self.config
        upright = next((s for s in reversed(self._history) if s.tilt <= cfg.upright_deg), None)
        if upright is None or upright.length <= 0.0:
            return None
        drop = _drop(upright, now)
        if drop < cfg.drop:
            return None
        return _Candidate(now.ts, upright, now.ts - upright.ts, now.tilt, drop, [upright.score, now.score])

    def _confidence(self, c: _Candidate) -> float:
        """Return the confidence of a confirmed fall (see the module docstring)."""
        cfg = self.config
        tilt = min(1.0, max(0.0, (c.tilt - cfg.upright_deg) / max(90.0 - cfg.upright_deg, 1e-6)))
        drop = min(1.0, c.drop / (2.0 * cfg.drop)) if cfg.drop > 0 else 1.0
        quick = 1.0 - 0.5 * min(1.0, c.turn_s / cfg.window_s)
        quality = sum(c.scores) / len(c.scores)
        return float(np.clip((tilt + drop + quick + quality) / 4.0, 0.0, 1.0))

    def _recovery(self, ts: float, sample: TorsoSample | None) -> list[dict[str, Any]]:
        """While fallen: ``recovered`` once the torso has stayed upright for ``recover_s``."""
        if sample is None:
            return []
        if sample.tilt > self.config.upright_deg:
            self._upright_since = None
            return []
        if self._upright_since is None:
            self._upright_since = ts
        if ts - self._upright_since < self.config.recover_s:
            return []
        self.fallen, self._upright_since = False, None
        return [{"type": EventType.RECOVERED, "ts": ts}]
