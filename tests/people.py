"""Frames of several stick-figure people (:mod:`stickfigure`), each pose noisy, in a shuffled order."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import numpy as np
from stickfigure import FPS, HEIGHT, T0, WIDTH, Noise, noisy

from edgepose.analytics import Analytics
from edgepose.pose import Pose, PoseResult

#: A person's keypoints at time ``t`` (seconds), or ``None`` while they are not in view.
Figure = Callable[[float], "np.ndarray | None"]


def crowd(
    figures: Sequence[Figure], duration_s: float, seed: int = 0, noise: Noise | None = None
) -> Iterator[PoseResult]:
    """Yield PoseResults with one pose per figure in view, in a random order each frame (not best first)."""
    rng = np.random.default_rng(seed)
    noise = noise or Noise()
    for i in range(round(duration_s * FPS)):
        t = i / FPS
        shown = [k for figure in figures if (k := figure(t)) is not None]
        poses = [Pose.from_keypoints(noisy(k, rng, noise)) for k in shown]
        rng.shuffle(poses)  # type: ignore[arg-type]
        keypoints = poses[0].keypoints if poses else np.zeros((17, 3), np.float32)
        yield PoseResult(frame=i, ts=T0 + t, width=WIDTH, height=HEIGHT, keypoints=keypoints, poses=tuple(poses))


def analysed(analytics: Analytics, results: Iterator[PoseResult]) -> list[PoseResult]:
    """Every result through the analytics."""
    return [analytics.update(result) for result in results]


def where(pose: Pose) -> float:
    """Where a stick figure stands: the least x of its confident keypoints (its feet, standing or fallen forward)."""
    seen = pose.keypoints[pose.keypoints[:, 2] >= 0.3, 0]
    return float(seen.min()) if len(seen) else -1e9


def id_near(result: PoseResult, x: float, within: float = 60.0) -> int | None:
    """The id of the pose standing within ``within`` px of ``x`` (``None`` if none is)."""
    found = [p for p in result.poses or () if abs(where(p) - x) <= within]
    return found[0].id if found else None


def events(results: Sequence[PoseResult], *types: str) -> list[dict[str, object]]:
    """The events of these types (all, if none is given), in order."""
    return [e for r in results for e in r.events if not types or e["type"] in types]
