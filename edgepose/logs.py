"""Logging to stderr; with journald-friendly ``<N>`` priority prefixes when running under systemd."""

from __future__ import annotations

import logging
import os
import sys

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


def setup_logging(verbosity: int) -> None:
    """Configure the root logger.

    Args:
        verbosity: ``-1`` quiet (warnings and errors), ``0`` normal, ``1`` or more debug.
    """
    level = logging.WARNING if verbosity < 0 else logging.DEBUG if verbosity > 0 else logging.INFO
    handler = logging.StreamHandler(sys.stderr)
    if under_journald():
        handler.setFormatter(JournalFormatter("%(name)s: %(message)s"))
    else:
        handler.setFormatter(logging.Formatter("edgepose: %(levelname)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
