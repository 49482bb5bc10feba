"""The model-agnostic :class:`Backend` (a ready interpreter) and the :class:`BackendRequest` that opens one.

Which delegate opens it is :mod:`.delegates`' business; which tensors a model must have, its family's
(the ``check`` a :class:`~edgepose.inference.family.Stage` declares).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edgepose.config.schema import ModelConfig
from edgepose.pose import BackendInfo


@dataclass(frozen=True)
class BackendRequest:
    """What the user asked for.

    Attributes:
        runtime: ``auto`` or a key of :data:`~edgepose.inference.runtime.runtimes.RUNTIMES`.
        delegate: One of :data:`~edgepose.config.choices.DELEGATES`.
        threads: CPU threads for XNNPACK/CPU kernels.
        edgetpu_library: Shared library name or path passed to ``load_delegate``.
        edgetpu_probe: Try the EdgeTPU delegate in a child process first.
        edgetpu_worker: Run the EdgeTPU delegate in a supervised child process
            (:mod:`edgepose.inference.worker`), restarted when libedgetpu crashes or hangs, with a CPU fallback.
        stop: The run's stop event: the supervised worker ends its recovery (waits, restarts) once it is set.
    """

    runtime: str = ModelConfig.runtime
    delegate: str = ModelConfig.delegate
    threads: int = 1
    edgetpu_library: str = ModelConfig.edgetpu_library
    edgetpu_probe: bool = ModelConfig.edgetpu_probe
    edgetpu_worker: bool = ModelConfig.edgetpu_worker
    stop: threading.Event | None = field(default=None, compare=False, repr=False)


#: Checks that an opened model is what the caller's model family expects; raises :class:`ModelError`.
ModelCheck = Callable[["Backend"], None]


class Backend:
    """A ready interpreter: views of its inputs, ``invoke``, copies of its outputs.

    Which tensors a model must have is the model family's business (see ``check`` in
    :func:`~edgepose.inference.runtime.delegates.open_backend`).
    """

    #: Whether the interpreter runs in a supervised child process (the EdgeTPU worker's ``WorkerBackend``).
    supervised = False
    #: Children restarted after a failure (a supervised backend's count; always 0 in-process).
    restarts = 0
    #: Why a supervised backend gave up its child and runs in-process, or ``None``.
    fallback_reason: str | None = None

    def __init__(self, interpreter: Any, info: BackendInfo) -> None:
        self._interpreter = interpreter
        #: What runs the model now (a supervised backend's becomes its CPU fallback's).
        self.info = info
        #: The interpreter's input and output details (name, index, shape, dtype, quantization), in order.
        self.inputs: list[dict[str, Any]] = list(interpreter.get_input_details())
        self.outputs: list[dict[str, Any]] = list(interpreter.get_output_details())

    def input_shape(self, index: int = 0) -> tuple[int, ...]:
        """Return the shape of input ``index``, batch dimension included."""
        return tuple(int(d) for d in self.inputs[index]["shape"])

    @property
    def input_size(self) -> int:
        """Return the height of the first input: the model's square input side for MoveNet."""
        return self.input_shape(0)[1]

    def input_tensor(self, index: int = 0) -> np.ndarray:
        """Return a writable view of input ``index`` without its batch dimension.

        Drop the reference before calling :meth:`invoke`: the interpreter refuses to run while
        views of its buffers are alive.
        """
        view: np.ndarray = self._interpreter.tensor(int(self.inputs[index]["index"]))()[0]
        return view

    def invoke(self) -> None:
        """Run the model once on the current input tensors."""
        self._interpreter.invoke()

    def output(self, index: int = 0) -> np.ndarray:
        """Return a copy of output ``index``."""
        result: np.ndarray = self._interpreter.get_tensor(int(self.outputs[index]["index"]))
        return result

    def close(self) -> None:
        """Release the interpreter (a worker backend also stops its child process); idempotent."""
        self._interpreter = None


def default_threads() -> int:
    """Return all cores, at most 4 (a Pi 4/5 has 4; more threads than cores hurts)."""
    return max(1, min(4, os.cpu_count() or 1))
