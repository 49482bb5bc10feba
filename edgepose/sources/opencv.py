"""OpenCV capture: USB/V4L2 cameras, RTSP/HTTP streams and video files."""

from __future__ import annotations

import logging
import time

import cv2
import numpy as np

from edgepose.config import SourceConfig
from edgepose.errors import InputError, SourceError
from edgepose.sources.pixels import to_bgr

log = logging.getLogger(__name__)

#: Reconnect attempts for a live device or stream before giving up (systemd restarts us then).
RECONNECT_DELAYS_S = (0.5, 1.0, 2.0, 4.0, 8.0)


class OpenCVSource:
    """A ``cv2.VideoCapture`` of a device index, device path, stream URL or video file."""

    still = False

    def __init__(self, target: int | str, cfg: SourceConfig, live: bool) -> None:
        self._target = target
        self._cfg = cfg
        self._device = isinstance(target, int) or str(target).startswith("/dev/video")
        self._stream = live and not self._device and "://" in str(target)
        self.live = live
        self.name = f"camera {target}" if self._device else str(target)
        self._capture: cv2.VideoCapture | None = None
        self.fps = 0.0

    def open(self) -> None:
        """Open the capture; set size and rate on devices.

        Raises:
            InputError: A video file that cannot be decoded.
            SourceError: A camera or stream that cannot be opened.
        """
        capture = cv2.VideoCapture(self._target)
        if not capture.isOpened():
            capture.release()
            if self.live or self._device:
                raise SourceError(
                    f"cannot open {self.name}: check it is connected (ls /dev/video*), the URL is reachable, "
                    "and the user is in the 'video' group"
                )
            raise InputError(f"cannot open video {self._target}: not a video OpenCV can decode")
        if self._device:
            capture.set(cv2.CAP_PROP_FRAME_WIDTH, self._cfg.width)
            capture.set(cv2.CAP_PROP_FRAME_HEIGHT, self._cfg.height)
            capture.set(cv2.CAP_PROP_FPS, self._cfg.fps)
            capture.set(cv2.CAP_PROP_BUFFERSIZE, 1)
        self.fps = float(capture.get(cv2.CAP_PROP_FPS) or 0.0)
        self._capture = capture
        log.info("opened %s (%dx%d @ %.1f fps)", self.name, capture.get(cv2.CAP_PROP_FRAME_WIDTH),
                 capture.get(cv2.CAP_PROP_FRAME_HEIGHT), self.fps)  # fmt: skip

    def read(self) -> np.ndarray | None:
        """Return the next frame; reconnect a dropped camera or stream with backoff.

        Raises:
            SourceError: A live source that stays gone after all reconnect attempts.
        """
        assert self._capture is not None, "open() first"
        ok, frame = self._capture.read()
        if ok:
            return to_bgr(frame)
        if not (self.live or self._device):
            return None
        for delay in RECONNECT_DELAYS_S:
            log.warning("%s stopped delivering frames; reconnecting in %.1f s", self.name, delay)
            time.sleep(delay)
            self._capture.release()
            self._capture = cv2.VideoCapture(self._target)
            ok, frame = self._capture.read()
            if ok:
                log.info("%s is back", self.name)
                return to_bgr(frame)
        raise SourceError(f"{self.name} stopped delivering frames and did not come back")

    def close(self) -> None:
        """Release the capture."""
        if self._capture is not None:
            self._capture.release()
            self._capture = None
