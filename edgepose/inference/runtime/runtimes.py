"""TFLite interpreter packages: the only module that imports tflite_runtime or ai_edge_litert.

ai_edge_litert is preferred (maintained, numpy 2, INT8 XNNPACK); tflite_runtime 2.14 is the legacy
package, refused up front under numpy 2 where it would fail inside ``Interpreter()``.
"""

from __future__ import annotations

import importlib
import importlib.metadata
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgepose.config.choices import RUNTIME_CHOICES, RUNTIME_DISTS
from edgepose.errors import BackendUnavailableError


@dataclass(frozen=True)
class Runtime:
    """An importable TFLite interpreter package.

    Attributes:
        name: Import name (``ai_edge_litert`` or ``tflite_runtime``).
        version: Installed distribution version.
        module: Its ``interpreter`` module (``Interpreter``, ``load_delegate``, ``OpResolverType``).
    """

    name: str
    version: str
    module: Any


def _import_runtime(name: str, module: str, dist: str, hint: str) -> Runtime:
    try:
        mod = importlib.import_module(module)
    except ImportError as exc:
        raise BackendUnavailableError(f"{name} is not installed ({exc}); {hint}") from exc
    try:
        version = importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        version = "unknown"
    return Runtime(name=name, version=version, module=mod)


def _litert() -> Runtime:
    return _import_runtime(
        "ai_edge_litert",
        "ai_edge_litert.interpreter",
        RUNTIME_DISTS["ai_edge_litert"],
        "install it: pip install ai-edge-litert",
    )


def _tflite() -> Runtime:
    try:
        version = importlib.metadata.version(RUNTIME_DISTS["tflite_runtime"])
    except importlib.metadata.PackageNotFoundError:
        version = ""
    problem = tflite_numpy_problem(version, np.__version__) if version else None
    if problem:
        raise BackendUnavailableError(problem)
    return _import_runtime(
        "tflite_runtime",
        "tflite_runtime.interpreter",
        RUNTIME_DISTS["tflite_runtime"],
        "install it: pip install tflite-runtime 'numpy<2' (Python <= 3.11 only)",
    )


def tflite_numpy_problem(tflite_version: str, numpy_version: str) -> str | None:
    """Say why a tflite-runtime / numpy pair cannot work, or return ``None``.

    tflite-runtime's last release (2.14) is built against numpy 1 and fails inside ``Interpreter()``
    under numpy 2 (``_ARRAY_API not found``); it is refused up front with the fix instead.
    """
    major_minor = tuple(int(p) for p in tflite_version.split(".")[:2] if p.isdigit())
    if major_minor and major_minor <= (2, 14) and int(numpy_version.split(".")[0]) >= 2:
        return (
            f"tflite-runtime {tflite_version} does not work with numpy {numpy_version}: install numpy<2 "
            "(pip install 'numpy<2' 'opencv-python-headless<4.12') or use ai-edge-litert (--runtime ai_edge_litert)"
        )
    return None


#: Runtimes in order of preference.
RUNTIMES: dict[str, Callable[[], Runtime]] = {"ai_edge_litert": _litert, "tflite_runtime": _tflite}


def find_runtime(choice: str = "auto") -> Runtime:
    """Import the requested runtime, or the first installed one for ``auto``.

    Raises:
        BackendUnavailableError: Nothing usable is installed.
    """
    if choice != "auto":
        if choice not in RUNTIMES:
            raise BackendUnavailableError(f"unknown runtime {choice!r}; choose one of {', '.join(RUNTIME_CHOICES)}")
        return RUNTIMES[choice]()
    reasons = []
    for loader in RUNTIMES.values():
        try:
            return loader()
        except BackendUnavailableError as exc:
            reasons.append(str(exc))
    raise BackendUnavailableError("no usable TFLite runtime (" + "; ".join(reasons) + ")")
