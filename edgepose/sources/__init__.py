"""Frame sources. Each satisfies :class:`edgepose.sources.base.Source`; :func:`open_source` picks one."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from edgepose.config import LIMITS, SourceConfig
from edgepose.errors import ConfigError, InputError
from edgepose.sources.base import Source
from edgepose.sources.images import IMAGE_SUFFIXES, ImageSource
from edgepose.sources.mjpeg import MjpegSource
from edgepose.sources.opencv import OpenCVSource
from edgepose.sources.synthetic import SyntheticSource

_STREAM_SCHEMES = ("rtsp://", "rtsps://", "http://", "https://", "udp://", "tcp://", "rtmp://")


def is_stream(spec: str) -> bool:
    """Whether a ``--source`` value names a network stream (RTSP, HTTP, ...) rather than a device or a file."""
    return spec.strip().lower().startswith(_STREAM_SCHEMES)


#: Schemes whose streams are looked at first: multipart MJPEG is read by :class:`MjpegSource`, the rest by OpenCV.
_HTTP_SCHEMES = ("http://", "https://")


#: Largest camera index accepted in ``picamera:N`` or a bare device number (V4L2 has 256 video minors).
MAX_CAMERA_INDEX = 255


def _camera_index(text: str, spec: str, form: str) -> int:
    """Parse a camera index (ASCII digits, at most :data:`MAX_CAMERA_INDEX`) or raise ConfigError."""
    if not re.fullmatch(r"[0-9]{1,6}", text) or int(text) > MAX_CAMERA_INDEX:
        raise ConfigError(f"camera index must be a number from 0 to {MAX_CAMERA_INDEX}, like {form}, not {spec!r}")
    return int(text)


def _picamera(spec: str, cfg: SourceConfig) -> Source:
    from edgepose.sources.picamera import PicameraSource

    _, _, index = spec.partition(":")
    return PicameraSource(_camera_index(index or "0", spec, "picamera:0"), cfg)


def _synthetic(spec: str, cfg: SourceConfig) -> Source:
    options = spec.split(":")[1:]
    empty = "empty" in options
    sizes = [option for option in options if option != "empty"]
    if sizes:
        match = re.fullmatch(r"([0-9]{1,6})x([0-9]{1,6})", sizes[0])
        limit = LIMITS[("source", "width")]
        if not match or len(sizes) > 1 or not (limit.accepts(int(match[1])) and limit.accepts(int(match[2]))):
            raise ConfigError(
                f"synthetic source must look like synthetic:640x480 or synthetic:640x480:empty, each side "
                f"{limit.describe()}, not {spec!r}"
            )
        cfg = SourceConfig(width=int(match[1]), height=int(match[2]), fps=cfg.fps)
    return SyntheticSource(cfg, empty=empty)


#: Sources named by a keyword, before paths and URLs are considered.
KEYWORD_SOURCES: dict[str, Callable[[str, SourceConfig], Source]] = {
    "picamera": _picamera,
    "synthetic": _synthetic,
}


def open_source(spec: str, cfg: SourceConfig) -> Source:
    """Build the source a ``--source`` value names.

    Accepted: ``picamera[:N]``; ``synthetic[:WxH]``; a device index or ``/dev/videoN``; an RTSP/HTTP
    URL (HTTP multipart MJPEG is read by :class:`MjpegSource`); a video file; an image file or a folder of images.

    Raises:
        ConfigError: No source given or a malformed one.
        InputError: A path that does not exist.
    """
    spec = spec.strip()
    if not spec:
        raise ConfigError("no source: pass --source (a camera index, /dev/videoN, picamera, a URL, a file or folder)")
    keyword = spec.split(":", 1)[0].lower()
    if keyword in KEYWORD_SOURCES:
        return KEYWORD_SOURCES[keyword](spec, cfg)
    if re.fullmatch(r"[0-9]+", spec):
        return OpenCVSource(_camera_index(spec, spec, "0"), cfg, live=True)
    if spec.startswith("/dev/video"):
        return OpenCVSource(spec, cfg, live=True)
    if spec.lower().startswith(_HTTP_SCHEMES):
        return MjpegSource(spec, cfg)
    if is_stream(spec):
        return OpenCVSource(spec, cfg, live=True)
    path = Path(spec).expanduser()
    if path.is_dir():
        return ImageSource.from_folder(path)
    if not path.exists():
        raise InputError(f"source not found: {spec} (a camera index, /dev/videoN, picamera, a URL, a file or folder)")
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return ImageSource([path])
    return OpenCVSource(str(path), cfg, live=False)  # --realtime paces a file; it never becomes live
