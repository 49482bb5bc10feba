"""Video clips built from the real stills: a person moving and zooming, with empty frames between."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

WIDTH, HEIGHT = 640, 480
BACKGROUND = (96, 112, 104)


@dataclass(frozen=True)
class Placement:
    """Where the person is pasted: scale and top-left offset, or ``None`` for an empty frame."""

    scale: float
    x: int
    y: int


def default_script() -> list[Placement | None]:
    """Person walks right (small), zooms in, vanishes for 8 frames, reappears elsewhere."""
    frames: list[Placement | None] = []
    frames += [Placement(0.55, 40 + 12 * i, 60) for i in range(16)]
    frames += [Placement(0.55 + 0.012 * i, 232 - 4 * i, 60 - 5 * i) for i in range(12)]
    frames += [None] * 8
    frames += [Placement(0.5, 400 - 6 * i, 140) for i in range(14)]
    return frames


def render(person: np.ndarray, placement: Placement | None) -> np.ndarray:
    """Compose one BGR frame."""
    frame = np.empty((HEIGHT, WIDTH, 3), dtype=np.uint8)
    frame[:] = BACKGROUND
    if placement is None:
        return frame
    h, w = person.shape[:2]
    size = (round(w * placement.scale), round(h * placement.scale))
    small = cv2.resize(person, size, interpolation=cv2.INTER_AREA)
    x0, y0 = placement.x, placement.y
    x1, y1 = min(WIDTH, x0 + size[0]), min(HEIGHT, y0 + size[1])
    frame[y0:y1, x0:x1] = small[: y1 - y0, : x1 - x0]
    return frame


def expected(truth: np.ndarray, placement: Placement) -> np.ndarray:
    """Truth keypoints mapped into the frame."""
    return truth * placement.scale + np.array([placement.x, placement.y], dtype=np.float64)


def write_clip(path: Path, person: np.ndarray, script: list[Placement | None], fps: float = 15.0) -> Path:
    """Write the clip as MJPG in an AVI (decodable by every OpenCV build)."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (WIDTH, HEIGHT))
    assert writer.isOpened(), "OpenCV cannot write MJPG/AVI here"
    for placement in script:
        writer.write(render(person, placement))
    writer.release()
    return path


def write_visit_clip(path: Path, person: np.ndarray, before: int, during: int, after: int) -> Path:
    """A small 320×240 MJPG clip: an empty room, ``person`` (BGR, scaled to 224 px tall) standing, the room again."""
    height = 224
    width = round(person.shape[1] * height / person.shape[0])
    small = cv2.resize(person, (width, height), interpolation=cv2.INTER_AREA)
    room = np.empty((240, 320, 3), dtype=np.uint8)
    room[:] = BACKGROUND
    visit = room.copy()
    x0 = (320 - small.shape[1]) // 2
    visit[8 : 8 + height, x0 : x0 + small.shape[1]] = small
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 15.0, (320, 240))
    assert writer.isOpened(), "OpenCV cannot write MJPG/AVI here"
    for frame in [room] * before + [visit] * during + [room] * after:
        writer.write(frame)
    writer.release()
    return path
