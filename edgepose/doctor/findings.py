"""``edgepose doctor``'s findings: the ``Check`` line, the ``Context`` the checks look at, and probes.

A line reads ``LEVEL check: detail — fix: what to do``. FAIL is reserved for what stops
``edgepose run`` with this configuration, or leaves it with nothing to do; everything that only
costs speed or features is a WARN.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from edgepose.config import Config
from edgepose.inference.runtime.runtimes import Runtime

OK, WARN, FAIL = "OK", "WARN", "FAIL"
PROBE_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class Check:
    """One finding."""

    level: str
    name: str
    detail: str
    fix: str = ""

    def line(self) -> str:
        """Render ``LEVEL name: detail — fix: …``."""
        text = f"{self.level} {self.name}: {self.detail}"
        return f"{text} — fix: {self.fix}" if self.fix and self.level != OK else text


@dataclass
class Context:
    """What the checks look at.

    Attributes:
        config: The configuration (defaults when it could not be built).
        config_path: The config file read (``--config``, or the system install's), if any.
        config_error: Why the configuration is invalid, if it is.
        config_fix: What to do about it, when more is known than "correct it".
        root: File system root for hardware lookups (tests use a fake tree).
        python: Interpreter for child-process probes.
        usable_runtimes: Filled by the runtime check for the delegate check.
        units: The system install's units and the config each reads (``edgepose.service``,
            ``edgepose@NAME.service``), when the doctor looks at the install rather than one ``--config``.
    """

    config: Config
    config_path: Path | None = None
    config_error: str | None = None
    config_fix: str = ""
    root: Path = Path("/")
    python: str = sys.executable
    usable_runtimes: list[Runtime] = field(default_factory=list)
    units: dict[str, Path] = field(default_factory=dict)


def probe(python: str, code: str, timeout: float = PROBE_TIMEOUT_S, stdin: str = "") -> tuple[int, str]:
    """Run ``python -c code`` with ``stdin`` as its input (what must not show in ``ps``, such as a password).

    Returns:
        Its exit status (negative: killed by a signal) and its last stderr line.
    """
    try:
        proc = subprocess.run([python, "-c", code], capture_output=True, text=True, timeout=timeout, check=False,
                              input=stdin)  # fmt: skip
    except subprocess.TimeoutExpired:
        return 124, f"no answer within {timeout:.0f} s"
    lines = [ln.strip() for ln in (proc.stderr or proc.stdout).splitlines() if ln.strip()]
    return proc.returncode, lines[-1] if lines else ""


def exit_code(results: list[Check]) -> int:
    """1 when anything FAILs (edgepose run would not work), else 0."""
    return 1 if any(c.level == FAIL for c in results) else 0
