"""Brightspot's model and its pure pre- and post-processing.

The model is one real TFLite operator (CAST) from an 8×8 uint8 RGB image to the same image as float32, built
with the schema ai-edge-litert ships: the estimator reads the brightest cell back as the person.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from ai_edge_litert import schema_py_generated as schema
from tflite_builder import one_op_model

from edgepose.errors import ModelError
from edgepose.inference.runtime.backend import Backend
from edgepose.manifest import sha256_of

#: The model's input (and output) side in cells.
SIDE = 8
FILE = "brightspot.tflite"


def write_model(folder: Path) -> Path:
    """Write the family's model file into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    return one_op_model(folder / FILE, [1, SIDE, SIDE, 3], schema.TensorType.UINT8, schema.TensorType.FLOAT32,
                        schema.BuiltinOperator.CAST)  # fmt: skip


def manifest_entry(model: Path, name: str = "brightspot") -> str:
    """Return the family's ``[[model]]`` entry for the manifest, with the checksum of ``model``."""
    return (
        f'\n[[model]]\nname = "{name}"\nvariant = "cpu"\nfamily = "brightspot"\nfile = "{FILE}"\n'
        f'input_size = {SIDE}\nbytes = {model.stat().st_size}\nsha256 = "{sha256_of(model)}"\n'
        f'url = "https://example.invalid/{FILE}"\n'
    )


def _shapes(backend: Backend) -> tuple[list[tuple[int, ...]], list[tuple[int, ...]]]:
    return [backend.input_shape(i) for i in range(len(backend.inputs))], [
        tuple(int(d) for d in out["shape"]) for out in backend.outputs
    ]


def recognises(backend: Backend) -> bool:
    """A bare file is brightspot's when it maps one uint8 image to one float32 image of the same shape."""
    inputs, outputs = _shapes(backend)
    return (
        len(inputs) == len(outputs) == 1
        and inputs == outputs
        and len(inputs[0]) == 4
        and np.dtype(backend.outputs[0]["dtype"]) == np.float32
    )


def check_model(backend: Backend) -> None:
    """Check the opened model is brightspot's (an ``SIDE``×``SIDE`` image in and out)."""
    inputs, outputs = _shapes(backend)
    if inputs != [(1, SIDE, SIDE, 3)] or outputs != inputs:
        raise ModelError(f"{backend.info.model} maps {inputs} to {outputs}; brightspot maps [1, 8, 8, 3] to itself")


def preprocess_into(frame_bgr: np.ndarray, dst: np.ndarray) -> None:
    """Shrink a BGR frame into the ``SIDE``×``SIDE`` input (area averaging)."""
    cv2.resize(frame_bgr, (SIDE, SIDE), dst=dst, interpolation=cv2.INTER_AREA)


def decode(output: np.ndarray, width: int, height: int) -> np.ndarray:
    """Return 17 keypoints at the centre of the brightest cell, in source pixels, scored by its brightness."""
    brightness = np.asarray(output, dtype=np.float32).reshape(SIDE, SIDE, 3).sum(axis=2) / (3 * 255.0)
    row, col = np.unravel_index(int(np.argmax(brightness)), brightness.shape)
    keypoints = np.empty((17, 3), dtype=np.float32)
    keypoints[:] = ((col + 0.5) * width / SIDE, (row + 0.5) * height / SIDE, brightness[row, col])
    return keypoints
