"""Keeping snapshots as JPEG files in a folder, capped by count and size, the oldest removed first.

Only files named as :func:`file_name` names them are counted or removed: anything else in the folder is
left alone. A file is written under a temporary name and renamed, so a full disk leaves no half picture.
Writing fails softly: the first failure of a run of failures is one WARNING (the rest are counted), the
first success after it one INFO line; nothing is raised.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import time
from pathlib import Path

log = logging.getLogger(__name__)

#: The names :func:`file_name` gives: UTC time to the millisecond, frame number, reason.
NAME = re.compile(r"^\d{8}T\d{6}\.\d{3}Z-f\d+-[a-z_]+\.jpg$")


def file_name(ts: float, frame: int, reason: str) -> str:
    """Return a snapshot's file name, e.g. ``20260115T101502.250Z-f123-fall.jpg`` (sorts by time).

    Args:
        ts: The frame's capture time, unix seconds.
        frame: The frame's number.
        reason: Why it was taken (``fall``, ``long_lie``, ``request``).
    """
    millis = int(ts * 1000) % 1000
    return f"{time.strftime('%Y%m%dT%H%M%S', time.gmtime(ts))}.{millis:03d}Z-f{frame}-{reason}.jpg"


class SnapshotFolder:
    """Writes snapshots into one folder and keeps it within ``max_files`` and ``max_bytes``.

    Args:
        path: The folder (created when missing).
        max_files: Most snapshot files kept.
        max_bytes: Most bytes of snapshot files kept; the newest file stays even when it alone is larger.

    Attributes:
        saved: Files written.
        removed: Old files removed to stay within the caps.
        errors: Snapshots that could not be written.
    """

    def __init__(self, path: Path, max_files: int, max_bytes: int) -> None:
        self.path = path
        self._max_files = max_files
        self._max_bytes = max_bytes
        self._failing = False
        self.saved = 0
        self.removed = 0
        self.errors = 0

    def save(self, jpeg: bytes, name: str) -> Path | None:
        """Write ``jpeg`` as ``name``, then remove the oldest snapshots beyond the caps.

        Returns:
            The file written, or ``None`` when it could not be (logged, counted in :attr:`errors`).
        """
        target = self.path / name
        part = self.path / f".{name}.part"
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            try:
                part.write_bytes(jpeg)
                os.replace(part, target)
            except BaseException:
                with contextlib.suppress(OSError):
                    part.unlink()
                raise
            self._prune(keep=name)
        except OSError as exc:
            self.errors += 1
            if not self._failing:
                log.warning("snapshot: cannot keep snapshots in %s (%s); they still go to MQTT and the preview, "
                            "each next one is tried again", self.path, exc.strerror or exc)  # fmt: skip
            self._failing = True
            return None
        if self._failing:
            log.info("snapshot: keeping snapshots in %s again after %d failure(s)", self.path, self.errors)
        self._failing = False
        self.saved += 1
        return target

    def _prune(self, keep: str) -> None:
        """Remove the oldest snapshot files until both caps hold; ``keep`` (the newest) always stays."""
        with os.scandir(self.path) as entries:
            files = sorted((e.name, e.stat().st_size) for e in entries if NAME.match(e.name) and e.is_file())
        count, total = len(files), sum(size for _, size in files)
        for name, size in files:
            if count <= self._max_files and total <= self._max_bytes:
                break
            if name == keep:
                continue
            with contextlib.suppress(FileNotFoundError):
                (self.path / name).unlink()
                self.removed += 1
            count, total = count - 1, total - size
