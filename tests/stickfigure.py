"""Stick-figure keypoints from joint-angle trajectories, with the noise a real pose model adds.

Side view (facing +x) for squats, push-ups and falls; front view for jumping jacks. Segment lengths
are fractions of the body height ``H`` (adult proportions). Images are 640×480, y down.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from edgepose.pose import KEYPOINT_INDEX, PoseResult

WIDTH, HEIGHT = 640, 480
H = 300.0  # body height in pixels
FLOOR = 440.0
FPS = 30.0
T0 = 1_700_000_000.0

SHIN, THIGH, TORSO, UPPER_ARM, FOREARM = 0.246 * H, 0.245 * H, 0.288 * H, 0.186 * H, 0.146 * H
ANKLE_HEIGHT = 0.039 * H


def _unit(deg: float) -> np.ndarray:
    """Direction at ``deg`` from straight up, positive towards +x (the way a side-view figure faces)."""
    a = math.radians(deg)
    return np.array([math.sin(a), -math.cos(a)])


def _put(points: dict[str, np.ndarray]) -> np.ndarray:
    """Assemble named points into (17, 3) keypoints with score 1."""
    out = np.zeros((17, 3), dtype=np.float64)
    out[:, 2] = 1.0
    for name, xy in points.items():
        out[KEYPOINT_INDEX[name], :2] = xy
    return out


def _head(shoulder: np.ndarray, up_deg: float, facing: np.ndarray) -> dict[str, np.ndarray]:
    """Face keypoints of a side view: nose above and ahead of the shoulders."""
    up, ahead = _unit(up_deg), facing
    nose = shoulder + 0.11 * H * up + 0.05 * H * ahead
    eye = nose + 0.02 * H * up - 0.015 * H * ahead
    ear = nose + 0.01 * H * up - 0.07 * H * ahead
    depth = np.array([1.5, 0.0])
    return {"nose": nose, "left_eye": eye + depth, "right_eye": eye - depth, "left_ear": ear + depth,
            "right_ear": ear - depth}  # fmt: skip


def side_view(
    ankle: np.ndarray, shin: float, thigh: float, torso: float, upper_arm: float, forearm: float
) -> np.ndarray:
    """A side-view figure built up from the ankle; each angle is the segment's direction from straight up.

    Args:
        ankle: Ankle position (both ankles, 3 px apart in depth).
        shin: Ankle→knee direction.
        thigh: Knee→hip direction.
        torso: Hip→shoulder direction.
        upper_arm: Shoulder→elbow direction (180 = hanging).
        forearm: Elbow→wrist direction.
    """
    knee = ankle + SHIN * _unit(shin)
    hip = knee + THIGH * _unit(thigh)
    shoulder = hip + TORSO * _unit(torso)
    elbow = shoulder + UPPER_ARM * _unit(upper_arm)
    wrist = elbow + FOREARM * _unit(forearm)
    points = _head(shoulder, torso, _unit(torso + 90))
    for side, dx in (("left", 1.5), ("right", -1.5)):
        off = np.array([dx, 0.0])
        for name, xy in (("ankle", ankle), ("knee", knee), ("hip", hip), ("shoulder", shoulder), ("elbow", elbow),
                         ("wrist", wrist)):  # fmt: skip
            points[f"{side}_{name}"] = xy + off
    return _put(points)


def squat(knee_deg: float, x: float = 300.0) -> np.ndarray:
    """Side view of a squat with this interior knee angle (about 175 standing, 80 deep); feet stay put."""
    bend = 180.0 - knee_deg
    shin = 0.35 * bend
    return side_view(np.array([x, FLOOR - ANKLE_HEIGHT]), shin, shin - bend, 0.6 * bend, 180.0 - 0.9 * bend,
                     180.0 - 0.9 * bend)  # fmt: skip


def pushup(elbow_deg: float, wrist_x: float = 420.0) -> np.ndarray:
    """Side view of a push-up with this interior elbow angle (about 170 up, 75 down); hands and toes stay put."""
    wrist = np.array([wrist_x, FLOOR - 0.01 * H])
    e = math.radians(elbow_deg)
    reach = math.sqrt(UPPER_ARM**2 + FOREARM**2 - 2 * UPPER_ARM * FOREARM * math.cos(e))
    shoulder = wrist + np.array([0.0, -reach])
    at_shoulder = math.acos((UPPER_ARM**2 + reach**2 - FOREARM**2) / (2 * UPPER_ARM * reach))
    elbow = shoulder + UPPER_ARM * np.array([-math.sin(at_shoulder), math.cos(at_shoulder)])
    ankle = np.array([wrist_x - 0.78 * H, FLOOR - ANKLE_HEIGHT])
    line = shoulder - ankle
    body = line / np.hypot(*line)
    hip, knee = ankle + 0.63 * line, ankle + 0.315 * line
    points = _head(shoulder, math.degrees(math.atan2(body[0], -body[1])), np.array([0.0, 1.0]))
    for side, dx in (("left", 1.5), ("right", -1.5)):
        off = np.array([dx, 0.0])
        for name, xy in (("ankle", ankle), ("knee", knee), ("hip", hip), ("shoulder", shoulder), ("elbow", elbow),
                         ("wrist", wrist)):  # fmt: skip
            points[f"{side}_{name}"] = xy + off
    return _put(points)


def jumping_jack(arm_deg: float, leg_deg: float, cx: float = 320.0) -> np.ndarray:
    """Front view: arms raised ``arm_deg`` from hanging, each leg ``leg_deg`` out from vertical; feet on the floor."""
    leg = THIGH + SHIN
    hip_y = FLOOR - ANKLE_HEIGHT - leg * math.cos(math.radians(leg_deg))
    points: dict[str, np.ndarray] = {}
    shoulder_y = hip_y - TORSO
    a, g = math.radians(arm_deg), math.radians(leg_deg)
    for side, sign in (("left", 1.0), ("right", -1.0)):  # the person's left is on the image's right
        shoulder = np.array([cx + sign * 0.13 * H, shoulder_y])
        arm = np.array([sign * math.sin(a), math.cos(a)])
        hip = np.array([cx + sign * 0.09 * H, hip_y])
        limb = np.array([sign * math.sin(g), math.cos(g)])
        points |= {f"{side}_shoulder": shoulder, f"{side}_elbow": shoulder + UPPER_ARM * arm,
                   f"{side}_wrist": shoulder + (UPPER_ARM + FOREARM) * arm, f"{side}_hip": hip,
                   f"{side}_knee": hip + THIGH * limb, f"{side}_ankle": hip + leg * limb,
                   f"{side}_eye": np.array([cx + sign * 0.025 * H, shoulder_y - 0.13 * H]),
                   f"{side}_ear": np.array([cx + sign * 0.05 * H, shoulder_y - 0.12 * H])}  # fmt: skip
    points["nose"] = np.array([cx, shoulder_y - 0.11 * H])
    return _put(points)


def topple(angle_deg: float, x: float = 250.0) -> np.ndarray:
    """Side view of a stiff body rotated ``angle_deg`` forward about the ankles (90 = flat on the floor)."""
    a = min(angle_deg, 86.0)  # the body ends on the floor, not under it
    return side_view(np.array([x, FLOOR - ANKLE_HEIGHT]), a, a, a, 180.0 + a - 20.0, 180.0 + a - 20.0)


def sitting(amount: float, lean_back: float = 0.0, x: float = 300.0) -> np.ndarray:
    """Side view from standing (0) to seated on a chair (1), then leaning back ``lean_back`` degrees (90 = lying)."""
    shin = 0.0
    thigh = -90.0 * amount
    torso = 10.0 * amount - lean_back
    return side_view(np.array([x, FLOOR - ANKLE_HEIGHT]), shin, thigh, torso, 180.0 - 20.0 * amount - lean_back,
                     150.0 - lean_back)  # fmt: skip


# --- trajectories -------------------------------------------------------------------------------------------


def ease(u: float) -> float:
    """Smooth 0→1 (cosine)."""
    u = min(max(u, 0.0), 1.0)
    return 0.5 - 0.5 * math.cos(math.pi * u)


def segments(*parts: tuple[float, float, float]) -> Callable[[float], float]:
    """A piecewise trajectory: ``(duration_s, from, to)`` pieces with cosine easing, holding the last value."""

    def at(t: float) -> float:
        for duration, start, end in parts:
            if t < duration:
                return start + (end - start) * ease(t / duration)
            t -= duration
        return parts[-1][2]

    return at


def total(*parts: tuple[float, float, float]) -> float:
    """Total duration of :func:`segments` pieces."""
    return sum(p[0] for p in parts)


def rep_cycle(rest: float, work: float, down_s: float = 0.8, hold_s: float = 0.2, up_s: float = 0.8,
              pause_s: float = 0.6) -> list[tuple[float, float, float]]:  # fmt: skip
    """One repetition: rest → work (eased), hold, → rest, pause."""
    return [(down_s, rest, work), (hold_s, work, work), (up_s, work, rest), (pause_s, rest, rest)]


@dataclass(frozen=True)
class Noise:
    """What a real model adds: position jitter, score noise, dropped keypoints and whole lost frames."""

    position_px: float = 3.0
    score: float = 0.75
    score_sd: float = 0.08
    drop_keypoint: float = 0.05
    drop_frame: float = 0.0


def noisy(keypoints: np.ndarray, rng: np.random.Generator, noise: Noise) -> np.ndarray:
    """Add position noise, noisy scores and dropped keypoints (low score, position anywhere)."""
    out = keypoints.astype(np.float32).copy()
    out[:, :2] += rng.normal(0.0, noise.position_px, (17, 2))
    out[:, 2] = np.clip(rng.normal(noise.score, noise.score_sd, 17), 0.35, 0.99)
    dropped = rng.random(17) < noise.drop_keypoint
    out[dropped, 2] = rng.uniform(0.0, 0.15, int(dropped.sum()))
    out[dropped, :2] = rng.uniform(0, 1, (int(dropped.sum()), 2)) * (WIDTH, HEIGHT)
    if rng.random() < noise.drop_frame:
        out[:, 2] = rng.uniform(0.0, 0.12, 17)
    return out


def frames(
    pose_at: Callable[[float], np.ndarray], duration_s: float, seed: int = 0, noise: Noise | None = None,
    fps: float = FPS,
) -> Iterator[PoseResult]:  # fmt: skip
    """Yield PoseResults of ``pose_at(t)`` sampled at ``fps`` for ``duration_s``, with noise."""
    rng = np.random.default_rng(seed)
    noise = noise or Noise()
    for i in range(round(duration_s * fps)):
        t = i / fps
        kps = noisy(pose_at(t), rng, noise)
        yield PoseResult(frame=i, ts=T0 + t, width=WIDTH, height=HEIGHT, keypoints=kps)


def empty_keypoints(rng: np.random.Generator) -> np.ndarray:
    """What the model returns on an empty frame: low scores, positions anywhere."""
    out = np.zeros((17, 3), dtype=np.float32)
    out[:, :2] = rng.uniform(0, 1, (17, 2)) * (WIDTH, HEIGHT)
    out[:, 2] = rng.uniform(0.0, 0.15, 17)
    return out
