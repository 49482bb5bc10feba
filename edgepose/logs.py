"""Logging to stderr; with journald-friendly ``<N>`` priority prefixes when running under systemd."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
from collections.abc import Iterator

#: syslog priorities journald reads from a ``<N>`` line prefix.
_PRIORITY = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4, logging.ERROR: 3, logging.CRITICAL: 2}


class JournalFormatter(logging.Formatter):
    """Prefix each line with ``<N>`` so journald records the level."""

    def format(self, record: logging.LogRecord) -> str:
        """Format with the syslog priority prefix."""
        return f"<{_PRIORITY.get(record.levelno, 6)}>{super().format(record)}"


def under_journald() -> bool:
    """Return whether stderr is connected to the journal (systemd sets ``JOURNAL_STREAM``)."""
    stream = os.environ.get("JOURNAL_STREAM", "")
    if not stream:
        return False
    try:
        st = os.fstat(sys.stderr.fileno())
    except (OSError, ValueError):
        return False
    return stream == f"{st.st_dev}:{st.st_ino}"


def journal_prefix(priority: int) -> str:
    """Return ``<priority>`` for a line printed straight to stderr when it goes to the journal, else ``""``."""
    return f"<{priority}>" if under_journald() else ""


def error_line(message: object) -> str:
    """Return the one line a failed command prints on stderr: ``edgepose: error: <message>``."""
    return f"{journal_prefix(3)}edgepose: error: {message}"


#: Whether the native libraries' own stderr lines (OpenCV, the TFLite runtime) are kept out of stderr.
_native_quiet = True


def setup_logging(verbosity: int) -> None:
    """Configure the root logger, and OpenCV's and the TFLite runtime's own output.

    Args:
        verbosity: ``-1`` quiet (warnings and errors), ``0`` normal, ``1`` or more debug. Below ``1``,
            OpenCV's and FFmpeg's logs and the runtime's native stderr lines are silenced.
    """
    global _native_quiet
    _native_quiet = verbosity < 1
    _set_opencv_log_level(silent=_native_quiet)
    level = logging.WARNING if verbosity < 0 else logging.DEBUG if verbosity > 0 else logging.INFO
    handler = logging.StreamHandler(sys.stderr)
    if under_journald():
        handler.setFormatter(JournalFormatter("%(name)s: %(message)s"))
    else:
        handler.setFormatter(logging.Formatter("edgepose: %(levelname)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


#: FFmpeg's log level inside OpenCV (AV_LOG_QUIET), read by OpenCV when it first opens a stream or video with it.
_FFMPEG_QUIET = ("OPENCV_FFMPEG_LOGLEVEL", "-8")


def _set_opencv_log_level(silent: bool) -> None:
    """Silence OpenCV's own log lines and FFmpeg's inside it, or let them through.

    OpenCV's are like ``[ WARN:0@…] global cap_v4l.cpp …``, FFmpeg's like ``[mjpeg @ 0x…] unable to decode
    APP fields``. An FFmpeg log level set by the user (``OPENCV_FFMPEG_LOGLEVEL``) is kept.
    """
    if silent:
        os.environ.setdefault(*_FFMPEG_QUIET)
    import cv2

    utils_logging = getattr(getattr(cv2, "utils", None), "logging", None)
    if utils_logging is not None:
        utils_logging.setLogLevel(utils_logging.LOG_LEVEL_SILENT if silent else utils_logging.LOG_LEVEL_WARNING)
    elif hasattr(cv2, "setLogLevel"):  # older wheels: the level numbers are the same (0 silent, 3 warning)
        cv2.setLogLevel(0 if silent else 3)


@contextlib.contextmanager
def native_stderr_silenced() -> Iterator[None]:
    """Send file descriptor 2 to ``/dev/null`` for the duration, unless ``-v`` was given or other threads run.

    For C++ code that prints straight to stderr (the TFLite runtime's "Created TensorFlow Lite XNNPACK
    delegate" line) while edgepose starts. Redirecting the descriptor affects the whole process, so
    once another thread runs (the capture thread, a sink: e.g. when a failing EdgeTPU worker hands
    over to an in-process interpreter mid-run) nothing is silenced: their log lines must not be lost,
    and the runtime's line then shows once.
    """
    if not _native_quiet or threading.active_count() > 1:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
