"""Reading back the JSON objects ``edgepose run`` prints, as :class:`PoseResult`s for the analytics."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

from edgepose.errors import InputError
from edgepose.pose import KEYPOINT_INDEX, KEYPOINT_NAMES, Pose, PoseResult


def _number(obj: dict[str, Any], key: str, where: str) -> float:
    """Return ``obj[key]`` as a finite number, or raise :class:`InputError`."""
    if key not in obj:
        raise InputError(f"{where}: missing {key!r}")
    value = obj[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InputError(f"{where}: {key!r} must be a finite number, not {value!r}")
    return float(value)


def _size(obj: dict[str, Any], key: str, where: str) -> int:
    """Return ``obj[key]`` as a positive whole number, or raise :class:`InputError`."""
    value = _number(obj, key, where)
    if value <= 0 or value != int(value):
        raise InputError(f"{where}: {key!r} must be a positive whole number, not {obj[key]!r}")
    return int(value)


def parse_line(line: str, where: str) -> dict[str, Any]:
    """Decode one line into a JSON object, or raise :class:`InputError` naming ``where``."""
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as exc:
        raise InputError(f"{where}: not JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(obj, dict):
        raise InputError(f"{where}: not a pose object (a JSON object with ts, width, height and keypoints)")
    return obj


def _keypoints(raw: Any, where: str) -> np.ndarray:
    """Return a ``keypoints`` list (17 objects with ``name``, ``x``, ``y`` and ``score``) as ``(17, 3)``."""
    if not isinstance(raw, list) or len(raw) != len(KEYPOINT_NAMES):
        got = f"{len(raw)} entries" if isinstance(raw, list) else repr(raw)[:40]
        raise InputError(f"{where}: 'keypoints' must be a list of {len(KEYPOINT_NAMES)} keypoints, not {got}")
    keypoints = np.zeros((len(KEYPOINT_NAMES), 3), dtype=np.float32)
    seen: set[str] = set()
    for i, item in enumerate(raw):
        if not isinstance(item, dict):
            raise InputError(f"{where}: keypoint {i} is not an object with name, x, y and score")
        name = item.get("name")
        if name not in KEYPOINT_INDEX or name in seen:
            raise InputError(f"{where}: keypoint {i} has an unknown or repeated name {name!r}")
        seen.add(name)
        here = f"{where}: keypoint {name!r}"
        keypoints[KEYPOINT_INDEX[name]] = (_number(item, "x", here), _number(item, "y", here),
                                           _number(item, "score", here))  # fmt: skip
    return keypoints


def _poses(raw: Any, where: str) -> tuple[Pose, ...]:
    """Return a ``poses`` list (objects with ``score`` and ``keypoints``; ``box`` and ``id`` are ignored)."""
    if not isinstance(raw, list):
        raise InputError(f"{where}: 'poses' must be a list of objects with score and keypoints, not {repr(raw)[:40]}")
    poses = []
    for i, item in enumerate(raw):
        here = f"{where}: pose {i + 1}"
        if not isinstance(item, dict):
            raise InputError(f"{here} is not an object with score and keypoints")
        keypoints = _keypoints(item.get("keypoints"), here)
        score = _number(item, "score", here) if "score" in item else float(keypoints[:, 2].mean())
        poses.append(Pose.from_keypoints(keypoints, score=score))
    return tuple(poses)


def pose_result(obj: dict[str, Any], where: str, frame: int = 0) -> PoseResult:
    """Build the :class:`PoseResult` of one ``edgepose run`` object.

    Args:
        obj: The decoded object: ``ts``, ``width``, ``height``, and ``poses`` (a list of objects with
            ``score`` and ``keypoints``: several people) or ``keypoints`` alone (one person; 17 objects with
            ``name``, ``x``, ``y`` and ``score``); optionally ``media_s`` (the media time the analytics are
            timed by; ``ts`` when absent, as in recordings made before it existed), ``frame`` and ``score``
            (the best pose's score; the mean keypoint score when absent). With ``poses``, the top-level
            ``keypoints`` and ``score`` (the best pose's, as ``run`` prints them) are checked when present
            but the people are the ``poses``.
        where: Where the object came from, for error messages (e.g. ``"line 12"``).
        frame: Frame number to use when the object has none.

    Raises:
        InputError: A missing or invalid field, named in the message.
    """
    ts = _number(obj, "ts", where)
    media_s = _number(obj, "media_s", where) if "media_s" in obj else None
    width, height = _size(obj, "width", where), _size(obj, "height", where)
    poses = _poses(obj["poses"], where) if "poses" in obj else None
    if poses is None or "keypoints" in obj:
        keypoints = _keypoints(obj.get("keypoints"), where)
    else:
        keypoints = poses[0].keypoints if poses else np.zeros((len(KEYPOINT_NAMES), 3), dtype=np.float32)
    if "frame" in obj:
        number = _number(obj, "frame", where)
        if number < 0 or number != int(number):
            raise InputError(f"{where}: 'frame' must be a whole number >= 0, not {obj['frame']!r}")
        frame = int(number)
    score = _number(obj, "score", where) if "score" in obj else float(keypoints[:, 2].mean())
    if poses is None:
        poses = (Pose.from_keypoints(keypoints, score=score),)
    return PoseResult(frame=frame, ts=ts, width=width, height=height, keypoints=keypoints, poses=poses,
                      media_s=media_s)  # fmt: skip
