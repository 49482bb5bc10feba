"""Video clips built from the real stills: a person moving and zooming, with empty frames between."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from stickfigure import segments, total

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


def in_room(person: np.ndarray | None) -> np.ndarray:
    """A 320×240 room with ``person`` (BGR, scaled to 224 px tall) standing in the middle, or empty for ``None``."""
    room = np.empty((240, 320, 3), dtype=np.uint8)
    room[:] = BACKGROUND
    if person is None:
        return room
    height = 224
    width = min(320, round(person.shape[1] * height / person.shape[0]))
    small = cv2.resize(person, (width, height), interpolation=cv2.INTER_AREA)
    x0 = (320 - width) // 2
    room[8 : 8 + height, x0 : x0 + width] = small
    return room


def write_visit_clip(path: Path, person: np.ndarray, before: int, during: int, after: int) -> Path:
    """A small 320×240 MJPG clip: an empty room, ``person`` (BGR, scaled to 224 px tall) standing, the room again."""
    room, visit = in_room(None), in_room(person)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 15.0, (320, 240))
    assert writer.isOpened(), "OpenCV cannot write MJPG/AVI here"
    for frame in [room] * before + [visit] * during + [room] * after:
        writer.write(frame)
    writer.release()
    return path


#: The fall clip: ``(seconds, from, to)`` pieces of the body's tilt in degrees (0 standing, 88 lying): stand,
#: topple in 0.6 s, lie, get up, stand; then the room stays empty for :data:`FALL_EMPTY_S`.
FALL_PLAN = ((2.0, 0.0, 0.0), (0.6, 0.0, 88.0), (2.6, 88.0, 88.0), (1.5, 88.0, 0.0), (1.2, 0.0, 0.0))
FALL_EMPTY_S = 2.8
FALL_SIZE = (320, 240)


def render_tilted(person_bgra: np.ndarray, tilt_deg: float | None) -> np.ndarray:
    """A 320×240 room with the person (BGRA, alpha as the mask) 190 px tall, turned ``tilt_deg`` about the feet."""
    room = np.empty((FALL_SIZE[1], FALL_SIZE[0], 3), dtype=np.uint8)
    room[:] = BACKGROUND
    if tilt_deg is None:
        return room
    h, w = person_bgra.shape[:2]
    feet = (w / 2, h * 0.97)  # in the photo
    turn = cv2.getRotationMatrix2D(feet, -tilt_deg, 190 / h)  # clockwise: she falls to the right
    turn[:, 2] += np.array([60.0, 205.0]) - feet  # her feet stay at (60, 205) in the room
    pixels = cv2.warpAffine(person_bgra[:, :, :3], turn, FALL_SIZE, flags=cv2.INTER_LINEAR)
    mask = cv2.warpAffine(person_bgra[:, :, 3], turn, FALL_SIZE, flags=cv2.INTER_NEAREST) >= 128
    room[mask] = pixels[mask]
    return room


def write_squats_clip(path: Path, standing: np.ndarray, squatting: np.ndarray, squats: int, fps: float = 15.0) -> Path:
    """A 320×240 MJPG clip of ``squats`` squats: 12 frames of the standing photo, 12 of the squatting one, each time."""
    stand, squat = in_room(standing), in_room(squatting)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (320, 240))
    assert writer.isOpened(), "OpenCV cannot write MJPG/AVI here"
    for frame in ([stand] * 12 + [squat] * 12) * squats:
        writer.write(frame)
    writer.release()
    return path


def write_fall_clip(path: Path, person_bgra: np.ndarray, fps: float = 15.0) -> Path:
    """Write :data:`FALL_PLAN` as a 320×240 MJPG clip: the person stands, falls, lies, gets up and leaves."""
    tilt = segments(*FALL_PLAN)
    shown = round(total(*FALL_PLAN) * fps)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, FALL_SIZE)
    assert writer.isOpened(), "OpenCV cannot write MJPG/AVI here"
    for i in range(shown + round(FALL_EMPTY_S * fps)):
        writer.write(render_tilted(person_bgra, tilt(i / fps) if i < shown else None))
    writer.release()
    return path


#: scikit-image's bundled sample photos of scenes without a person: walls, ground, a cat, a cup, a launch pad,
#: printed text, the moon (``skimage.data``; read from the package, no network).
EMPTY_SCENES = ("brick", "grass", "gravel", "chelsea", "coffee", "rocket", "text", "moon")


def scene(name: str, size: tuple[int, int] = (WIDTH, HEIGHT)) -> np.ndarray:
    """Return one of scikit-image's sample photos as BGR, scaled and cropped to fill ``size``."""
    import skimage.data

    image = np.asarray(getattr(skimage.data, name)())
    image = (
        cv2.cvtColor(image, cv2.COLOR_GRAY2BGR) if image.ndim == 2 else cv2.cvtColor(image[:, :, :3], cv2.COLOR_RGB2BGR)
    )
    h, w = image.shape[:2]
    s = max(size[0] / w, size[1] / h)
    image = cv2.resize(image, (round(w * s) + 1, round(h * s) + 1), interpolation=cv2.INTER_AREA)
    y0, x0 = (image.shape[0] - size[1]) // 2, (image.shape[1] - size[0]) // 2
    return np.ascontiguousarray(image[y0 : y0 + size[1], x0 : x0 + size[0]])


def camera(base: np.ndarray, index: int, rng: np.random.Generator) -> np.ndarray:
    """``base`` as a camera sees it on frame ``index``: a shake of up to 2 px, exposure drifting ±10, sensor noise."""
    h, w = base.shape[:2]
    shift = np.float32([[1, 0, 2 * np.sin(index / 7)], [0, 1, 2 * np.cos(index / 9)]])
    frame = cv2.warpAffine(base, shift, (w, h), borderMode=cv2.BORDER_REFLECT).astype(np.int16)
    frame += np.rint(rng.normal(0, 4, frame.shape) + 10 * np.sin(index / 10)).astype(np.int16)
    return np.clip(frame, 0, 255).astype(np.uint8)


def paste(frame: np.ndarray, person_bgra: np.ndarray, scale: float, x: int, y: int) -> np.ndarray:
    """Return ``frame`` with the person (BGRA, alpha as the mask) scaled and pasted at ``(x, y)`` (clipped)."""
    out = frame.copy()
    h, w = person_bgra.shape[:2]
    small = cv2.resize(person_bgra, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
    x0, y0 = max(x, 0), max(y, 0)
    x1, y1 = min(out.shape[1], x + small.shape[1]), min(out.shape[0], y + small.shape[0])
    if x1 <= x0 or y1 <= y0:
        return out
    part = small[y0 - y : y1 - y, x0 - x : x1 - x]
    mask = part[:, :, 3] >= 128
    out[y0:y1, x0:x1][mask] = part[:, :, :3][mask]
    return out


def write_frames(path: Path, frames: list[np.ndarray], fps: float = 15.0) -> Path:
    """Write BGR frames (all one size) as an MJPG clip."""
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (w, h))
    assert writer.isOpened(), "OpenCV cannot write MJPG/AVI here"
    for frame in frames:
        writer.write(frame)
    writer.release()
    return path
