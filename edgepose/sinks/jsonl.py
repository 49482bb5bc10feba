"""JSON lines to stdout or a file, written by a thread of its own; nothing accepted is lost."""

from __future__ import annotations

import json
import queue
import sys
import threading
from pathlib import Path
from typing import TextIO

from edgepose.errors import ConfigError
from edgepose.pose import PoseResult

_END = object()


class JsonlSink:
    """Writes ``PoseResult.to_dict()`` as one JSON object per line, flushed per line.

    Args:
        target: ``-`` for stdout, else a file path (appended to, so a restart loses nothing).
    """

    def __init__(self, target: str) -> None:
        self._target = target
        self._queue: queue.Queue[object] = queue.Queue(maxsize=10_000)
        self._thread = threading.Thread(target=self._write_all, name="edgepose-jsonl", daemon=True)
        self._stream: TextIO | None = None
        self.error: OSError | None = None

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
        """Queue a result; waits only if the writer is 10,000 lines behind (never drops)."""
        self._queue.put(result)

    def _write_all(self) -> None:
        assert self._stream is not None
        while (item := self._queue.get()) is not _END:
            assert isinstance(item, PoseResult)
            if self.error is not None:
                continue
            try:
                self._stream.write(json.dumps(item.to_dict()) + "\n")
                self._stream.flush()
            except OSError as exc:  # a closed pipe (| head) or a full disk
                self.error = exc

    def close(self) -> None:
        """Write everything queued, then close the file."""
        if self._thread.is_alive():
            self._queue.put(_END)
            self._thread.join()
        if self._stream is not None and self._stream is not sys.stdout:
            self._stream.close()
