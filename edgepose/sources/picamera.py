"""Raspberry Pi camera via picamera2: the only module that imports picamera2 (Pi only)."""

from __future__ import annotations

import importlib.util
from typing import Any

import numpy as np

from edgepose.config import SourceConfig
from edgepose.errors import BackendUnavailableError, SourceError

INSTALL_HINT = (
    "on Raspberry Pi OS: sudo apt install python3-picamera2 and create the venv with --system-site-packages "
    "(install.sh --system does this)"
)


def _picamera2_installed() -> bool:
    """Whether picamera2 can be found, without importing it (its import needs libcamera)."""
    try:
        return importlib.util.find_spec("picamera2") is not None
    except (ImportError, ValueError):
        return False


class PicameraSource:
    """A CSI camera through libcamera. Frames are ``RGB888``, which is BGR in memory, as OpenCV's."""

    live = True
    still = False

    def __init__(self, index: int, cfg: SourceConfig) -> None:
        if not _picamera2_installed():  # say so before a model is loaded, not from the capture thread
            raise BackendUnavailableError(f"picamera2 is not available; {INSTALL_HINT}")
        self._index = index
        self._cfg = cfg
        self._camera: Any = None
        self.name = f"picamera {index}"

    def open(self) -> None:
        """Start the camera.

        Raises:
            BackendUnavailableError: picamera2 is not installed (it comes from apt on Raspberry Pi OS).
            SourceError: No camera at that index, or it is busy.
        """
        try:
            from picamera2 import Picamera2
        except ImportError as exc:
            raise BackendUnavailableError(f"picamera2 is not available ({exc}); {INSTALL_HINT}") from exc
        try:
            camera = Picamera2(self._index)
            config = camera.create_video_configuration(
                main={"size": (self._cfg.width, self._cfg.height), "format": "RGB888"},
                controls={"FrameRate": self._cfg.fps},
                buffer_count=2,
            )
            camera.configure(config)
            camera.start()
        except (RuntimeError, IndexError, OSError) as exc:
            raise SourceError(f"cannot start {self.name}: {exc} (check the ribbon cable and rpicam-hello)") from exc
        self._camera = camera

    def read(self) -> np.ndarray:
        """Return the newest frame (blocks until the camera delivers one)."""
        frame: np.ndarray = self._camera.capture_array("main")
        return frame

    def close(self) -> None:
        """Stop and release the camera."""
        if self._camera is not None:
            self._camera.stop()
            self._camera.close()
            self._camera = None
