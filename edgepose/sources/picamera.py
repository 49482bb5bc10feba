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


#: The low-resolution ``lores`` stream idle mode looks at (width, height): twice its 80×60 motion picture, so the
#: main stream is not touched while nobody is there (the way picamera2's own motion-capture example gates).
LORES_SIZE = (160, 120)


class PicameraSource:
    """A CSI camera through libcamera. Frames are ``RGB888``, which is BGR in memory, as OpenCV's.

    Besides the main stream it configures a small ``YUV420`` ``lores`` stream: :meth:`read_lores` returns its Y
    plane (grey) for idle mode's motion check, and :meth:`grab` waits for a frame without touching either.
    """

    live = True
    still = False

    def __init__(self, index: int, cfg: SourceConfig) -> None:
        if not _picamera2_installed():  # say so before a model is loaded, not from the capture thread
            raise BackendUnavailableError(f"picamera2 is not available; {INSTALL_HINT}")
        self._index = index
        self._cfg = cfg
        self._camera: Any = None
        self._lores = (*LORES_SIZE, LORES_SIZE[0])
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
                lores={"size": LORES_SIZE, "format": "YUV420"},
                controls={"FrameRate": self._cfg.fps},
                buffer_count=2,
            )
            camera.configure(config)
            lores = camera.stream_configuration("lores")
            camera.start()
        except (RuntimeError, IndexError, OSError) as exc:
            raise SourceError(f"cannot start {self.name}: {exc} (check the ribbon cable and rpicam-hello)") from exc
        self._camera = camera
        self._lores = (*lores["size"], int(lores["stride"]))

    def read(self) -> np.ndarray:
        """Return the newest frame (blocks until the camera delivers one)."""
        frame: np.ndarray = self._camera.capture_array("main")
        return frame

    def read_lores(self) -> np.ndarray:
        """Return the next frame's ``lores`` Y plane: a small grey picture; the main stream is not touched."""
        width, height, stride = self._lores
        buffer = self._camera.capture_buffer("lores")
        grey: np.ndarray = np.asarray(buffer, dtype=np.uint8)[: stride * height].reshape(height, stride)[:, :width]
        copy: np.ndarray = grey.copy()
        return copy

    def grab(self) -> bool:
        """Wait for the next frame and leave it (its metadata only): a frame idle mode will not look at."""
        self._camera.capture_metadata()
        return True

    def close(self) -> None:
        """Stop and release the camera."""
        if self._camera is not None:
            self._camera.stop()
            self._camera.close()
            self._camera = None
