"""PoseNet's estimator: letterbox ▶ invoke ▶ dequantise ▶ multi-pose decode, with per-stage timings."""

from __future__ import annotations

import time
from dataclasses import replace

import numpy as np

from edgepose.config.schema import ModelConfig
from edgepose.inference.estimator import Estimate
from edgepose.inference.families.posenet.decoder import DecoderParams, decode_poses
from edgepose.inference.families.posenet.model import (
    check_model,
    dequantize,
    letterbox_for,
    model_stride,
    output_order,
    preprocess_into,
    to_source,
)
from edgepose.inference.runtime.backend import Backend
from edgepose.pose import BackendInfo, Pose


class PoseNetEstimator:
    """Runs a prepared PoseNet model on frames through a :class:`Backend` and finds every person.

    PoseNet looks at the whole frame each time, so video frames and still images are handled alike
    and there is nothing to reset.
    """

    def __init__(
        self, backend: Backend, max_people: int = ModelConfig.max_people, params: DecoderParams | None = None
    ) -> None:
        """Check the model and set the decoder up.

        Args:
            backend: An opened prepared PoseNet model.
            max_people: At most this many poses per frame (the first ones the decoder finds).
            params: Decoder settings; the stride is taken from the model.

        Raises:
            ModelError: The model is not a prepared PoseNet.
            ValueError: ``max_people`` is below 1.
        """
        if max_people < 1:
            raise ValueError(f"max_people must be at least 1, not {max_people}")
        check_model(backend)
        self.backend = backend
        self.params = replace(params or DecoderParams(), max_people=max_people, stride=model_stride(backend))
        self._order = output_order(backend)
        self._quantization = [
            (float(backend.outputs[i]["quantization"][0]), int(backend.outputs[i]["quantization"][1]))
            for i in self._order
        ]
        _, self._input_height, self._input_width, _ = backend.input_shape(0)

    @property
    def backends(self) -> tuple[Backend, ...]:
        """Its one backend."""
        return (self.backend,)

    @property
    def info(self) -> BackendInfo:
        """What runs the model now (the CPU's once the EdgeTPU worker fell back)."""
        return self.backend.info

    def reset(self) -> None:
        """Nothing is carried from frame to frame."""

    def close(self) -> None:
        """Release the backend (the EdgeTPU worker's child process ends)."""
        self.backend.close()

    def track(self, image: np.ndarray) -> Estimate:
        """Estimate a video frame (the same as :meth:`still`)."""
        return self.still(image)

    def still(self, image: np.ndarray) -> Estimate:
        """Find every person in a BGR image; poses in source pixels, best first."""
        height, width = image.shape[:2]
        t0 = time.perf_counter()
        box = letterbox_for(width, height, self._input_width, self._input_height)
        dst = self.backend.input_tensor()
        preprocess_into(image, box, dst)
        del dst  # the interpreter refuses to run while a view of its buffer is alive
        t1 = time.perf_counter()
        self.backend.invoke()
        t2 = time.perf_counter()
        heatmaps, short, mid = (
            dequantize(self.backend.output(i), q) for i, q in zip(self._order, self._quantization, strict=True)
        )
        decoded = decode_poses(heatmaps, short, mid, self.params)
        poses = tuple(Pose.from_keypoints(to_source(p.keypoints, box), score=p.score) for p in decoded)
        t3 = time.perf_counter()
        return Estimate(poses, (t1 - t0) * 1e3, (t2 - t1) * 1e3, (t3 - t2) * 1e3)
