"""PoseNet multi-pose as a family: one model, with an EdgeTPU twin; every person in the frame."""

from __future__ import annotations

from edgepose.inference.families.posenet.estimator import PoseNetEstimator
from edgepose.inference.families.posenet.model import check_model, recognises
from edgepose.inference.family import EstimatorSettings, Family, Stage
from edgepose.inference.runtime.backend import Backend


def _build(backends: tuple[Backend, ...], settings: EstimatorSettings) -> PoseNetEstimator:
    (backend,) = backends
    return PoseNetEstimator(backend, max_people=settings.model.max_people)


POSENET = Family(
    label="PoseNet",
    stages=(Stage(check_model),),
    build=_build,
    recognises=recognises,
    options=("max_people",),
)
