"""The supervised inference worker's child process handle: spawn it, request and reply, kill and reap it.

A :class:`WorkerChild` is one ``python -m edgepose.inference.worker.child`` started from a
:class:`WorkerSpec`, with the shared-memory descriptor passed in and one ASCII line per request and reply
on its stdin/stdout (the protocol is described in :mod:`.child`). Anything that goes wrong with the
child (it dies, hangs, or answers nonsense) is raised as :class:`WorkerFailure` saying how.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import select
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from edgepose.config.schema import ModelConfig
from edgepose.errors import BackendUnavailableError, EdgePoseError, ModelError
from edgepose.inference.runtime.interpreters import DelegateAbsentError

#: Start-up errors reported by the child, by kind.
START_ERRORS: dict[str, type[EdgePoseError]] = {
    "absent": DelegateAbsentError,
    "unavailable": BackendUnavailableError,
    "model": ModelError,
}
#: While a stop event is given, waits for the child look at it this often (the stop is honoured this fast).
STOP_POLL_S = 0.1
#: How long a child told to exit (end of its stdin) may take before it is killed.
STOP_GRACE_S = 2.0


@dataclass(frozen=True)
class WorkerSpec:
    """The interpreter the child runs.

    Attributes:
        runtime: Runtime import name (``ai_edge_litert``, ``tflite_runtime``).
        model: Model file.
        delegate: ``edgetpu`` in production; ``xnnpack`` or ``cpu`` where no EdgeTPU exists (tests, benchmarks).
        threads: CPU threads (ignored for the EdgeTPU).
        library: The libedgetpu to load.
        test_abort_at: Test-only fault injection: request numbers (every invoke request sent, retries
            included, counted from 1 across restarts) on which the child calls ``os.abort()``.
        test_hang_at: Test-only: request numbers on which the child hangs forever.
    """

    runtime: str
    model: Path
    delegate: str = "edgetpu"
    threads: int = 1
    library: str = ModelConfig.edgetpu_library
    test_abort_at: frozenset[int] = field(default_factory=frozenset)
    test_hang_at: frozenset[int] = field(default_factory=frozenset)

    def command(self, fd: int) -> list[str]:
        """Return the child's command line, with the shared-memory descriptor ``fd``."""
        cmd = [
            sys.executable, "-m", "edgepose.inference.worker.child", "--fd", str(fd), "--runtime", self.runtime,
            "--model", str(self.model), "--delegate", self.delegate, "--threads", str(self.threads),
            "--library", self.library,
        ]  # fmt: skip
        for flag, seqs in (("--test-abort-at", self.test_abort_at), ("--test-hang-at", self.test_hang_at)):
            if seqs:
                cmd += [flag, ",".join(str(s) for s in sorted(seqs))]
        return cmd


class WorkerFailure(Exception):
    """The child died, hung or failed; the message says how."""


def _exit_reason(code: int | None) -> str:
    if code is None:
        return "did not exit"
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with status {code}"


class WorkerChild:
    """One child process and its line-based pipes."""

    def __init__(self, spec: WorkerSpec, fd: int) -> None:
        self.proc = subprocess.Popen(
            spec.command(fd), stdin=subprocess.PIPE, stdout=subprocess.PIPE, pass_fds=(fd,), bufsize=0
        )
        self._pending = b""
        assert self.proc.stdout is not None
        self._poller = select.poll()  # not select(): a long-running service may hold descriptors above 1023
        self._poller.register(self.proc.stdout.fileno(), select.POLLIN)

    @property
    def pid(self) -> int:
        """The child's process id."""
        return self.proc.pid

    def hello(self, timeout: float, stop: threading.Event | None = None) -> dict[str, Any]:
        """Wait for the child's start-up line and return its hello (tensor details, shared-memory layout).

        Raises:
            WorkerFailure: The child died, hung, sent something else than its tensor details, or ``stop``
                was set while it had not answered.
            EdgePoseError: The child reported why it could not start (:data:`START_ERRORS`).
        """
        line = self.read_line(timeout, "start-up", stop)
        kind, _, rest = line.partition(" ")
        if kind == "X":
            self.died()
            error, _, reason = rest.partition(" ")
            raise START_ERRORS.get(error, BackendUnavailableError)(reason)
        if kind != "R":
            self.kill()
            raise WorkerFailure(f"sent {line[:80]!r} instead of its tensor details")
        hello: dict[str, Any] = json.loads(rest)
        return hello

    def invoke(self, seq: int, timeout: float, stop: threading.Event | None = None) -> None:
        """Ask the child to run invoke request ``seq`` and wait for its answer; kill it on a wrong one.

        Raises:
            WorkerFailure: The child died, hung, failed to invoke, answered something else, or ``stop`` was
                set while it had not answered.
        """
        self.send(f"I {seq}")
        line = self.read_line(timeout, f"invoke {seq}", stop)
        kind, _, rest = line.partition(" ")
        if kind == "D" and rest == str(seq):
            return
        self.kill()
        if kind == "E":
            raise WorkerFailure(f"failed to invoke: {rest.partition(' ')[2]}")
        raise WorkerFailure(f"answered {line[:80]!r} to invoke {seq}")

    def send(self, line: str) -> None:
        """Send one line to the child; raise :class:`WorkerFailure` if it is gone."""
        stdin: IO[bytes] | None = self.proc.stdin
        assert stdin is not None
        try:
            stdin.write(line.encode() + b"\n")
            stdin.flush()
        except (BrokenPipeError, ValueError, OSError):
            raise WorkerFailure(self.died()) from None

    def read_line(self, timeout: float, waiting_for: str, stop: threading.Event | None = None) -> str:
        """Return the child's next line.

        Raises:
            WorkerFailure: The child died, stayed silent for ``timeout`` s, or ``stop`` was set while it was
                silent (it is killed then).
        """
        stdout = self.proc.stdout
        assert stdout is not None
        deadline = time.monotonic() + timeout
        while b"\n" not in self._pending:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.kill()
                raise WorkerFailure(f"hung: no answer to {waiting_for} within {timeout:.3g} s (killed)")
            if stop is not None:
                if stop.is_set():
                    self.kill()
                    raise WorkerFailure(f"was stopped waiting for {waiting_for}: the run is stopping (killed)")
                remaining = min(remaining, STOP_POLL_S)
            try:
                ready = self._poller.poll(max(1, math.ceil(remaining * 1e3)))
                chunk = os.read(stdout.fileno(), 65536) if ready else None
            except (OSError, ValueError):  # the pipe was closed under us (close() from another thread)
                raise WorkerFailure(self.died()) from None
            if chunk is None:
                continue
            if not chunk:
                raise WorkerFailure(self.died())
            self._pending += chunk
        line, _, self._pending = self._pending.partition(b"\n")
        return line.decode(errors="replace")

    def died(self) -> str:
        """Reap the dead (or dying) child and say how it ended."""
        try:
            code = self.proc.wait(timeout=2.0)
        except subprocess.TimeoutExpired:
            self.kill()
            code = self.proc.returncode
        return _exit_reason(code)

    def kill(self) -> None:
        """Kill and reap the child, and close its pipes."""
        if self.proc.returncode is None:
            self.proc.kill()
            self.proc.wait()
        self._close_pipes()

    def stop(self, grace_s: float = STOP_GRACE_S) -> None:
        """Ask the child to exit (end of its stdin), kill it if it does not, reap it."""
        self._close_pipes()
        try:
            self.proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            self.kill()

    def _close_pipes(self) -> None:
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()
