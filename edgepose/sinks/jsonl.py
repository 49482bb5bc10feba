"""JSON lines to stdout or a file, written by a thread of its own; a write that fails ends the run loudly."""

from __future__ import annotations

import errno
import json
import logging
import queue
import sys
import threading
import time
from pathlib import Path
from typing import TextIO

from edgepose.errors import ConfigError, EdgePoseError, OutputClosed, SinkError
from edgepose.pose import PoseResult

log = logging.getLogger(__name__)

_END = object()
#: Lines waiting for the writer at most.
QUEUE_SIZE = 10_000


class JsonlSink:
    """Writes ``PoseResult.to_dict()`` as one JSON object per line, flushed per line.

    A write that fails (a full disk, an unwritable file) is reported once at ERROR and sets
    :attr:`failure`, which ends the run with exit 1: results are never dropped silently. When the
    reader of stdout goes away (``| head``), the run ends quietly.

    Args:
        target: ``-`` for stdout, else a file path (appended to, so a restart loses nothing).
        lossless: Make the loop wait when the writer is :data:`QUEUE_SIZE` lines behind (files as
            sources); otherwise such lines are dropped and counted in :attr:`dropped` (live sources,
            where the loop must never wait on a slow disk).
    """

    def __init__(self, target: str, lossless: bool = True) -> None:
        self._target = target
        self._lossless = lossless
        self._queue: queue.Queue[object] = queue.Queue(maxsize=QUEUE_SIZE)
        self._thread = threading.Thread(target=self._write_all, name="edgepose-jsonl", daemon=True)
        self._stream: TextIO | None = None
        #: Set when writing failed for good; the loop ends the run with it.
        self.failure: EdgePoseError | None = None
        #: Lines dropped because the writer was too far behind.
        self.dropped = 0
        self.written = 0

    def start(self) -> None:
        """Open the output and start the writer.

        Raises:
            ConfigError: The output file cannot be opened.
        """
        if self._target == "-":
            self._stream = sys.stdout
        else:
            try:
                self._stream = Path(self._target).open("a", encoding="utf-8")  # noqa: SIM115 - closed in close()
            except OSError as exc:
                raise ConfigError(f"cannot write output file {self._target}: {exc.strerror}") from None
        self._thread.start()

    def publish(self, result: PoseResult) -> None:
        """Queue a result; see ``lossless`` for what happens when the writer is far behind."""
        if self.failure is not None:
            return
        if self._lossless:
            self._queue.put(result)
            return
        try:
            self._queue.put_nowait(result)
        except queue.Full:
            if self.dropped == 0:
                log.warning("%s: the writer is %d lines behind; dropping lines (counted)", self._name, QUEUE_SIZE)
            self.dropped += 1

    @property
    def _name(self) -> str:
        return "stdout" if self._target == "-" else self._target

    def _write_all(self) -> None:
        assert self._stream is not None
        while (item := self._queue.get()) is not _END:
            assert isinstance(item, PoseResult)
            if self.failure is not None:
                continue
            try:
                self._stream.write(json.dumps(item.to_dict()) + "\n")
                self._stream.flush()
                self.written += 1
            except OSError as exc:
                self._fail(exc)

    def _fail(self, exc: OSError) -> None:
        if exc.errno == errno.EPIPE and self._target == "-":
            self.failure = OutputClosed("stdout was closed")
            return
        self.failure = SinkError(
            f"cannot write results to {self._name}: {exc.strerror or exc} (after {self.written} lines; "
            "free space or fix the path, then restart)"
        )
        log.error("%s", self.failure)

    def close(self, timeout_s: float = 10.0) -> None:
        """Write everything queued (for at most ``timeout_s``), then close the file."""
        deadline = time.monotonic() + timeout_s
        if self._thread.is_alive():
            try:
                self._queue.put(_END, timeout=timeout_s)
            except queue.Full:
                log.warning("%s: %d lines were still queued at shutdown", self._name, self._queue.qsize())
            self._thread.join(max(0.0, deadline - time.monotonic()))
        if self._thread.is_alive():
            return  # the writer is stuck in the file system; the process exit ends it
        if self._stream is not None and self._stream is not sys.stdout:
            try:
                self._stream.close()
            except OSError as exc:  # the final flush of a full disk
                self._fail(exc)
