"""A synthetic source for dry runs and benchmarks: no camera, no file, deterministic frames."""

from __future__ import annotations

import numpy as np

from edgepose.config import SourceConfig


class SyntheticSource:
    """Endless frames of the configured size: a grey gradient with a moving bright block.

    Args:
        cfg: Frame size (``width``, ``height``).
        empty: Leave the block out: a static, empty scene (idle-mode measurements).
    """

    live = False
    still = False

    def __init__(self, cfg: SourceConfig, empty: bool = False) -> None:
        self._empty = empty
        self._width = cfg.width
        self._height = cfg.height
        self.name = f"synthetic {cfg.width}x{cfg.height}{' empty' if empty else ''}"
        self._base = np.zeros((cfg.height, cfg.width, 3), dtype=np.uint8)
        self._count = 0

    def open(self) -> None:
        """Prepare the background gradient."""
        ramp = np.linspace(40, 200, self._width, dtype=np.uint8)
        self._base[:] = ramp[None, :, None]
        self._count = 0

    def read(self) -> np.ndarray:
        """Return the next frame."""
        frame: np.ndarray = self._base.copy()
        self._count += 1
        if self._empty:
            return frame
        side = max(8, min(self._width, self._height) // 4)
        x = (self._count * 7) % max(1, self._width - side)
        y = (self._count * 3) % max(1, self._height - side)
        frame[y : y + side, x : x + side] = (255, 220, 180)
        return frame

    def grab(self) -> bool:
        """Skip a frame without drawing it, as a camera's ``grab()`` skips decoding."""
        self._count += 1
        return True

    def close(self) -> None:
        """Nothing to release."""
