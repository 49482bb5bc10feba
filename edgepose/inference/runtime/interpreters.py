"""Creating interpreters: the one place that constructs a TFLite ``Interpreter`` or loads libedgetpu.

Used in-process by :mod:`.delegates`, in the probe child (:mod:`.edgetpu_probe`) and in the worker child
(:mod:`edgepose.inference.worker.child`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edgepose.errors import BackendUnavailableError, ModelError
from edgepose.inference.runtime.runtimes import Runtime
from edgepose.logs import native_stderr_silenced


class DelegateAbsentError(BackendUnavailableError):
    """The delegate's library or model is simply not there (the normal case on a machine without a Coral)."""


def read_model(path: Path) -> bytes:
    """Return a model file's bytes after checking it is there and is a TFLite flatbuffer.

    Raises:
        ModelError: Missing, or not a TFLite model.
    """
    if not path.is_file():
        raise ModelError(f"model file not found: {path} (run: edgepose models fetch)")
    data = path.read_bytes()
    # Every TFLite flatbuffer carries the "TFL3" identifier at offset 4.
    if len(data) < 8 or data[4:8] != b"TFL3":
        raise ModelError(f"{path} is not a TFLite model (re-fetch it: edgepose models fetch)")
    return data


def make_interpreter(runtime: Runtime, path: Path, delegate: str, threads: int, edgetpu: Any = None) -> Any:
    """Create and prepare an interpreter for one delegate.

    Args:
        runtime: The interpreter package.
        path: Model file.
        delegate: ``edgetpu``, ``xnnpack`` (the runtime's default CPU delegate) or ``cpu`` (built-in kernels).
        threads: CPU threads (ignored for the EdgeTPU).
        edgetpu: A loaded EdgeTPU delegate, with ``delegate="edgetpu"``.

    Raises:
        ModelError: Not a valid model, or an EdgeTPU-compiled model without the delegate.
        BackendUnavailableError: The runtime cannot start (e.g. tflite-runtime under numpy 2).
    """
    interp_cls = runtime.module.Interpreter
    kwargs: dict[str, Any] = {"model_path": str(path)}
    if delegate == "edgetpu":
        kwargs["experimental_delegates"] = [edgetpu]
    else:
        kwargs["num_threads"] = threads
        if delegate == "cpu":
            resolver = getattr(runtime.module, "OpResolverType", None)
            if resolver is not None:
                kwargs["experimental_op_resolver_type"] = resolver.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    try:
        interpreter = interp_cls(**kwargs)
    except ValueError as exc:
        raise ModelError(f"{path} is not a valid TFLite model ({first_line(exc)}); re-fetch it") from exc
    except (ImportError, AttributeError, SystemError) as exc:
        raise BackendUnavailableError(_numpy_hint(runtime, exc)) from exc
    except RuntimeError as exc:
        raise ModelError(f"{path} cannot be loaded by {runtime.name}: {first_line(exc)}") from exc
    try:
        with native_stderr_silenced():  # the runtime prints "Created TensorFlow Lite XNNPACK delegate" here
            interpreter.allocate_tensors()
    except RuntimeError as exc:
        if "edgetpu-custom-op" in str(exc):
            raise ModelError(
                f"{path.name} is compiled for the Coral EdgeTPU and cannot run on the CPU; use the CPU model "
                "(--model lightning) or --delegate edgetpu with a Coral attached"
            ) from exc
        if "PosenetDecoderOp" in str(exc):
            raise ModelError(
                f"{path.name} still ends in Coral's PosenetDecoderOp, which no Python runtime provides; use "
                "--model posenet (edgepose models fetch posenet removes the operator)"
            ) from exc
        raise ModelError(f"{path} cannot be prepared: {first_line(exc)}") from exc
    return interpreter


def _numpy_hint(runtime: Runtime, exc: BaseException) -> str:
    if runtime.name == "tflite_runtime" and int(np.__version__.split(".")[0]) >= 2:
        return (
            f"tflite-runtime {runtime.version} does not work with numpy {np.__version__} ({first_line(exc)}); "
            "install numpy<2 or use ai-edge-litert (--runtime ai_edge_litert)"
        )
    return f"{runtime.name} failed to start: {first_line(exc)}"


def first_line(exc: BaseException) -> str:
    """Return the first line of an exception's message (its type name if it has none)."""
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


def load_edgetpu_delegate(runtime: Runtime, library: str) -> Any:
    """Load the EdgeTPU delegate in this process.

    Raises:
        BackendUnavailableError: The library is missing or no EdgeTPU answers.
    """
    try:
        return runtime.module.load_delegate(library)
    except OSError as exc:
        raise DelegateAbsentError(
            f"cannot load {library}: {first_line(exc)} (install libedgetpu1-std from Coral's apt repository "
            "and plug in the Coral)"
        ) from exc
    except (ValueError, RuntimeError, AttributeError) as exc:  # AttributeError: a library that is no delegate
        raise BackendUnavailableError(
            f"cannot load {library}: {first_line(exc)} (install libedgetpu1-std from Coral's apt repository "
            "and plug in the Coral)"
        ) from exc
