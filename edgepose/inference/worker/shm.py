"""The supervised inference worker's shared memory: the memfd, the tensor layout in it, and their release.

The tensors live in an anonymous ``memfd`` the child inherits by descriptor (nothing named in
``/dev/shm`` that a killed service could leak). The child sizes it and reports the layout in its hello;
the parent maps it once and views each tensor in place. :class:`WorkerResources` holds what must be
released however the worker ends: the child, the mapping and the descriptor.
"""

from __future__ import annotations

import contextlib
import mmap
import os
from typing import Any

import numpy as np

from edgepose.errors import BackendUnavailableError
from edgepose.inference.worker.process import WorkerChild

#: The hello's keys that fix the shared-memory layout: a restarted child must report the same.
LAYOUT_KEYS = ("inputs", "outputs", "input_offsets", "output_offsets", "size")


def details_from_json(data: dict[str, Any]) -> dict[str, Any]:
    """Rebuild an interpreter tensor detail (numpy shapes and dtype) from the child's JSON."""
    params = data["quantization_parameters"]
    return {
        "name": data["name"],
        "index": data["index"],
        "shape": np.array(data["shape"], dtype=np.int32),
        "shape_signature": np.array(data["shape_signature"], dtype=np.int32),
        "dtype": np.dtype(data["dtype"]).type,
        "quantization": (data["quantization"][0], data["quantization"][1]),
        "quantization_parameters": {
            "scales": np.array(params["scales"], dtype=np.float32),
            "zero_points": np.array(params["zero_points"], dtype=np.int32),
            "quantized_dimension": params["quantized_dimension"],
        },
        "sparsity_parameters": {},
    }


def layout_of(hello: dict[str, Any]) -> dict[str, Any]:
    """Return the part of a child's hello that fixes the shared-memory layout."""
    return {k: hello[k] for k in LAYOUT_KEYS}


def create_memfd() -> int:
    """Create the anonymous shared-memory file the child inherits (close-on-exec; passed explicitly).

    Raises:
        BackendUnavailableError: The platform has no ``memfd_create`` (not Linux).
    """
    if not hasattr(os, "memfd_create"):  # pragma: no cover - Linux has it
        raise BackendUnavailableError("the inference worker needs Linux (memfd_create); set edgetpu_worker = false")
    return os.memfd_create("edgepose-worker", os.MFD_CLOEXEC)


class WorkerResources:
    """What must be released however the worker ends: the child, the mapping and the descriptor."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.child: WorkerChild | None = None
        self.shared: mmap.mmap | None = None

    def map(self, hello: dict[str, Any]) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Map the shared memory as the child's hello lays it out; return views of the inputs and outputs."""
        shared = self.shared = mmap.mmap(self.fd, max(1, int(hello["size"])))

        def views(details: list[dict[str, Any]], offsets: list[int]) -> list[np.ndarray]:
            return [
                np.ndarray(tuple(d["shape"]), dtype=np.dtype(d["dtype"]), buffer=shared, offset=off)
                for d, off in zip(details, offsets, strict=True)
            ]

        return views(hello["inputs"], hello["input_offsets"]), views(hello["outputs"], hello["output_offsets"])

    def release(self) -> None:
        """Stop the child, unmap the shared memory and close its descriptor (idempotent)."""
        if self.child is not None:
            self.child.stop()
            self.child = None
        if self.shared is not None:
            with contextlib.suppress(BufferError):  # a caller still holds a view: it goes when the view does
                self.shared.close()
            self.shared = None
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
