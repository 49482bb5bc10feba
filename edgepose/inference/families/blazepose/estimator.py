"""BlazePose's estimator: MediaPipe's two-stage pose model (detector, then 33 landmarks) on edgepose's backends.

Stills run the detector on the letterboxed frame, turn the best detection into a rotated ROI and run
the landmark model on it. Video frames skip the detector while the person is tracked: the ROI for the
next frame comes from this frame's auxiliary landmarks, and the detector runs again only on the first
frame, after :meth:`BlazePoseEstimator.reset`, and on a frame whose pose flag drops below the threshold
(then on that same frame, so a person who moved out of the old ROI is found again without a gap).

Both models are float32: they run on XNNPACK or the CPU kernels, never on the EdgeTPU.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from edgepose.inference.estimator import Estimate
from edgepose.inference.families.blazepose.detector import (
    MIN_DETECTION_SCORE,
    detection_roi,
    detections_from_outputs,
    detector_outputs,
    ssd_anchors,
)
from edgepose.inference.families.blazepose.landmarks import (
    MIN_POSE_PRESENCE,
    NUM_BODY_LANDMARKS,
    coco_keypoints,
    decode_landmarks,
    landmark_outputs,
    tracking_roi,
)
from edgepose.inference.families.blazepose.roi import RotatedRoi, letterbox_roi, warp_into
from edgepose.inference.runtime.backend import Backend
from edgepose.pose import BackendInfo, Pose

#: The detector's input range and the landmark model's (MediaPipe's ``output_tensor_float_range``).
DETECTOR_RANGE = (-1.0, 1.0)
LANDMARK_RANGE = (0.0, 1.0)
#: A tracking ROI smaller than this many pixels is a lost person, not a region.
MIN_ROI_PX = 8.0


@dataclass(frozen=True)
class BlazePoseOptions:
    """Thresholds and input conventions (MediaPipe's defaults).

    Attributes:
        min_detection_score: Lowest detector score that counts as a person.
        min_presence: Lowest pose flag that counts as a pose (and keeps tracking going).
        detector_range: What pixel values 0 and 255 become in the detector's input.
        landmark_range: The same for the landmark model's input.
    """

    min_detection_score: float = MIN_DETECTION_SCORE
    min_presence: float = MIN_POSE_PRESENCE
    detector_range: tuple[float, float] = DETECTOR_RANGE
    landmark_range: tuple[float, float] = LANDMARK_RANGE


@dataclass
class _Timings:
    """Seconds spent per stage on one frame, summed over both models."""

    pre: float = 0.0
    invoke: float = 0.0
    post: float = 0.0

    def add(self, t0: float, t1: float, t2: float, t3: float) -> None:
        """Add one model's run: ``t0`` → ``t1`` preprocess, → ``t2`` invoke, → ``t3`` postprocess."""
        self.pre += t1 - t0
        self.invoke += t2 - t1
        self.post += t3 - t2


class BlazePoseEstimator:
    """Runs BlazePose's detector and landmark model through two :class:`Backend` objects.

    Attributes:
        backend: The landmark model's backend (it runs on every frame; what ``bench`` times).
        detector: The detector's backend.
        detector_runs: How many times the detector has run (tracking runs it only when needed).
        roi: The region the next tracked frame will use, or ``None`` when the detector must look.
    """

    def __init__(self, detector: Backend, landmarks: Backend, options: BlazePoseOptions | None = None) -> None:
        self._boxes_out, self._scores_out = detector_outputs(detector)
        self._outputs = landmark_outputs(landmarks)
        self.detector = detector
        self.backend = landmarks
        self.options = options or BlazePoseOptions()
        self._anchors = ssd_anchors()
        self.detector_runs = 0
        self.roi: RotatedRoi | None = None
        self._size: tuple[int, int] = (0, 0)

    @property
    def backends(self) -> tuple[Backend, ...]:
        """The landmark model's backend, then the detector's."""
        return (self.backend, self.detector)

    @property
    def info(self) -> BackendInfo:
        """What runs the landmark model (the detector runs on the same delegate)."""
        return self.backend.info

    def reset(self) -> None:
        """Forget the tracked person: the next frame starts with the detector."""
        self.roi = None

    def close(self) -> None:
        """Release both backends."""
        for backend in self.backends:
            backend.close()

    def _detect(self, image: np.ndarray, t: _Timings) -> RotatedRoi | None:
        height, width = image.shape[:2]
        t0 = time.perf_counter()
        letterbox = letterbox_roi(width, height)
        _fill(self.detector, image, letterbox, self.options.detector_range, replicate=False)
        t1 = time.perf_counter()
        self.detector.invoke()
        self.detector_runs += 1
        t2 = time.perf_counter()
        found = detections_from_outputs(
            self.detector.output(self._boxes_out),
            self.detector.output(self._scores_out),
            self._anchors,
            self.options.min_detection_score,
        )
        roi = detection_roi(found[0], letterbox) if found else None
        t3 = time.perf_counter()
        t.add(t0, t1, t2, t3)
        return roi if roi is not None and roi.size >= MIN_ROI_PX else None

    def _landmarks(self, image: np.ndarray, roi: RotatedRoi, t: _Timings) -> tuple[np.ndarray, float]:
        t0 = time.perf_counter()
        _fill(self.backend, image, roi, self.options.landmark_range, replicate=True)
        t1 = time.perf_counter()
        self.backend.invoke()
        t2 = time.perf_counter()
        flag = float(self.backend.output(self._outputs.pose_flag).reshape(-1)[0])
        landmarks = decode_landmarks(
            self.backend.output(self._outputs.landmarks), self.backend.output(self._outputs.heatmap), roi
        )
        t3 = time.perf_counter()
        t.add(t0, t1, t2, t3)
        return landmarks, flag

    def _estimate(self, poses: tuple[Pose, ...], t: _Timings) -> Estimate:
        return Estimate(poses, t.pre * 1e3, t.invoke * 1e3, t.post * 1e3)

    def _pose(self, landmarks: np.ndarray, flag: float) -> Pose:
        body = landmarks[:NUM_BODY_LANDMARKS]
        return Pose.from_keypoints(coco_keypoints(body), score=flag, landmarks=np.ascontiguousarray(body))

    def still(self, image: np.ndarray) -> Estimate:
        """Estimate an independent image: detector, then landmarks on the best detection's ROI."""
        t = _Timings()
        roi = self._detect(image, t)
        if roi is None:
            return self._estimate((), t)
        landmarks, flag = self._landmarks(image, roi, t)
        if flag < self.options.min_presence:
            return self._estimate((), t)
        return self._estimate((self._pose(landmarks, flag),), t)

    def track(self, image: np.ndarray) -> Estimate:
        """Estimate a video frame on the ROI from the previous frame's landmarks (the detector when lost)."""
        t = _Timings()
        size = (int(image.shape[1]), int(image.shape[0]))
        if size != self._size:
            self._size = size
            self.roi = None
        roi, detected = self.roi, False
        if roi is None:
            roi, detected = self._detect(image, t), True
        if roi is None:
            return self._estimate((), t)
        landmarks, flag = self._landmarks(image, roi, t)
        if flag < self.options.min_presence and not detected:
            roi = self._detect(image, t)  # lost the person: look again on this frame
            if roi is not None:
                landmarks, flag = self._landmarks(image, roi, t)
        if roi is None or flag < self.options.min_presence:
            self.roi = None
            return self._estimate((), t)
        t0 = time.perf_counter()
        following = tracking_roi(landmarks)
        self.roi = following if following.size >= MIN_ROI_PX else None
        pose = self._pose(landmarks, flag)
        t.post += time.perf_counter() - t0
        return self._estimate((pose,), t)


def _fill(
    backend: Backend, image: np.ndarray, roi: RotatedRoi, value_range: tuple[float, float], replicate: bool
) -> None:
    """Warp ``roi`` of a BGR frame into the backend's float input (see :func:`.warp_into`)."""
    dst = backend.input_tensor()
    warp_into(image, roi, dst, value_range, replicate)
    del dst  # the interpreter refuses to run while a view of its buffer is alive
