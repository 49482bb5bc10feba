"""Child-process check of the EdgeTPU delegate: load it, prepare the model, invoke once.

Run by :func:`edgepose.inference.backends.probe_edgetpu`. A mismatched libedgetpu segfaults
(google-coral/edgetpu#812); here that only kills this child. Exit 0 means the delegate works.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

REASON_PREFIX = "edgepose-probe: "
#: Exit status meaning "the library is not installed" (as opposed to broken).
ABSENT_EXIT = 3


def main(argv: list[str] | None = None) -> int:
    """Probe the delegate; print the reason for a failure on stderr."""
    parser = argparse.ArgumentParser(prog="edgepose-edgetpu-probe")
    parser.add_argument("--runtime", required=True)
    parser.add_argument("--library", required=True)
    parser.add_argument("--model", required=True, type=Path)
    args = parser.parse_args(argv)

    from edgepose.errors import EdgePoseError
    from edgepose.inference.interpreters import DelegateAbsentError, load_edgetpu_delegate, make_interpreter
    from edgepose.inference.runtimes import find_runtime

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
