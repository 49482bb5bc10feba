"""The source protocol every frame source satisfies."""

from __future__ import annotations

from typing import Protocol

import numpy as np


class Source(Protocol):
    """A producer of BGR uint8 frames.

    Attributes:
        name: What the source is, for logs.
        live: A camera or stream: frames arrive in real time and the newest one wins.
        still: Independent still images: no tracking between frames, each through the estimator's still path.

    A source may also have ``fps`` (its own frame rate), ``grab()`` (take a frame without decoding it),
    ``read_lores()`` (the next frame as a small grey picture from a low-resolution stream, for idle mode's
    motion check, without touching the main stream) and ``position_s`` (a file's timestamp of the frame read
    last, in seconds, or ``None``), which the capture thread uses when present.
    """

    name: str
    live: bool
    still: bool

    def open(self) -> None:
        """Open the device, stream or file; raise a :class:`~edgepose.errors.EdgePoseError` if it fails."""

    def read(self) -> np.ndarray | None:
        """Return the next BGR frame, or ``None`` at the end of a finite source."""

    def close(self) -> None:
        """Release the device, stream or file."""
