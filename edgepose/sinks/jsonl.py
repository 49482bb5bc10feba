"""JSON lines to stdout or a file: serialised in the loop, queued as bytes (bounded), written by a thread of its own.

A write that fails ends the run loudly; lines that could not be written by the end of the run are counted
and make the run fail.
"""

from __future__ import annotations

import collections
import errno
import json
import logging
import os
import sys
import threading
import time
from collections.abc import Callable

from edgepose.errors import ConfigError, EdgePoseError, OutputClosed, SinkError
from edgepose.health import OutputCounters
from edgepose.pose import PoseResult
from edgepose.sinks import SHUTDOWN_BUDGET_S

log = logging.getLogger(__name__)

#: Bytes of serialised lines waiting for the writer at most (a line of MoveNet is about 2.6 KB: some
#: 25 s at 30 fps; a crowd under PoseNet a few seconds). Only the lines are queued, never the frames.
QUEUE_BYTES = 2 * 1024 * 1024
#: Seconds between two warnings about lines dropped for a reader that does not keep up.
DROP_WARN_EVERY_S = 60.0
#: At shutdown, a writer that could write nothing for this long is given up on (a reader that stopped).
STALL_S = 2.0
#: How long close waits for a writer that still makes progress: within the shutdown budget, with a second left
#: for the run to see the count of what was not written.
CLOSE_S = SHUTDOWN_BUDGET_S - 1.0
#: How often a publish waiting for the writer (backpressure) checks the stop event.
WAIT_SLICE_S = 0.1
#: File descriptor 1: written to directly, past ``sys.stdout`` (whose lock a blocked write would hold at exit).
_STDOUT = 1


class JsonlSink:
    """Writes ``PoseResult.to_dict()`` as one JSON object per line, each written whole as soon as it can be.

    A write that fails (a full disk, an unwritable file) is reported once at ERROR and sets
    :attr:`failure`, which ends the run with exit 1. When the reader of stdout goes away (``| head``), the
    run ends quietly. Lines still unwritten at :meth:`close` are counted in an ERROR and set
    :attr:`failure` too: nothing accepted is lost without a word.

    Args:
        target: ``-`` for stdout, else a file path (appended to, so a restart loses nothing).
        lossless: When ``max_bytes`` of lines wait, make the loop wait for the writer (files as sources,
            nothing is lost); otherwise drop the line, count it and warn at most every
            :data:`DROP_WARN_EVERY_S` (live sources: the loop never waits on a reader).
        stop: The run's stop event: a publish waiting for the writer gives up when it is set.
        counters: Where the drops and the queued bytes are counted for the stats (a fresh one by default).
        max_bytes: The bound of the queue in bytes (one line is always taken, however long).
        clock: Monotonic seconds, for the drop warnings.
    """

    def __init__(
        self,
        target: str,
        lossless: bool = True,
        stop: threading.Event | None = None,
        counters: OutputCounters | None = None,
        max_bytes: int = QUEUE_BYTES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._target = target
        self._lossless = lossless
        self._stop = stop or threading.Event()
        self.counters = counters or OutputCounters()
        self._max_bytes = max_bytes
        self._clock = clock
        self._lines: collections.deque[bytes] = collections.deque()
        self._cond = threading.Condition()
        self._closing = False
        self._thread = threading.Thread(target=self._write_all, name="edgepose-jsonl", daemon=True)
        self._fd = -1
        #: Set when writing failed for good, or lines were left unwritten at close; the run ends with it.
        self.failure: EdgePoseError | None = None
        #: Lines queued, and lines written whole.
        self.accepted = 0
        self.written = 0
        #: Results not queued because the run was stopping while the loop waited for the writer.
        self.refused = 0
        self._warned_at: float | None = None
        self._dropped_at_warning = 0

    @property
    def dropped(self) -> int:
        """Lines dropped because the writer was ``max_bytes`` behind (live sources only)."""
        return self.counters.dropped

    def start(self) -> None:
        """Open the output and start the writer.

        Raises:
            ConfigError: The output file cannot be opened.
        """
        if self._target == "-":
            sys.stdout.flush()
            self._fd = _STDOUT
        else:
            try:
                self._fd = os.open(self._target, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o666)
            except OSError as exc:
                raise ConfigError(f"cannot write output file {self._target}: {exc.strerror}") from None
        self._thread.start()

    def publish(self, result: PoseResult) -> None:
        """Serialise a result and queue its line; see ``lossless`` for a writer ``max_bytes`` behind."""
        if self.failure is not None:
            return
        line = (json.dumps(result.to_dict()) + "\n").encode()
        with self._cond:
            while self._full(len(line)) and self.failure is None:
                if not self._lossless:
                    self._drop()
                    return
                if self._stop.is_set():
                    self.refused += 1  # reported at close with the lines still queued
                    return
                self._cond.wait(WAIT_SLICE_S)
            if self.failure is not None:
                return
            self._lines.append(line)
            self.accepted += 1
            self.counters.queued_bytes += len(line)
            self._cond.notify_all()

    @property
    def _name(self) -> str:
        return "stdout" if self._target == "-" else self._target

    def _full(self, size: int) -> bool:
        queued = self.counters.queued_bytes
        return queued > 0 and queued + size > self._max_bytes

    def _drop(self) -> None:
        counters = self.counters
        counters.dropped += 1
        now = self._clock()
        if self._warned_at is None or now - self._warned_at >= DROP_WARN_EVERY_S:
            log.warning("%s: the reader is not keeping up (%d KiB queued); lines dropped: %d (%d since the last "
                        "warning; counted as output.dropped; this warning repeats at most every %g s)", self._name,
                        counters.queued_bytes // 1024, counters.dropped, counters.dropped - self._dropped_at_warning,
                        DROP_WARN_EVERY_S)  # fmt: skip
            self._warned_at = now
            self._dropped_at_warning = counters.dropped

    def _write_all(self) -> None:
        while True:
            with self._cond:
                while not self._lines and not self._closing:
                    self._cond.wait()
                if not self._lines:
                    return
                line = self._lines[0]  # counted as queued until it is written whole
            try:
                self._write(line)
            except OSError as exc:
                self._fail(exc)
                return
            with self._cond:
                self._lines.popleft()
                self.written += 1
                self.counters.queued_bytes -= len(line)
                self._cond.notify_all()

    def _write(self, line: bytes) -> None:
        view = memoryview(line)
        while view:
            view = view[os.write(self._fd, view) :]

    def _fail(self, exc: OSError) -> None:
        if self.failure is not None:  # given up on at close already: that report stands
            return
        if exc.errno == errno.EPIPE and self._target == "-":
            failure: EdgePoseError = OutputClosed("stdout was closed")
        else:
            failure = SinkError(
                f"cannot write results to {self._name}: {exc.strerror or exc} (after {self.written} lines; "
                "free space or fix the path, then restart)"
            )
            log.error("%s", failure)
        with self._cond:
            self.failure = failure
            self._cond.notify_all()

    def unwritten(self) -> int:
        """Return how many results were accepted (or refused while stopping) and not written."""
        with self._cond:
            return self.accepted - self.written + self.refused

    def close(self, timeout_s: float = CLOSE_S) -> None:
        """Write what is queued, for at most ``timeout_s`` and while the writer makes progress, then close.

        A writer that wrote nothing for :data:`STALL_S` (a reader that stopped reading) is not waited for.
        What is left unwritten is logged at ERROR with its count and set as :attr:`failure`.
        """
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        now = time.monotonic()
        deadline, progress_at, written = now + timeout_s, now, self.written
        while self._thread.is_alive() and (now := time.monotonic()) < deadline:
            if self.written != written:
                progress_at, written = now, self.written
            elif now - progress_at >= STALL_S:
                break
            self._thread.join(min(WAIT_SLICE_S, deadline - now))
        self._report(stalled=self._thread.is_alive() and time.monotonic() < deadline)
        if self._fd >= 0 and self._target != "-" and not self._thread.is_alive():
            os.close(self._fd)  # a writer still stuck in the file system keeps it; the process exit ends it

    def _report(self, stalled: bool) -> None:
        if self.dropped:
            log.warning("%s: %d lines were dropped in all for a reader that did not keep up", self._name,
                        self.dropped)  # fmt: skip
        unwritten = self.unwritten()
        if not unwritten or self.failure is not None:  # a failed write is reported already; a closed stdout is quiet
            return
        why = f"nothing could be written for {STALL_S:g} s" if stalled else "the shutdown budget ran out"
        self.failure = SinkError(f"{unwritten} results were not written to {self._name} at shutdown ({why}; "
                                 f"{self.written} were)")  # fmt: skip
        log.error("%s", self.failure)
