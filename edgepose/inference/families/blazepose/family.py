"""BlazePose as a family: two CPU-only stages (the person detector, then the landmark model), 33 landmarks."""

from __future__ import annotations

from edgepose.config.schema import ModelConfig
from edgepose.inference.families.blazepose.detector import check_detector
from edgepose.inference.families.blazepose.estimator import BlazePoseEstimator
from edgepose.inference.families.blazepose.landmarks import check_landmark_model
from edgepose.inference.family import EstimatorSettings, Family, Stage
from edgepose.inference.runtime.backend import Backend


def _build(backends: tuple[Backend, ...], settings: EstimatorSettings) -> BlazePoseEstimator:
    detector, landmarks = backends
    return BlazePoseEstimator(detector, landmarks)


BLAZEPOSE = Family(
    label="BlazePose",
    stages=(
        Stage(check_detector, cpu="detector", edgetpu=""),
        Stage(check_landmark_model, cpu="landmark", edgetpu=""),
    ),
    build=_build,
    edgetpu_refusal=(
        "BlazePose's models are float32 and cannot run on the Coral EdgeTPU; use --delegate xnnpack, cpu or auto "
        f"with --model blazepose, or an EdgeTPU model (--model {ModelConfig.name}) with --delegate edgetpu"
    ),
)
