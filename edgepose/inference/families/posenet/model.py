"""PoseNet's model I/O as pure functions over numpy arrays: model check, letterbox, dequantisation.

The prepared PoseNet model (see :mod:`.prepare`) takes one uint8 RGB image and outputs three
uint8 maps on a grid of ``stride``-pixel cells: keypoint heatmaps, short-range offsets and mid-range
displacements. This module checks such a model, fits frames into its input (letterbox), dequantises its
outputs and maps keypoints back to source pixels; :mod:`.decoder` turns the maps into people.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import cv2
import numpy as np

from edgepose.errors import ModelError
from edgepose.inference.families.posenet.decoder import NUM_EDGES, NUM_KEYPOINTS

if TYPE_CHECKING:
    from edgepose.inference.runtime.backend import Backend

#: The three outputs of a prepared PoseNet model, by their channel count.
OUTPUT_CHANNELS: dict[str, int] = {"heatmaps": NUM_KEYPOINTS, "short": 2 * NUM_KEYPOINTS, "mid": 4 * NUM_EDGES}


@dataclass(frozen=True)
class Letterbox:
    """Where the frame sits in the model input: scaled by ``scale_x``/``scale_y``, offset by ``left``/``top``."""

    left: int
    top: int
    scale_x: float
    scale_y: float


def recognises(backend: Backend) -> bool:
    """Tell a bare ``.tflite`` file for PoseNet by its tensors: the decoder's three output maps."""
    return len(backend.outputs) == len(OUTPUT_CHANNELS)


def check_model(backend: Backend) -> None:
    """Check that an opened model is a prepared PoseNet: one uint8 image input, the decoder's three maps out.

    Raises:
        ModelError: It is some other model (or Coral's file before preparation); the message says what to use.
    """
    model = backend.info.model
    hint = "use --model posenet (edgepose models fetch posenet prepares it)"
    shape = backend.input_shape(0)
    if len(backend.inputs) != 1 or len(shape) != 4 or shape[0] != 1 or shape[3] != 3:
        raise ModelError(
            f"{model} takes {len(backend.inputs)} input(s) of shape {shape}; PoseNet takes one image ({hint})"
        )
    if np.dtype(backend.inputs[0]["dtype"]) != np.uint8:
        raise ModelError(
            f"{model} takes {np.dtype(backend.inputs[0]['dtype']).name} input; edgepose needs uint8 ({hint})"
        )
    shapes = [tuple(int(d) for d in out["shape"]) for out in backend.outputs]
    channels = sorted(s[-1] for s in shapes if len(s) == 4)
    grids = {s[1:3] for s in shapes if len(s) == 4}
    if len(shapes) != 3 or channels != sorted(OUTPUT_CHANNELS.values()) or len(grids) != 1:
        raise ModelError(
            f"{model} outputs {shapes}; a prepared PoseNet outputs heatmaps, short and mid offsets "
            f"[1, H, W, 17/34/64] ({hint})"
        )
    (grid,) = grids
    strides = {(size - 1) / max(1, cells - 1) for size, cells in zip(shape[1:3], grid, strict=True)}
    if len(strides) != 1 or not next(iter(strides)).is_integer() or min(grid) < 2:
        raise ModelError(f"{model}: output grid {grid} does not fit input {shape[1:3]} at a whole stride ({hint})")


def model_stride(backend: Backend) -> int:
    """Return the input pixels per output cell of a checked PoseNet model (16 for Coral's)."""
    height = backend.input_shape(0)[1]
    grid = int(next(out["shape"][1] for out in backend.outputs))
    return (height - 1) // (grid - 1)


def output_order(backend: Backend) -> tuple[int, int, int]:
    """Return the output indices of the heatmaps, short offsets and mid offsets of a checked PoseNet model."""
    by_channels = {int(out["shape"][-1]): i for i, out in enumerate(backend.outputs)}
    return (
        by_channels[OUTPUT_CHANNELS["heatmaps"]],
        by_channels[OUTPUT_CHANNELS["short"]],
        by_channels[OUTPUT_CHANNELS["mid"]],
    )


def letterbox_for(width: int, height: int, input_width: int, input_height: int) -> Letterbox:
    """Fit a ``width``×``height`` frame into the model input keeping its aspect ratio, centred.

    For Coral's 640×480 test image in the 641×481 input the frame fills the input (the plain resize
    Coral's reference used); other shapes get black bands instead of being stretched.
    """
    scale = min(input_width / width, input_height / height)
    new_width = min(input_width, max(1, round(width * scale)))
    new_height = min(input_height, max(1, round(height * scale)))
    return Letterbox(
        (input_width - new_width) // 2, (input_height - new_height) // 2, new_width / width, new_height / height
    )


def preprocess_into(frame_bgr: np.ndarray, box: Letterbox, dst: np.ndarray) -> None:
    """Resize a BGR frame into the model input as RGB, inside black bands (see :func:`letterbox_for`).

    Args:
        frame_bgr: ``(H, W, 3)`` uint8 BGR.
        box: Where the frame goes in the input.
        dst: The model input, ``(input_height, input_width, 3)`` uint8 (the interpreter's tensor).
    """
    height, width = frame_bgr.shape[:2]
    new_width, new_height = round(width * box.scale_x), round(height * box.scale_y)
    shrinking = new_width < width or new_height < height
    resized = cv2.resize(
        frame_bgr, (new_width, new_height), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    )
    bottom, right = box.top + new_height, box.left + new_width
    dst[: box.top] = 0
    dst[bottom:] = 0
    dst[box.top : bottom, : box.left] = 0
    dst[box.top : bottom, right:] = 0
    dst[box.top : bottom, box.left : right] = resized[:, :, ::-1]


def to_source(keypoints: np.ndarray, box: Letterbox) -> np.ndarray:
    """Map ``(N, 3)`` keypoints from model-input pixels to source pixels (scores unchanged).

    Pixel centres are aligned the way ``cv2.resize`` aligns them.
    """
    out = keypoints.astype(np.float32, copy=True)
    out[:, 0] = (keypoints[:, 0] - box.left + 0.5) / box.scale_x - 0.5
    out[:, 1] = (keypoints[:, 1] - box.top + 0.5) / box.scale_y - 0.5
    return out


def dequantize(raw: np.ndarray, quantization: tuple[float, int]) -> np.ndarray:
    """Return ``(raw - zero_point) * scale`` as float32, without the batch dimension.

    A float output (scale 0) is returned as it is.
    """
    scale, zero_point = float(quantization[0]), int(quantization[1])
    values = raw[0] if raw.ndim == 4 else raw
    if scale == 0.0:
        return values.astype(np.float32)
    result: np.ndarray = (values.astype(np.float32) - np.float32(zero_point)) * np.float32(scale)
    return result
