"""The small exception hierarchy of edgepose.

Every error carries the process exit code it maps to and a message that says what
failed and what to do about it. The CLI prints ``edgepose: error: <message>``.
"""

from __future__ import annotations


class EdgePoseError(Exception):
    """Base class: a failure at run time (exit code 1)."""

    exit_code = 1


class ConfigError(EdgePoseError):
    """Bad usage, a bad flag value or an invalid config file (exit code 2)."""

    exit_code = 2


class InputError(EdgePoseError):
    """An input file that is missing or cannot be decoded (exit code 2)."""

    exit_code = 2


class ModelError(EdgePoseError):
    """A model that is missing, corrupt, of the wrong shape or for the wrong delegate (exit code 2)."""

    exit_code = 2


class BackendUnavailableError(EdgePoseError):
    """A requested runtime or delegate is not installed or not working (exit code 1)."""

    exit_code = 1


class SourceError(EdgePoseError):
    """A camera or stream that cannot be opened or stops delivering frames (exit code 1)."""

    exit_code = 1


class FrameError(SourceError):
    """One frame of a live source that could not be decoded; the next one may be fine (counted, then skipped)."""


class SinkError(EdgePoseError):
    """An output that failed for good, e.g. a full disk under ``--output`` (exit code 1)."""

    exit_code = 1


class OutputClosed(EdgePoseError):
    """Whoever read the results went away (``edgepose run | head``): the run ends quietly (exit code 0)."""

    exit_code = 0
