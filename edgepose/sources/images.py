"""Still image files and folders of them."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from edgepose.errors import InputError
from edgepose.sources.pixels import to_bgr

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".ppm", ".pgm"})


def load_image(path: Path) -> np.ndarray:
    """Decode an image file to BGR uint8 (alpha dropped).

    Raises:
        InputError: Missing, unreadable or not an image.
    """
    if not path.is_file():
        raise InputError(f"image not found: {path}")
    data = np.fromfile(str(path), dtype=np.uint8)
    image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if image is None:
        raise InputError(f"cannot decode {path}: not an image OpenCV can read (jpg, png, bmp, webp, tiff)")
    return to_bgr(image)


class ImageSource:
    """A fixed list of image files, read in order."""

    live = False
    still = True

    def __init__(self, paths: list[Path]) -> None:
        self._paths = paths
        self._next = 0
        self.name = str(paths[0]) if len(paths) == 1 else f"{len(paths)} images"
        self.current: Path | None = None

    @classmethod
    def from_folder(cls, folder: Path) -> ImageSource:
        """Collect the images of a folder, sorted by name.

        Raises:
            InputError: The folder holds no image files.
        """
        paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        if not paths:
            raise InputError(f"no images in {folder} (looked for {', '.join(sorted(IMAGE_SUFFIXES))})")
        source = cls(paths)
        source.name = f"{folder} ({len(paths)} images)"
        return source

    def open(self) -> None:
        """Nothing to open: files are decoded one at a time."""
        self._next = 0

    def read(self) -> np.ndarray | None:
        """Decode the next image, or return ``None`` after the last."""
        if self._next >= len(self._paths):
            return None
        self.current = self._paths[self._next]
        self._next += 1
        return load_image(self.current)

    def close(self) -> None:
        """Nothing to release."""
