"""Frame sources. Each satisfies :class:`edgepose.sources.base.Source`; :func:`open_source` picks one."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from edgepose.config import SourceConfig
from edgepose.errors import ConfigError, InputError
from edgepose.sources.base import Source
from edgepose.sources.images import IMAGE_SUFFIXES, ImageSource
from edgepose.sources.opencv import OpenCVSource
from edgepose.sources.synthetic import SyntheticSource

_STREAM_SCHEMES = ("rtsp://", "rtsps://", "http://", "https://", "udp://", "tcp://", "rtmp://")


def _picamera(spec: str, cfg: SourceConfig) -> Source:
    from edgepose.sources.picamera import PicameraSource

    _, _, index = spec.partition(":")
    return PicameraSource(int(index or 0), cfg)


def _synthetic(spec: str, cfg: SourceConfig) -> Source:
    options = spec.split(":")[1:]
    empty = "empty" in options
    sizes = [option for option in options if option != "empty"]
    if sizes:
        match = re.fullmatch(r"(\d+)x(\d+)", sizes[0])
        if not match or len(sizes) > 1:
            raise ConfigError(
                f"synthetic source must look like synthetic:640x480 or synthetic:640x480:empty, not {spec!r}"
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
    URL; a video file; an image file or a folder of images.

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
    if spec.isdigit():
        return OpenCVSource(int(spec), cfg, live=True)
    if spec.startswith("/dev/video"):
        return OpenCVSource(spec, cfg, live=True)
    if spec.lower().startswith(_STREAM_SCHEMES):
        return OpenCVSource(spec, cfg, live=True)
    path = Path(spec).expanduser()
    if path.is_dir():
        return ImageSource.from_folder(path)
    if not path.exists():
        raise InputError(f"source not found: {spec} (a camera index, /dev/videoN, picamera, a URL, a file or folder)")
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return ImageSource([path])
    return OpenCVSource(str(path), cfg, live=False)  # --realtime paces a file; it never becomes live
