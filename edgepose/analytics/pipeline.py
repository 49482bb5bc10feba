"""The analytics stage: tracks ▶ smoothing ▶ presence ▶ posture ▶ zones ▶ falls ▶ reps, per person.

Each frame's poses are matched to tracks (:mod:`~edgepose.analytics.tracking`); each track's person
(:mod:`~edgepose.analytics.person`) runs their own state machines; the state sums them up: anyone
present, anyone fallen, the reps of the person exercising, each person, and how many people each zone holds.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np

from edgepose.analytics.body import NOTHING, evidence
from edgepose.analytics.person import Person
from edgepose.analytics.reps import RepCounter
from edgepose.analytics.tracking import match
from edgepose.config import AnalyticsConfig, SmoothingConfig, ZoneConfig
from edgepose.config.choices import EXERCISES
from edgepose.errors import ConfigError
from edgepose.events import EventType
from edgepose.pose import Pose, PoseResult, printed_keypoints


class Analytics:
    """Adds ``state`` and ``events`` to each :class:`PoseResult`, in frame order, and an ``id`` to each pose.

    Args:
        config: The analytics settings.
        smoothing: One-Euro settings for the keypoints (each person their own filter), or ``None``.
        zones: The ``[[zones]]``.

    Attributes:
        people: The tracks, oldest first.
    """

    def __init__(
        self, config: AnalyticsConfig, smoothing: SmoothingConfig | None = None, zones: Sequence[ZoneConfig] = ()
    ) -> None:
        self.config = config
        self.smoothing = smoothing
        self.zones = tuple(zones)
        self.people: list[Person] = []
        self.reps = RepCounter(config.reps()) if config.exercise else None
        self._body = config.body()
        self._ids = itertools.count(1)
        self._exerciser: Person | None = None
        self._entries = 0
        self._time_in_view_s = 0.0
        self._t: float | None = None

    @property
    def present(self) -> bool:
        """Whether anyone is present."""
        return any(person.presence.present for person in self.people)

    @property
    def deciding(self) -> bool:
        """Whether a body is being followed that has not been taken for a person yet (presence still deciding)."""
        return any(person.id is None for person in self.people)

    def set_exercise(self, exercise: str) -> None:
        """Count repetitions of ``exercise`` from the next frame on (``""``: none); the count starts at 0.

        Raises:
            ConfigError: Not one of the exercises.
        """
        if exercise and exercise not in EXERCISES:
            raise ConfigError(f"analytics exercise must be one of {', '.join(EXERCISES)}, not {exercise!r}")
        self.config = dataclasses.replace(self.config, exercise=exercise)
        self.reps = RepCounter(self.config.reps()) if exercise else None
        self._exerciser = None

    def reset_reps(self) -> None:
        """Set the repetition count to 0 (a repetition in progress is forgotten)."""
        if self.reps is not None:
            self.reps = RepCounter(self.config.reps())

    def state(self) -> dict[str, Any]:
        """Return the state: ``present``, ``fallen``, ``exercise``, ``reps``, ``people`` and ``zones``."""
        people = sorted((p for p in self.people if p.id is not None), key=lambda p: p.id or 0)
        return {
            "present": self.present,
            "fallen": any(p.fallen for p in people),
            "exercise": self.config.exercise or None,
            "reps": self.reps.count if self.reps is not None else 0,
            "people": [_summary(p) for p in people],
            "zones": {
                z.name: sum(p.presence.present and z.name in p.zones.current for p in people) for z in self.zones
            },
        }

    def restart(self) -> None:
        """Start every person's smoothing and motion afresh (the source was opened again or changed size)."""
        for person in self.people:
            person.restart()

    def update(self, result: PoseResult) -> PoseResult:
        """Analyse one frame; return it with each pose's ``id`` (and smoothed keypoints), ``state`` and ``events``.

        Time comes from ``result.media_s``, the frame's media time; from ``result.ts`` only when it has none
        (a recording made before it existed). A time earlier than the previous one is taken as equal. Each
        event carries the frame's wall-clock ``ts`` and, when the frame has one, its ``media_s``. The state
        machines see the values as :meth:`PoseResult.to_dict` prints them (rounded), so ``edgepose
        analyze`` on the printed lines reaches the very same events.
        """
        t = round(result.ts if result.media_s is None else result.media_s, 6)
        t = t if self._t is None else max(t, self._t)
        if self._t is not None and self.present:
            self._time_in_view_s += t - self._t
        self._t = t
        width, height = result.width, result.height
        poses = result.all_poses
        printed = [(_as_printed(p.keypoints), round(p.score, 4)) for p in poses]
        chosen = self._assign(t, printed, width, height)
        shown: list[np.ndarray] = [p.keypoints for p in poses]
        ids: list[int | None] = [None] * len(poses)
        events: list[dict[str, Any]] = []
        for track, person in enumerate(self.people):
            index = chosen.get(track)
            if index is None:
                changes = person.update(t, None, NOTHING, width, height)
            else:
                shown[index] = person.smooth(poses[index].keypoints, printed[index][1], width, height, t)
                smoothed = shown[index] is not poses[index].keypoints
                seen = _as_printed(shown[index]) if smoothed else printed[index][0]
                shows = evidence(seen, printed[index][1], width, height, self._body)
                changes = person.update(t, seen, shows, width, height)
            events += [self._about(person, e) for e in changes]  # gives the id on entering
            if index is not None:
                ids[index] = person.id
        self.people = [p for p in self.people if not p.done]
        events += self._reps(t)
        stamp = {"ts": round(result.ts, 6)} | ({} if result.media_s is None else {"media_s": t})
        out = tuple(_with(p, k, i) for p, k, i in zip(poses, shown, ids, strict=True))
        keypoints = out[0].keypoints if out else result.keypoints
        return dataclasses.replace(result, keypoints=keypoints, poses=out, state=self.state(),
                                   events=tuple(_stamped(e, stamp) for e in events))  # fmt: skip

    def _assign(self, t: float, printed: list[tuple[np.ndarray, float]], width: int, height: int) -> dict[int, int]:
        """Match this frame's poses to the tracks, start a track for each unmatched body; return ``{track: pose}``."""
        shows = [evidence(k, s, width, height, self._body) for k, s in printed]
        tracks = [(person.motion.predict(t), person.motion.trust(t)) for person in self.people]
        found = match(tracks, [k for k, _ in printed], [e.seen for e in shows], self.config.keypoint_score)
        chosen = {track: pose for pose, track in found.items()}
        for i, (keypoints, _) in enumerate(printed):
            if i not in found and shows[i].body:
                chosen[len(self.people)] = i
                self.people.append(Person(self.config, self.zones, self.smoothing, keypoints, t))
        return chosen

    def _about(self, person: Person, event: dict[str, Any]) -> dict[str, Any]:
        """Return a person's event with their ``person`` id (given now if they just entered) and the run's totals."""
        if event["type"] == EventType.PERSON_ENTERED:
            if person.id is None:
                person.id = next(self._ids)
            self._entries += 1
            event = event | {"entries": self._entries}
        elif event["type"] == EventType.PERSON_LEFT:
            event = event | {"time_in_view_s": round(self._time_in_view_s, 3)}
        return {"type": event["type"], "ts": event["ts"], "person": person.id,
                **{k: v for k, v in event.items() if k not in ("type", "ts")}}  # fmt: skip

    def _reps(self, t: float) -> list[dict[str, Any]]:
        """Count the reps of the person exercising: the present person with the biggest box, kept while present."""
        if self.reps is None:
            return []
        present = [p for p in self.people if p.presence.present]
        if self._exerciser not in present:
            if self._exerciser is not None:
                self.reps.interrupt()  # they left: a repetition in progress is forgotten
            self._exerciser = max(present, key=Person.box_area, default=None)
        person = self._exerciser
        if person is None or person.keypoints is None:
            return []
        return [self._about(person, e) for e in self.reps.update(t, person.keypoints)]


def _summary(person: Person) -> dict[str, Any]:
    """Return one entry of ``state["people"]``."""
    return {"id": person.id, "present": person.presence.present, "posture": person.posture.posture,
            "fallen": person.fallen, "zones": list(person.zones.current)}  # fmt: skip


def _with(pose: Pose, keypoints: np.ndarray, person: int | None) -> Pose:
    """Return the pose with these keypoints (its box follows them, its score stays) and the ``id`` of its person."""
    if keypoints is pose.keypoints:
        return dataclasses.replace(pose, id=person)
    moved = Pose.from_keypoints(keypoints, score=pose.score, landmarks=pose.landmarks)
    return dataclasses.replace(moved, id=person)


def _stamped(event: dict[str, Any], stamp: dict[str, float]) -> dict[str, Any]:
    """Return the event with the frame's ``ts`` (and ``media_s``) in place of its own time, after its type."""
    rest = {key: value for key, value in event.items() if key not in ("type", "ts")}
    return {"type": event["type"], **stamp, **rest}


def _as_printed(keypoints: np.ndarray) -> np.ndarray:
    """Return the keypoints rounded as ``to_dict`` prints them (x, y to 0.01 px, score to 1e-4)."""
    return printed_keypoints(keypoints).astype(np.float32)
