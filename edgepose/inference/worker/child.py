"""The supervised inference worker's child process: one interpreter, fed through shared memory.

Started by :class:`edgepose.inference.worker.facade.WorkerBackend` as ``python -m edgepose.inference.worker.child``.
The parent passes an anonymous shared-memory file (``memfd``) by descriptor; the child sizes it for the
model's tensors and answers on stdout. Protocol, one ASCII line per message:

* child → parent at start: ``R <json>`` (tensor details and the shared-memory layout), or
  ``X <kind> <reason>`` (``kind``: ``absent``, ``unavailable`` or ``model``) and exit;
* parent → child: ``I <seq>`` (inputs are in shared memory: invoke); child → parent: ``D <seq>`` (outputs
  are in shared memory), or ``E <seq> <reason>`` and exit;
* end of stdin (or ``Q``): exit. A watchdog thread also exits when the parent is gone.

A libedgetpu abort, a segfault or a hang kills or stalls only this process; the parent restarts it.
"""

from __future__ import annotations

import argparse
import json
import math
import mmap
import os
import resource
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

#: Offsets of tensors in shared memory are multiples of this (a cache line).
ALIGN = 64
#: How often the child checks that its parent is still alive.
PARENT_POLL_S = 1.0


def layout(details: list[dict[str, Any]], start: int) -> tuple[list[int], int]:
    """Place tensors one after another from ``start``, each at an :data:`ALIGN`-aligned offset.

    Args:
        details: Interpreter tensor details (``shape``, ``dtype``).
        start: First free byte.

    Returns:
        Each tensor's offset, and the first free byte after the last one.
    """
    offsets = []
    end = start
    for detail in details:
        end = -(-end // ALIGN) * ALIGN
        offsets.append(end)
        end += math.prod(int(d) for d in detail["shape"]) * np.dtype(detail["dtype"]).itemsize
    return offsets, end


def details_to_json(detail: dict[str, Any]) -> dict[str, Any]:
    """Return an interpreter tensor detail as plain JSON data (the parent rebuilds it: ``details_from_json``)."""
    params = detail.get("quantization_parameters") or {}
    return {
        "name": str(detail["name"]),
        "index": int(detail["index"]),
        "shape": [int(d) for d in detail["shape"]],
        "shape_signature": [int(d) for d in detail.get("shape_signature", detail["shape"])],
        "dtype": np.dtype(detail["dtype"]).str,
        "quantization": [float(detail["quantization"][0]), int(detail["quantization"][1])],
        "quantization_parameters": {
            "scales": [float(s) for s in params.get("scales", [])],
            "zero_points": [int(z) for z in params.get("zero_points", [])],
            "quantized_dimension": int(params.get("quantized_dimension", 0)),
        },
    }


def _views(buffer: mmap.mmap, details: list[dict[str, Any]], offsets: list[int]) -> list[np.ndarray]:
    return [
        np.ndarray(tuple(int(d) for d in det["shape"]), dtype=det["dtype"], buffer=buffer, offset=off)
        for det, off in zip(details, offsets, strict=True)
    ]


def _send(out: BinaryIO, line: str) -> None:
    out.write(line.replace("\n", " ").encode() + b"\n")
    out.flush()


def _exit_when_orphaned(parent: int) -> None:
    """Exit when the parent is gone, even while the main thread hangs in ``invoke``."""
    while True:
        time.sleep(PARENT_POLL_S)
        if os.getppid() != parent:
            os._exit(0)


def _parse_seqs(text: str) -> frozenset[int]:
    return frozenset(int(part) for part in text.split(",") if part.strip())


def _open(args: argparse.Namespace) -> Any:
    """Create the interpreter the parent asked for (raises EdgePoseError subclasses)."""
    from edgepose.inference.runtime.interpreters import load_edgetpu_delegate, make_interpreter
    from edgepose.inference.runtime.runtimes import find_runtime

    runtime = find_runtime(args.runtime)
    delegate = load_edgetpu_delegate(runtime, args.library) if args.delegate == "edgetpu" else None
    return runtime, make_interpreter(runtime, args.model, args.delegate, args.threads, delegate)


def _start_error_kind(exc: BaseException) -> str:
    from edgepose.errors import ModelError
    from edgepose.inference.runtime.interpreters import DelegateAbsentError

    if isinstance(exc, DelegateAbsentError):
        return "absent"
    return "model" if isinstance(exc, ModelError) else "unavailable"


def main(argv: list[str] | None = None) -> int:
    """Serve invoke requests from the parent until stdin ends."""
    parser = argparse.ArgumentParser(prog="edgepose-worker")
    parser.add_argument("--fd", required=True, type=int, help="the shared-memory file descriptor")
    parser.add_argument("--runtime", required=True)
    parser.add_argument("--model", required=True, type=Path)
    parser.add_argument("--delegate", required=True, choices=("edgetpu", "xnnpack", "cpu"))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--library", required=True, help="the libedgetpu to load (the parent always names it)")
    # Test-only fault injection: request numbers (every invoke request the parent sends, retries
    # included, counted from 1 across restarts) on which to call os.abort() or to hang.
    parser.add_argument("--test-abort-at", type=_parse_seqs, default=frozenset(), help=argparse.SUPPRESS)
    parser.add_argument("--test-hang-at", type=_parse_seqs, default=frozenset(), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    # The protocol gets its own copy of stdout; fd 1 then points at stderr, so whatever a native library
    # prints cannot be mistaken for a reply.
    out = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    # Ctrl-C on a terminal and systemd's stop reach the whole process group: the parent decides when this
    # child ends (end of stdin), so a stop is never mistaken for a crash.
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signal.SIG_IGN)
    threading.Thread(target=_exit_when_orphaned, args=(os.getppid(),), daemon=True).start()

    from edgepose.errors import EdgePoseError

    try:
        runtime, interpreter = _open(args)
        # One invoke before saying ready: the EdgeTPU uploads the model on its first invoke, which belongs
        # under the start-up timeout, not the first frame's invoke timeout (and it proves the delegate runs).
        interpreter.invoke()
    except EdgePoseError as exc:
        _send(out, f"X {_start_error_kind(exc)} {exc}")
        return 1
    except Exception as exc:  # whatever a broken delegate library raises, the parent hears why
        _send(out, f"X unavailable {type(exc).__name__}: {str(exc).strip()[:300]}")
        return 1
    inputs = list(interpreter.get_input_details())
    outputs = list(interpreter.get_output_details())
    in_offsets, end = layout(inputs, 0)
    out_offsets, size = layout(outputs, end)
    os.ftruncate(args.fd, max(size, 1))
    shared = mmap.mmap(args.fd, max(size, 1))
    shared_in = _views(shared, inputs, in_offsets)
    shared_out = _views(shared, outputs, out_offsets)
    hello = {
        "runtime": runtime.name,
        "version": runtime.version,
        "inputs": [details_to_json(d) for d in inputs],
        "outputs": [details_to_json(d) for d in outputs],
        "input_offsets": in_offsets,
        "output_offsets": out_offsets,
        "size": size,
    }
    _send(out, "R " + json.dumps(hello))
    for line in sys.stdin.buffer:
        parts = line.split()
        if not parts or parts[0] == b"Q":
            break
        seq = int(parts[1])
        if seq in args.test_abort_at:
            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # no core file for an injected abort
            os.abort()
        if seq in args.test_hang_at:
            threading.Event().wait()
        try:
            for detail, view in zip(inputs, shared_in, strict=True):
                interpreter.set_tensor(detail["index"], view)
            interpreter.invoke()
            for detail, view in zip(outputs, shared_out, strict=True):
                np.copyto(view, interpreter.tensor(detail["index"])())
        except (RuntimeError, ValueError) as exc:
            _send(out, f"E {seq} {type(exc).__name__}: {exc}")
            return 1
        _send(out, f"D {seq}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
