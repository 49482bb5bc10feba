"""OpenCV capture: USB/V4L2 cameras, RTSP/HTTP streams and video files."""

from __future__ import annotations

import logging
import math

import cv2
import numpy as np

from edgepose.config import SourceConfig
from edgepose.config.rendering import redact_url
from edgepose.errors import InputError, SourceError
from edgepose.sources.pixels import to_bgr

log = logging.getLogger(__name__)

#: Video files paced like a camera (``realtime``) with frames up to this size are decoded by one FFmpeg thread.
#: FFmpeg's own choice, a thread per core, hands frames between its threads, which costs more CPU than it gives
#: next to the model's threads (benchmarks/RESULTS.md, issue 22). Files read at full speed, and bigger frames,
#: keep FFmpeg's threads: there decoding may be what limits the rate (an EdgeTPU leaves the cores free).
ONE_DECODE_THREAD_MAX_PIXELS = 1280 * 720


class OpenCVSource:
    """A ``cv2.VideoCapture`` of a device index, device path, stream URL or video file.

    One object is one opening: a lost camera or stream is reopened by the capture thread with a fresh
    object (see :mod:`edgepose.pipeline.capture`), so the size, rate and buffer settings are applied again.
    """

    still = False

    def __init__(self, target: int | str, cfg: SourceConfig, live: bool) -> None:
        self._target = target
        self._cfg = cfg
        self._device = isinstance(target, int) or str(target).startswith("/dev/video")
        self._stream = live and not self._device and "://" in str(target)
        self.live = live
        self.name = f"camera {target}" if self._device else redact_url(str(target))  # no password in a log
        self._capture: cv2.VideoCapture | None = None
        self.fps = 0.0

    def open(self) -> None:
        """Open the capture; set size and rate on devices.

        Raises:
            InputError: A video file that cannot be decoded.
            SourceError: A camera or stream that cannot be opened.
        """
        capture = self._open_capture()
        if not capture.isOpened():
            capture.release()
            if self._device:
                raise SourceError(
                    f"cannot open {self.name}: check it is connected (ls /dev/video*) and the user is in the "
                    "'video' group"
                )
            if self.live:
                raise SourceError(f"cannot open {self.name}: check the URL, that the stream is reachable from here "
                                  "and its user and password")  # fmt: skip
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

    def _open_capture(self) -> cv2.VideoCapture:
        if self._device:
            return cv2.VideoCapture(self._target)
        if not self._stream:
            return open_video_file(str(self._target), one_thread=self._cfg.realtime)
        # FFmpeg's own open and read timeouts (30 s by default) bounded by the source timeout, so a silent
        # server ends the read; the capture thread's watchdog does not depend on it either way.
        timeout_ms = max(1000, round(self._cfg.timeout_s * 1000))
        params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, timeout_ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, timeout_ms]
        return cv2.VideoCapture(str(self._target), cv2.CAP_FFMPEG, params)

    def read(self) -> np.ndarray | None:
        """Return the next frame, or ``None`` at the end of a file or when a camera or stream stops."""
        assert self._capture is not None, "open() first"
        ok, frame = self._capture.read()
        return to_bgr(frame) if ok else None

    @property
    def position_s(self) -> float | None:
        """Seconds from the start of a video file to the frame read last (the container's timestamp).

        ``None`` for cameras and streams (their frames are timed at capture), and when the container gives no
        timestamp (the capture thread then counts frames at the file's rate).
        """
        if self.live or self._capture is None:
            return None
        msec = float(self._capture.get(cv2.CAP_PROP_POS_MSEC))
        return msec / 1000.0 if math.isfinite(msec) and msec > 0 else None

    def grab(self) -> bool:
        """Take the next frame from the device or stream without decoding it; ``False`` when it stops."""
        assert self._capture is not None, "open() first"
        return bool(self._capture.grab())

    def close(self) -> None:
        """Release the capture."""
        if self._capture is not None:
            self._capture.release()
            self._capture = None


def open_video_file(path: str, one_thread: bool) -> cv2.VideoCapture:
    """Open a video file with FFmpeg; with ``one_thread``, decoded by one thread unless its frames are big.

    See :data:`ONE_DECODE_THREAD_MAX_PIXELS`. Whatever FFmpeg cannot open is left to OpenCV's other backends (an
    image sequence, say), as before.
    """
    if not one_thread:
        return cv2.VideoCapture(path)
    capture = cv2.VideoCapture(path, cv2.CAP_FFMPEG, [cv2.CAP_PROP_N_THREADS, 1])
    if not capture.isOpened():
        capture.release()
        return cv2.VideoCapture(path)
    pixels = capture.get(cv2.CAP_PROP_FRAME_WIDTH) * capture.get(cv2.CAP_PROP_FRAME_HEIGHT)
    if pixels <= ONE_DECODE_THREAD_MAX_PIXELS:
        return capture
    capture.release()
    return cv2.VideoCapture(path, cv2.CAP_FFMPEG)
