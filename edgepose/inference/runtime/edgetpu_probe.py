"""The EdgeTPU probe: load the delegate, prepare the model and invoke once, in a child process.

A mismatched libedgetpu segfaults (google-coral/edgetpu#812); in the child that only kills the child.
:func:`check_edgetpu_in_child` and :func:`probe_edgetpu` start it (``python -m`` this module) and say
why it failed; :func:`main` is the child (exit 0 means the delegate works).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
from pathlib import Path

from edgepose.errors import BackendUnavailableError, EdgePoseError
from edgepose.inference.runtime.interpreters import DelegateAbsentError, load_edgetpu_delegate, make_interpreter
from edgepose.inference.runtime.runtimes import Runtime, find_runtime

REASON_PREFIX = "edgepose-probe: "
#: Exit status meaning "the library is not installed" (as opposed to broken).
ABSENT_EXIT = 3
EDGETPU_PROBE_TIMEOUT_S = 30.0


def probe_edgetpu(runtime: Runtime, library: str, model: Path) -> str | None:
    """Try the EdgeTPU delegate in a child process, where a crash cannot take us down.

    Returns:
        ``None`` when the delegate loaded and the model ran once, else the reason it did not.
    """
    try:
        check_edgetpu_in_child(runtime, library, model)
    except BackendUnavailableError as exc:
        return str(exc)
    return None


def check_edgetpu_in_child(runtime: Runtime, library: str, model: Path) -> None:
    """Load the delegate and run the model once in a child process.

    Raises:
        DelegateAbsentError: The library is not installed.
        BackendUnavailableError: It crashed, hung or failed otherwise; the message says why.
    """
    cmd = [
        sys.executable, "-m", __name__, "--runtime", runtime.name, "--library", library, "--model", str(model),
    ]  # fmt: skip
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=EDGETPU_PROBE_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        raise BackendUnavailableError(
            f"the EdgeTPU probe hung for {EDGETPU_PROBE_TIMEOUT_S:.0f} s (is the Coral plugged in and powered?)"
        ) from None
    if proc.returncode == 0:
        return
    if proc.returncode < 0:
        sig = signal.Signals(-proc.returncode).name
        raise BackendUnavailableError(
            f"{library} crashed the process ({sig}) under {runtime.name} {runtime.version}: the library does not "
            "match this runtime (google-coral/edgetpu#812); install a libedgetpu built for this TF version "
            "(see edgepose doctor)"
        )
    reasons = [ln[len(REASON_PREFIX) :] for ln in proc.stderr.splitlines() if ln.startswith(REASON_PREFIX)]
    lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
    reason = (reasons or lines or [f"the EdgeTPU probe exited with status {proc.returncode}"])[-1]
    raise (DelegateAbsentError if proc.returncode == ABSENT_EXIT else BackendUnavailableError)(reason)


def main(argv: list[str] | None = None) -> int:
    """Probe the delegate (in the child); print the reason for a failure on stderr."""
    parser = argparse.ArgumentParser(prog="edgepose-edgetpu-probe")
    parser.add_argument("--runtime", required=True)
    parser.add_argument("--library", required=True)
    parser.add_argument("--model", required=True, type=Path)
    args = parser.parse_args(argv)
    try:
        runtime = find_runtime(args.runtime)
        delegate = load_edgetpu_delegate(runtime, args.library)
        interpreter = make_interpreter(runtime, args.model, "edgetpu", 1, delegate)
        interpreter.invoke()
    except EdgePoseError as exc:
        print(f"{REASON_PREFIX}{exc}", file=sys.stderr, flush=True)
        os._exit(
            ABSENT_EXIT if isinstance(exc, DelegateAbsentError) else 1
        )  # skip interpreter teardown: a half-loaded delegate's destructor only adds noise
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
