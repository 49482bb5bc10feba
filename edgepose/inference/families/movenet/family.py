"""MoveNet single-pose as a family: one model, with an EdgeTPU twin; crop tracking for video, flip TTA for stills."""

from __future__ import annotations

from edgepose.inference.families.movenet.estimator import MoveNetEstimator
from edgepose.inference.families.movenet.model import check_model, recognises
from edgepose.inference.family import EstimatorSettings, Family, Stage
from edgepose.inference.runtime.backend import Backend


def _build(backends: tuple[Backend, ...], settings: EstimatorSettings) -> MoveNetEstimator:
    (backend,) = backends
    return MoveNetEstimator(backend, settings.crop_alpha, tta=settings.model.tta)


MOVENET = Family(
    label="MoveNet",
    stages=(Stage(check_model),),
    build=_build,
    recognises=recognises,
    options=("crop_alpha", "tta"),
)
